//! The flag through which a program's ring buffers know that the runner sleeps
//! (`runner/ring.h`): a 4-byte global in one of the program's data sections, which the
//! runner maps into its own memory and sets before it blocks with every channel empty.
//! The program reads it after publishing a record and wakes the runner only then (or when
//! a quarter of the ring waits), so an idle runner needs no timer and a busy one is not
//! woken for every record.
//!
//! The order that loses no wake-up: set the flag, a full barrier, then look at the rings
//! once more (the caller drains them) before blocking. The kernel publishes a record with
//! an atomic exchange (a full barrier) before the program reads the flag. So either the
//! last look finds the record, or the program finds the flag set and wakes the runner.

use std::ffi::c_void;
use std::os::fd::{AsFd as _, AsRawFd as _};
use std::ptr::NonNull;
use std::sync::atomic::{fence, Ordering};

use libbpf_rs::{MapCore as _, MapHandle};

pub(crate) struct WakeFlag {
    /// The data section's value, mapped shared with the kernel.
    base: NonNull<c_void>,
    len: usize,
    /// The global, inside that mapping.
    flag: NonNull<u32>,
    /// Keeps the map alive while it is mapped (the mapping would too; this says so).
    _map: MapHandle,
}

impl WakeFlag {
    /// Map the data section `map` (an array of one value that libbpf created mmapable) and
    /// find the 4-byte global at `offset` in it.
    pub fn map(map: MapHandle, offset: usize) -> std::io::Result<WakeFlag> {
        let value_size = map.value_size() as usize;
        if !offset.is_multiple_of(4) || offset + 4 > value_size {
            return Err(std::io::Error::other(format!(
                "the flag at offset {offset} is not a 4-byte slot of a {value_size}-byte section"
            )));
        }
        let page = page_size();
        let len = value_size.div_ceil(page) * page;
        // SAFETY: a fresh shared mapping of the map's descriptor; the kernel checks that the
        // map is mmapable and `len` fits it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base = NonNull::new(base).ok_or_else(|| std::io::Error::other("mmap gave null"))?;
        // SAFETY: `offset + 4 <= value_size <= len`, inside the mapping; 4-byte aligned
        // (the mapping is page aligned, the offset a multiple of 4).
        let flag = unsafe { base.cast::<u8>().add(offset).cast::<u32>() };
        Ok(WakeFlag {
            base,
            len,
            flag,
            _map: map,
        })
    }

    /// Say the runner is about to sleep (`true`; followed by a full barrier, so that the
    /// rings read afterwards are read after the program can see it) or is awake.
    pub fn set(&self, asleep: bool) {
        // SAFETY: `flag` points into our live mapping; the program reads it concurrently,
        // so it is written with one volatile 4-byte store.
        unsafe { self.flag.as_ptr().write_volatile(u32::from(asleep)) };
        if asleep {
            fence(Ordering::SeqCst);
        }
    }
}

impl Drop for WakeFlag {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `map` with this length and is unmapped once.
        unsafe { libc::munmap(self.base.as_ptr(), self.len) };
    }
}

/// The system page size.
pub(super) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

//! A `BPF_MAP_TYPE_PERF_EVENT_ARRAY` channel with a wake-up watermark. libbpf's default
//! perf buffer wakes the reader for every sample, which costs more than the tracing
//! itself; this one asks the kernel to wake it only when a quarter of a CPU's buffer is
//! filled, and relies on the event loop's drain timer for everything below that. The
//! kernel counts what a full buffer drops, per CPU, but reports the count only in front of
//! the next record that fits: a buffer found full in the last moments of a run may have
//! lost records nobody will count ([`Channel::still_full`]).

use std::ffi::{c_int, c_void};
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd};
use std::ptr::NonNull;

use libbpf_rs::libbpf_sys as sys;
use libbpf_rs::MapHandle;

use super::source::{Channel, Slot};

/// Pages of each CPU's buffer (a power of two).
const PAGES: usize = 64;

pub(super) struct PerfBuf {
    name: String,
    pb: NonNull<sys::perf_buffer>,
    slot: NonNull<Slot>,
    /// The CPU buffer the next `consume` starts with, so a busy CPU cannot starve the rest.
    next: usize,
    /// Room one record of the channel's struct takes (header, size word, padding).
    record_room: u64,
    /// When a CPU buffer was last found too full for one more record.
    last_full: Option<std::time::Instant>,
    /// Keeps the map's descriptor open while the buffers are attached to it.
    _map: MapHandle,
}

unsafe extern "C" fn on_record(
    ctx: *mut c_void,
    _cpu: c_int,
    event: *mut sys::perf_event_header,
) -> sys::bpf_perf_event_ret {
    // SAFETY: `ctx` is our slot, called back from inside `Slot::with`; libbpf hands over
    // a whole record (copied out if it wrapped around the ring).
    unsafe {
        let header = event.read_unaligned();
        let body = event
            .cast::<u8>()
            .add(std::mem::size_of::<sys::perf_event_header>());
        match header.type_ {
            sys::PERF_RECORD_SAMPLE => {
                // PERF_SAMPLE_RAW: u32 size, then the bytes the program sent (padded).
                let size = body.cast::<u32>().read_unaligned() as usize;
                let record = std::slice::from_raw_parts(body.add(4), size);
                if !Slot::deliver(ctx, record) {
                    return sys::LIBBPF_PERF_EVENT_DONE;
                }
            }
            sys::PERF_RECORD_LOST => {
                // u64 id, u64 lost.
                let lost = body.add(8).cast::<u64>().read_unaligned();
                (*ctx.cast::<Slot>()).lost += lost;
            }
            _ => {}
        }
    }
    sys::LIBBPF_PERF_EVENT_CONT
}

impl PerfBuf {
    /// A reader of perf event array `map` whose records are `record_size` bytes.
    pub fn open(name: &str, map: MapHandle, record_size: u64) -> std::io::Result<Self> {
        // SAFETY: an all-zero perf_event_attr is valid; the fields that matter are set.
        let mut attr: sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.type_ = sys::PERF_TYPE_SOFTWARE;
        attr.size = std::mem::size_of::<sys::perf_event_attr>() as u32;
        attr.config = u64::from(sys::PERF_COUNT_SW_BPF_OUTPUT);
        attr.sample_type = u64::from(sys::PERF_SAMPLE_RAW);
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = (PAGES * page_size() / 4) as u32;
        let opts = sys::perf_buffer_raw_opts {
            sz: std::mem::size_of::<sys::perf_buffer_raw_opts>() as _,
            ..Default::default()
        };
        let slot = Slot::new();
        // SAFETY: all pointers are valid for the call; the slot outlives the buffer (freed
        // after perf_buffer__free in `Drop`).
        let pb = unsafe {
            sys::perf_buffer__new_raw(
                map.as_fd().as_raw_fd(),
                PAGES as _,
                &mut attr,
                Some(on_record),
                slot.as_ptr().cast(),
                &opts,
            )
        };
        let error = std::io::Error::last_os_error();
        let Some(pb) = NonNull::new(pb) else {
            // SAFETY: no buffer was made, so nothing refers to the slot.
            unsafe { Slot::free(slot) };
            return Err(error);
        };
        Ok(PerfBuf {
            name: name.to_string(),
            pb,
            slot,
            next: 0,
            // perf_event_header (8), the u32 size, the data; 8-byte aligned.
            record_room: 8 + (4 + record_size).div_ceil(8) * 8,
            last_full: None,
            _map: map,
        })
    }

    /// Whether CPU buffer `idx` has less room than one record.
    fn is_full(&self, idx: usize) -> bool {
        let mut base: *mut c_void = std::ptr::null_mut();
        let mut size: sys::size_t = 0;
        // SAFETY: `pb` is valid until drop; both out-pointers are valid.
        let rc =
            unsafe { sys::perf_buffer__buffer(self.pb.as_ptr(), idx as _, &mut base, &mut size) };
        if rc != 0 || base.is_null() {
            return false;
        }
        let page = base.cast::<sys::perf_event_mmap_page>();
        // SAFETY: `base` is the buffer's mapped control page, alive while `pb` is; the
        // kernel moves `data_head` concurrently, so it is read once, volatile.
        let (head, tail) = unsafe {
            (
                std::ptr::addr_of!((*page).data_head).read_volatile(),
                std::ptr::addr_of!((*page).data_tail).read_volatile(),
            )
        };
        (size as u64).saturating_sub(head.wrapping_sub(tail)) < self.record_room
    }
}

impl Channel for PerfBuf {
    fn map(&self) -> &str {
        &self.name
    }

    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the epoll descriptor belongs to the buffer, open until it is freed in
        // `Drop`, which cannot happen while `self` is borrowed.
        unsafe { BorrowedFd::borrow_raw(sys::perf_buffer__epoll_fd(self.pb.as_ptr())) }
    }

    fn consume(&mut self, max: usize, on_record: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let pb = self.pb;
        // SAFETY: `pb` is valid until drop.
        let buffers = unsafe { sys::perf_buffer__buffer_cnt(pb.as_ptr()) } as usize;
        let start = self.next;
        let mut handed = 0;
        let stop = std::cell::Cell::new(false);
        let mut sink = |data: &[u8]| {
            let more = on_record(data);
            stop.set(stop.get() || !more);
            more
        };
        for i in 0..buffers {
            let idx = (start + i) % buffers;
            if self.is_full(idx) {
                self.last_full = Some(std::time::Instant::now());
            }
            // SAFETY: the slot is ours and alive; the callback runs inside this call.
            handed += unsafe {
                Slot::with(self.slot, max - handed, &mut sink, || {
                    sys::perf_buffer__consume_buffer(pb.as_ptr(), idx as _);
                })
            };
            if handed >= max || stop.get() {
                self.next = idx;
                break;
            }
        }
        handed
    }

    fn lost(&mut self) -> u64 {
        // SAFETY: the slot is alive; no callback runs outside `consume`.
        unsafe { (*self.slot.as_ptr()).lost }
    }

    fn still_full(&self) -> bool {
        // The kernel reports what it refused in front of the next record that fits; it may
        // refuse records while the reader empties a full buffer (the reader frees the room
        // only when done) and then never write again. So a buffer found full in the last
        // moments of a run may have losses nobody will count.
        self.last_full
            .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1))
    }
}

impl Drop for PerfBuf {
    fn drop(&mut self) {
        // SAFETY: `pb` came from perf_buffer__new_raw and is freed once; after that nothing
        // refers to the slot.
        unsafe {
            sys::perf_buffer__free(self.pb.as_ptr());
            Slot::free(self.slot);
        }
    }
}

/// The system page size.
fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|&s| s > 0)
        .unwrap_or(4096)
}

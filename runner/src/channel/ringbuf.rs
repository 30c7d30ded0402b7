//! A `BPF_MAP_TYPE_RINGBUF` channel, read through libbpf's ring reader one ring at a time,
//! in batches of bounded size. The kernel does not count what a full ring refuses; the
//! program may (`runner:lost`), and then that count is this channel's. Otherwise the
//! reader looks at the ring's producer and consumer positions before each batch: only the
//! reader frees room, so if there is less than one record's room left then, the ring has
//! been full since some earlier point and a record may have been refused. Those times are
//! counted ([`Channel::times_full`]).
//!
//! A ring whose program submits through `runner/ring.h` has a [`WakeFlag`]: its records
//! wake the reader while the reader says it sleeps, so it needs no drain timer when idle.

use std::ffi::{c_int, c_void};
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd};
use std::ptr::NonNull;
use std::rc::Rc;

use libbpf_rs::libbpf_sys as sys;
use libbpf_rs::MapHandle;

use super::source::{Channel, LostCounter, Slot};
use super::wakeup::WakeFlag;

pub(super) struct Ringbuf {
    name: String,
    rb: NonNull<sys::ring_buffer>,
    ring: NonNull<sys::ring>,
    slot: NonNull<Slot>,
    counter: Option<LostCounter>,
    /// Room one record of the channel's struct takes (header included, 8-byte aligned).
    record_room: u64,
    /// Times a batch found less than `record_room` free.
    times_full: u64,
    /// The program's flag for "the reader sleeps", when it submits through `runner/ring.h`.
    wake: Option<Rc<WakeFlag>>,
    /// Keeps the map's descriptor open: the reader's mapping and our epoll use it.
    map: MapHandle,
}

/// The fewest records a ring should hold. A burst that lasts longer than the reader waits
/// for a CPU overflows a smaller one: bcc's opensnoop reserves 8 KiB per record (a whole
/// path) in a 256 KiB ring, 31 records, which a loaded machine overflows in under a
/// millisecond, where libbpf-tools' perf buffers hold several hundred records per CPU.
const MIN_RECORDS: u64 = 1024;
/// The largest ring the runner sizes on its own (`--map-size` may ask for more).
const MAX_ROOMIER: u64 = 64 << 20;

/// Room one record of `record_size` bytes takes: its 8-byte header, rounded up to 8.
fn record_room(record_size: u64) -> u64 {
    (record_size.max(1) + 8).div_ceil(8) * 8
}

/// The size a ring of `declared` bytes gets when it holds fewer than [`MIN_RECORDS`]
/// records of `record_size` bytes: the smallest power of two that holds that many (at
/// most [`MAX_ROOMIER`]). `None`: the declared size is kept.
pub(crate) fn roomier_size(declared: u32, record_size: u64) -> Option<u32> {
    let room = record_room(record_size);
    if u64::from(declared) / room >= MIN_RECORDS {
        return None;
    }
    let size = (room * MIN_RECORDS).next_power_of_two().min(MAX_ROOMIER);
    (size > u64::from(declared)).then_some(size as u32)
}

unsafe extern "C" fn on_sample(ctx: *mut c_void, data: *mut c_void, size: sys::size_t) -> c_int {
    // SAFETY: libbpf hands a record of `size` bytes inside the mapped ring, valid for the
    // duration of this call; `ctx` is our slot, called back from inside `Slot::with`.
    unsafe {
        let record = std::slice::from_raw_parts(data.cast::<u8>(), size as usize);
        if !Slot::deliver(ctx, record) {
            // libbpf counts this record as consumed and returns.
            return -1;
        }
    }
    0
}

impl Ringbuf {
    /// A reader of ring `map` whose records are `record_size` bytes.
    pub fn open(
        name: &str,
        map: MapHandle,
        counter: Option<LostCounter>,
        record_size: u64,
        wake: Option<Rc<WakeFlag>>,
    ) -> std::io::Result<Self> {
        let slot = Slot::new();
        let opts = sys::ring_buffer_opts {
            sz: std::mem::size_of::<sys::ring_buffer_opts>() as _,
        };
        // SAFETY: the descriptor is a ring buffer map kept open by `map`; `slot` outlives
        // the reader (freed after it in `Drop`).
        let rb = unsafe {
            sys::ring_buffer__new(
                map.as_fd().as_raw_fd(),
                Some(on_sample),
                slot.as_ptr().cast(),
                &opts,
            )
        };
        let error = std::io::Error::last_os_error();
        let Some(rb) = NonNull::new(rb) else {
            // SAFETY: no reader was made, so nothing refers to the slot.
            unsafe { Slot::free(slot) };
            return Err(error);
        };
        // SAFETY: `rb` has exactly one ring, index 0.
        let ring = NonNull::new(unsafe { sys::ring_buffer__ring(rb.as_ptr(), 0) });
        let Some(ring) = ring else {
            // SAFETY: `rb` came from ring_buffer__new; the slot is unused afterwards.
            unsafe {
                sys::ring_buffer__free(rb.as_ptr());
                Slot::free(slot);
            }
            return Err(std::io::Error::other(
                "libbpf made a ring reader without a ring",
            ));
        };
        Ok(Ringbuf {
            name: name.to_string(),
            rb,
            ring,
            slot,
            counter,
            record_room: record_room(record_size),
            times_full: 0,
            wake,
            map,
        })
    }
}

impl Channel for Ringbuf {
    fn map(&self) -> &str {
        &self.name
    }

    fn fd(&self) -> BorrowedFd<'_> {
        self.map.as_fd()
    }

    fn consume(&mut self, max: usize, on_record: &mut dyn FnMut(&[u8]) -> bool) -> usize {
        let ring = self.ring;
        if self.counter.is_none() {
            // SAFETY: `ring` belongs to `rb`, alive until drop.
            let (size, waiting) = unsafe {
                (
                    sys::ring__size(ring.as_ptr()) as u64,
                    sys::ring__avail_data_size(ring.as_ptr()) as u64,
                )
            };
            if size.saturating_sub(waiting) < self.record_room {
                self.times_full += 1;
            }
        }
        // SAFETY: the slot is ours and alive; `ring` belongs to `rb`, alive until drop; the
        // callback runs inside this call.
        unsafe {
            Slot::with(self.slot, max, on_record, || {
                sys::ring__consume_n(ring.as_ptr(), max as _);
            })
        }
    }

    fn lost(&mut self) -> u64 {
        self.counter
            .as_ref()
            .and_then(LostCounter::read)
            .unwrap_or(0)
    }

    fn times_full(&self) -> u64 {
        self.times_full
    }

    fn wakes_reader(&self) -> bool {
        self.wake.is_some()
    }

    fn set_asleep(&self, asleep: bool) {
        if let Some(wake) = &self.wake {
            wake.set(asleep);
        }
    }
}

impl Drop for Ringbuf {
    fn drop(&mut self) {
        // SAFETY: `rb` came from ring_buffer__new and is freed once; after that nothing
        // refers to the slot.
        unsafe {
            sys::ring_buffer__free(self.rb.as_ptr());
            Slot::free(self.slot);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ring_of_few_records_gets_room_for_a_thousand() {
        // bcc's opensnoop: 256 KiB of 8,232-byte records (31) becomes 16 MiB (2,036).
        assert_eq!(roomier_size(256 << 10, 8232), Some(16 << 20));
        // sigsnoop's 1 MiB of 40-byte records already holds 21,845.
        assert_eq!(roomier_size(1 << 20, 40), None);
        // Records too big for a thousand in the cap: the cap.
        assert_eq!(roomier_size(1 << 20, 1 << 20), Some(64 << 20));
        // A ring already at the cap stays as it is.
        assert_eq!(roomier_size(64 << 20, 1 << 20), None);
        // An object that leaves the size to userspace (0) gets one.
        assert_eq!(roomier_size(0, 100), Some(128 << 10));
    }
}

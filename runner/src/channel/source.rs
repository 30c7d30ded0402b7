//! What every channel is: the [`Channel`] trait, the program's own lost-event counter,
//! and the slot through which libbpf's C callbacks reach the caller's record sink.

use std::ffi::c_void;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::time::Duration;

use libbpf_rs::{MapCore as _, MapFlags, MapHandle};

/// A source of event records.
pub(crate) trait Channel {
    /// The map it reads, for messages.
    fn map(&self) -> &str;
    /// A descriptor that polls readable when records wait.
    fn fd(&self) -> BorrowedFd<'_>;
    /// Hand at most `max` waiting records to `on_record`, oldest first, stopping early
    /// after a record for which it returns false; returns how many were handed.
    fn consume(&mut self, max: usize, on_record: &mut dyn FnMut(&[u8]) -> bool) -> usize;
    /// How many events were lost so far, as far as the kernel or the program counts them.
    fn lost(&mut self) -> u64;
    /// Where losses are not counted: how many times the reader found the buffer too full
    /// for one more record, so that some may have been refused. 0 where they are counted.
    fn times_full(&self) -> u64 {
        0
    }
    /// Where losses are counted late (a perf buffer reports them in front of the next
    /// record that fits): whether the buffer was found too full for one more record in the
    /// last second, so that more may have been lost than counted.
    fn still_full(&self) -> bool {
        false
    }
    /// Whether a record always wakes the reader that said it sleeps ([`set_asleep`]), so
    /// that an idle reader may block with no timer. Otherwise records may wait unannounced
    /// (a perf buffer's watermark, a program submitting with `BPF_RB_NO_WAKEUP`) and the
    /// reader drains the channel on a timer.
    ///
    /// [`set_asleep`]: Channel::set_asleep
    fn wakes_reader(&self) -> bool {
        false
    }
    /// Tell the program that the reader is about to sleep (`true`: followed by a full
    /// barrier; the caller then drains once more before blocking) or is awake again.
    fn set_asleep(&self, _asleep: bool) {}
    /// When the last batch left records counted as unread so that the kernel does not
    /// wake the reader for each new one: the descriptor then polls readable all along, and
    /// the caller drains the channel again after this long instead of waiting on it.
    fn held(&self) -> Option<Duration> {
        None
    }
}

/// A `__u64` global the program increments for each event it could not submit.
pub(crate) struct LostCounter {
    /// The data section's map.
    pub map: MapHandle,
    pub offset: usize,
}

impl LostCounter {
    pub fn read(&self) -> Option<u64> {
        let value = self.map.lookup(&0u32.to_ne_bytes(), MapFlags::ANY).ok()??;
        let bytes = value.get(self.offset..self.offset + 8)?;
        Some(u64::from_le_bytes(bytes.try_into().ok()?))
    }
}

/// Where a channel hands its records; false asks for no more in this call.
type RecordFn<'a> = dyn FnMut(&[u8]) -> bool + 'a;

/// What a C callback reaches while a channel is being consumed: the caller's record sink
/// (set only for the duration of one `consume`), how many records it still takes, and the
/// losses the kernel reported.
pub(super) struct Slot {
    sink: Option<NonNull<RecordFn<'static>>>,
    budget: usize,
    handed: usize,
    pub lost: u64,
}

impl Slot {
    /// A slot on the heap, for a C library to hold as its callback context; freed by
    /// [`Slot::free`].
    pub fn new() -> NonNull<Slot> {
        NonNull::from(Box::leak(Box::new(Slot {
            sink: None,
            budget: 0,
            handed: 0,
            lost: 0,
        })))
    }

    /// # Safety
    /// `slot` came from [`Slot::new`] and nothing refers to it any more.
    pub unsafe fn free(slot: NonNull<Slot>) {
        // SAFETY: per this function's contract, the box is reclaimed exactly once.
        drop(unsafe { Box::from_raw(slot.as_ptr()) });
    }

    /// Run `consume` with `sink` reachable from callbacks, for at most `max` records.
    /// Returns how many records were handed.
    ///
    /// # Safety
    /// `slot` came from [`Slot::new`] and is not freed; callbacks reach it only from
    /// inside `consume`, on this thread.
    pub unsafe fn with(
        slot: NonNull<Slot>,
        max: usize,
        sink: &mut dyn FnMut(&[u8]) -> bool,
        consume: impl FnOnce(),
    ) -> usize {
        let erased: NonNull<RecordFn<'_>> = NonNull::from(sink);
        // SAFETY: only the lifetime is erased; the pointer is stored for the duration of
        // `consume` only and cleared before `sink`'s borrow ends.
        let erased: NonNull<RecordFn<'static>> = unsafe { std::mem::transmute(erased) };
        // SAFETY: per this function's contract, nothing else accesses the slot now.
        unsafe {
            let s = &mut *slot.as_ptr();
            s.sink = Some(erased);
            s.budget = max;
            s.handed = 0;
        }
        consume();
        // SAFETY: as above; the callbacks have returned.
        unsafe {
            let s = &mut *slot.as_ptr();
            s.sink = None;
            s.handed
        }
    }

    /// Hand one record to the sink; false once the budget is spent or the sink wants no
    /// more.
    ///
    /// # Safety
    /// `ctx` is a slot pointer given to the C library, called back inside [`Slot::with`].
    pub unsafe fn deliver(ctx: *mut c_void, data: &[u8]) -> bool {
        // SAFETY: per this function's contract.
        let slot = unsafe { &mut *ctx.cast::<Slot>() };
        let mut more = true;
        if let Some(mut sink) = slot.sink {
            // SAFETY: the sink outlives the `with` call this callback runs inside.
            more = unsafe { sink.as_mut()(data) };
            slot.handed += 1;
        }
        more && slot.handed < slot.budget
    }
}

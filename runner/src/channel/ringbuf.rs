//! A `BPF_MAP_TYPE_RINGBUF` channel, read in batches of bounded size by a reader of our own
//! that maps the ring's data once. The kernel offers the data twice in a row, so that a
//! record that wraps past the end reads as one piece; libbpf maps both copies, and since
//! the kernel populates the whole mapping at mmap time, a 1 MiB ring costs 2 MiB of
//! resident memory. Mapped once, it costs 1 MiB, and the rare record that wraps is
//! copied into a buffer in two pieces. The kernel does not count what a full ring refuses; the
//! program may (`runner:lost`), and then that count is this channel's. Otherwise the
//! reader looks at the ring's producer and consumer positions before each batch: only the
//! reader frees room, so if there is less than one record's room left then, the ring has
//! been full since some earlier point and a record may have been refused. Those times are
//! counted ([`Channel::times_full`]).
//!
//! A ring whose program submits through `runner/ring.h` has a [`WakeFlag`]: its records
//! wake the reader while the reader says it sleeps, so it needs no drain timer when idle.

use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd};
use std::ptr::NonNull;
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore as _, MapHandle};

use super::source::{Channel, LostCounter};
use super::wakeup::{page_size, WakeFlag};

// The record header the kernel writes (BPF_RINGBUF_HDR_SZ) and its flags.
const HEADER: u64 = 8;
const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;

/// One shared mapping of a ring map's descriptor, unmapped on drop.
struct Mapping {
    base: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, prot: i32, offset: usize) -> std::io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of the descriptor; the kernel checks that the
        // offset and length lie within the ring's pages and that only the consumer page
        // is writable.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                offset as libc::off_t,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let base =
            NonNull::new(base.cast()).ok_or_else(|| std::io::Error::other("mmap gave null"))?;
        Ok(Mapping { base, len })
    }

    /// The 8-byte position at the start of the mapping (page aligned, so aligned).
    fn position(&self) -> &AtomicU64 {
        // SAFETY: the mapping is at least a page long and lives as long as `self`; the
        // kernel and this reader access the position only atomically.
        unsafe { AtomicU64::from_ptr(self.base.as_ptr().cast()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly what `new` mapped; nothing borrows it any more.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.len) };
    }
}

/// The ring as mapped: positions and data, read the way the kernel writes them.
struct Ring {
    /// The consumer page (writable: the reader's position).
    consumer: Mapping,
    /// The producer page, then the data pages once (read-only).
    producer: Mapping,
    page: usize,
    /// The data's size, a power of two.
    size: u64,
    /// Where the next record starts: the published position, or one record past it while
    /// the reader holds it back (see [`Ring::consume`]).
    next: u64,
    /// Where a record that wraps past the end of the data is put together.
    wrapped: Vec<u8>,
}

impl Ring {
    fn open(fd: BorrowedFd<'_>, size: u64) -> std::io::Result<Ring> {
        let page = page_size();
        let rw = libc::PROT_READ | libc::PROT_WRITE;
        let consumer = Mapping::new(fd, page, rw, 0)?;
        let next = consumer.position().load(Ordering::Acquire);
        Ok(Ring {
            consumer,
            producer: Mapping::new(fd, page + size as usize, libc::PROT_READ, page)?,
            page,
            size,
            next,
            wrapped: Vec::new(),
        })
    }

    /// Bytes submitted that this reader has not read (a held record is read).
    fn unread(&self) -> u64 {
        let prod = self.producer.position().load(Ordering::Acquire);
        prod.saturating_sub(self.next)
    }

    /// Bytes published and not yet consumed.
    fn waiting(&self) -> u64 {
        let cons = self.consumer.position().load(Ordering::Acquire);
        let prod = self.producer.position().load(Ordering::Acquire);
        prod.saturating_sub(cons)
    }

    /// The `len` bytes of data at ring position `pos`, in one piece.
    fn record(&mut self, pos: u64, len: usize) -> &[u8] {
        let at = (pos & (self.size - 1)) as usize;
        let first = len.min(self.size as usize - at);
        // SAFETY: the data is mapped at `page` for `size` bytes.
        let data = unsafe { self.producer.base.as_ptr().add(self.page) };
        // SAFETY: `at + first <= size`, inside the data; the producer does not write these
        // bytes until the consumer position passes them, which happens after the caller
        // is done with the slice.
        let head = unsafe { std::slice::from_raw_parts(data.add(at), first) };
        if first == len {
            return head;
        }
        self.wrapped.clear();
        self.wrapped.extend_from_slice(head);
        // SAFETY: the rest starts at the beginning of the data and is shorter than it.
        let tail = unsafe { std::slice::from_raw_parts(data, len - first) };
        self.wrapped.extend_from_slice(tail);
        &self.wrapped
    }

    /// The record header at ring position `pos`: its length word, read as the kernel
    /// publishes it (an 8-byte aligned header never wraps).
    fn header(&self, pos: u64) -> u32 {
        let at = self.page + (pos & (self.size - 1)) as usize;
        // SAFETY: inside the data mapping, 8-byte aligned; the kernel writes it atomically.
        unsafe { AtomicU32::from_ptr(self.producer.base.as_ptr().add(at).cast()) }
            .load(Ordering::Acquire)
    }

    /// Hand at most `max` submitted records to `on_record`, as [`Channel::consume`]; a
    /// discarded record is skipped, and a record still reserved stops the batch (the
    /// records after it wait for it).
    ///
    /// `hold`: publish the position of the last record read rather than the one after it.
    /// The kernel wakes the reader for a record submitted without flags only when it lands
    /// at the published position (the reader has caught up), so held back by one record,
    /// a storm of them wakes nobody and the reader drains on its own timer. A held call
    /// that finds nothing new publishes everything, and the next record wakes the reader.
    fn consume(
        &mut self,
        max: usize,
        on_record: &mut dyn FnMut(&[u8]) -> bool,
        hold: bool,
    ) -> usize {
        let mut cons = self.next;
        let mut prod = self.producer.position().load(Ordering::Acquire);
        let mut handed = 0;
        while handed < max {
            if cons >= prod {
                // Caught up: look once more for records published meanwhile.
                prod = self.producer.position().load(Ordering::Acquire);
                if cons >= prod {
                    break;
                }
            }
            let word = self.header(cons);
            if word & BUSY != 0 {
                break;
            }
            let len = (word & !(BUSY | DISCARD)) as usize;
            let next = cons + (len as u64 + HEADER).div_ceil(8) * 8;
            let mut more = true;
            if word & DISCARD == 0 {
                more = on_record(self.record(cons + HEADER, len));
                handed += 1;
            }
            let start = cons;
            cons = next;
            self.next = cons;
            let published = if hold { start } else { cons };
            self.consumer.position().store(published, Ordering::Release);
            if !more {
                break;
            }
        }
        if hold && handed == 0 {
            self.consumer.position().store(self.next, Ordering::Release);
        }
        handed
    }
}

pub(super) struct Ringbuf {
    name: String,
    ring: Ring,
    counter: Option<LostCounter>,
    /// Room one record of the channel's struct takes (header included, 8-byte aligned).
    record_room: u64,
    /// Times a batch found less than `record_room` free.
    times_full: u64,
    /// The program's flag for "the reader sleeps", when it submits through `runner/ring.h`.
    wake: Option<Rc<WakeFlag>>,
    /// Keeps the map's descriptor open: our epoll uses it.
    map: MapHandle,
    /// Whether the reader may hold the published position back in a storm: a ring whose
    /// records wake the reader (no `runner/ring.h` flag) and that holds enough of them to
    /// wait for the next batch ([`MIN_HOLD_RECORDS`]).
    may_hold: bool,
    /// When a batch last found records.
    last_found: Option<Instant>,
    /// When the last batch started.
    last_batch: Option<Instant>,
    /// While the last batch held the position back (see [`Ring::consume`]): how soon the
    /// next should come.
    held: Option<Duration>,
}

/// While records come closer together than this, the reader holds the ring's published
/// position back and reads on a timer ([`hold_interval`]) instead of being woken per record.
const STORM_GAP: Duration = Duration::from_millis(5);
/// How often, at most, a reader that holds a ring back drains it ...
const HOLD_POLL: Duration = Duration::from_millis(1);
/// ... and how often at least: when records come fast for the ring's size, it drains as
/// soon as a quarter of the ring has filled ([`hold_interval`]).
const HOLD_POLL_MIN: Duration = Duration::from_micros(100);
/// The fewest records a ring holds for the reader to hold it back: at 300 records a
/// millisecond (an open storm), a quarter of 256 takes 200 µs to fill.
const MIN_HOLD_RECORDS: u64 = 256;

/// How long the reader of a ring of `size` bytes, held back, may wait before the next batch
/// when `unread` bytes came in `since` the last one: a quarter of the ring at that rate,
/// between [`HOLD_POLL_MIN`] and [`HOLD_POLL`].
fn hold_interval(size: u64, unread: u64, since: Duration) -> Duration {
    let quarter = u128::from(size / 4);
    let ns = since.as_nanos().saturating_mul(quarter) / u128::from(unread.max(1));
    let ns = u64::try_from(ns).unwrap_or(u64::MAX);
    Duration::from_nanos(ns).clamp(HOLD_POLL_MIN, HOLD_POLL)
}

/// The fewest records a ring should hold. A burst that lasts longer than the reader waits
/// for a CPU overflows a smaller one: bcc's opensnoop reserves 8 KiB per record (a whole
/// path) in a 256 KiB ring, 31 records, which a loaded machine overflows in under a
/// millisecond, where libbpf-tools' perf buffers hold several hundred records per CPU.
const MIN_RECORDS: u64 = 1024;
/// The largest ring the runner sizes on its own (`--map-size` may ask for more): 4 MiB,
/// 2 ms of an open storm's 8 KiB records, which a reader at real-time priority
/// (`run::priority`) drains in time; each MiB of ring is a MiB of the runner's RSS.
const MAX_ROOMIER: u64 = 4 << 20;

/// Room one record of `record_size` bytes takes: its 8-byte header, rounded up to 8.
pub(crate) fn record_room(record_size: u64) -> u64 {
    (record_size.max(1) + HEADER).div_ceil(8) * 8
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

impl Ringbuf {
    /// A reader of ring `map` whose records are `record_size` bytes.
    pub fn open(
        name: &str,
        map: MapHandle,
        counter: Option<LostCounter>,
        record_size: u64,
        wake: Option<Rc<WakeFlag>>,
    ) -> std::io::Result<Self> {
        let size = u64::from(map.max_entries());
        if !size.is_power_of_two() {
            return Err(std::io::Error::other(format!(
                "ring `{name}` has {size} bytes of data, not a power of two"
            )));
        }
        let record_room = record_room(record_size);
        Ok(Ringbuf {
            name: name.to_string(),
            ring: Ring::open(map.as_fd(), size)?,
            counter,
            record_room,
            times_full: 0,
            may_hold: wake.is_none() && size / record_room >= MIN_HOLD_RECORDS,
            wake,
            map,
            last_found: None,
            last_batch: None,
            held: None,
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
        if self.counter.is_none()
            && self.ring.size.saturating_sub(self.ring.waiting()) < self.record_room
        {
            self.times_full += 1;
        }
        if !self.may_hold {
            return self.ring.consume(max, on_record, false);
        }
        let now = Instant::now();
        let hold = self.last_found.is_some_and(|t| now - t < STORM_GAP);
        let since = self.last_batch.map(|t| now - t);
        let unread = self.ring.unread();
        let handed = self.ring.consume(max, on_record, hold);
        if handed > 0 {
            self.last_found = Some(now);
        }
        self.last_batch = Some(now);
        self.held = (hold && handed > 0).then(|| {
            since.map_or(HOLD_POLL, |since| {
                hold_interval(self.ring.size, unread, since)
            })
        });
        handed
    }

    fn held(&self) -> Option<Duration> {
        self.held
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

#[cfg(test)]
mod tests {
    use super::*;

    fn anonymous(len: usize) -> Mapping {
        // SAFETY: a fresh private anonymous mapping, zero-filled.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED);
        Mapping {
            base: NonNull::new(base.cast()).unwrap(),
            len,
        }
    }

    /// A ring of `size` bytes of data in plain memory, written as the kernel writes one.
    struct Fake {
        ring: Ring,
    }

    impl Fake {
        fn new(size: u64) -> Fake {
            let page = page_size();
            Fake {
                ring: Ring {
                    consumer: anonymous(page),
                    producer: anonymous(page + size as usize),
                    page,
                    size,
                    next: 0,
                    wrapped: Vec::new(),
                },
            }
        }

        fn data(&mut self) -> &mut [u8] {
            let (page, size) = (self.ring.page, self.ring.size as usize);
            // SAFETY: the data pages of a mapping this test owns, borrowed mutably once.
            unsafe {
                std::slice::from_raw_parts_mut(self.ring.producer.base.as_ptr().add(page), size)
            }
        }

        /// Publish `bytes` with header flags `flags` (the test keeps within the free room).
        fn publish(&mut self, bytes: &[u8], flags: u32) {
            let pos = self.ring.producer.position().load(Ordering::Relaxed);
            let mask = self.ring.size as usize - 1;
            let at = pos as usize & mask;
            let header = (bytes.len() as u32 | flags).to_le_bytes();
            self.data()[at..at + 4].copy_from_slice(&header);
            for (i, b) in bytes.iter().enumerate() {
                self.data()[(at + 8 + i) & mask] = *b;
            }
            let next = pos + (bytes.len() as u64 + HEADER).div_ceil(8) * 8;
            self.ring.producer.position().store(next, Ordering::Release);
        }

        fn take(&mut self, max: usize) -> Vec<Vec<u8>> {
            let mut seen = Vec::new();
            self.ring.consume(
                max,
                &mut |r| {
                    seen.push(r.to_vec());
                    true
                },
                false,
            );
            seen
        }
    }

    #[test]
    fn records_come_out_whole_in_order_even_across_the_end() {
        let mut fake = Fake::new(4096);
        let record = |n: u8, len: usize| {
            (0..len)
                .map(|i| n.wrapping_add(i as u8))
                .collect::<Vec<_>>()
        };
        // Fill most of the ring, consume it, then publish records that straddle the end.
        for n in 0..35 {
            fake.publish(&record(n, 90), 0);
        }
        assert_eq!(fake.take(usize::MAX).len(), 35);
        assert_eq!(fake.ring.waiting(), 0);
        let wanted: Vec<Vec<u8>> = (100..130).map(|n| record(n, 61)).collect();
        for r in &wanted {
            fake.publish(r, 0);
        }
        let pos = fake.ring.consumer.position().load(Ordering::Relaxed);
        assert!(
            pos % 4096 + 30 * 72 > 4096,
            "the records must wrap for this test"
        );
        assert_eq!(fake.take(usize::MAX), wanted);
    }

    #[test]
    fn discarded_records_are_skipped_and_a_busy_one_holds_the_rest_back() {
        let mut fake = Fake::new(4096);
        fake.publish(b"one", 0);
        fake.publish(b"gone", DISCARD);
        fake.publish(b"two", 0);
        fake.publish(b"reserved", BUSY);
        fake.publish(b"after", 0);
        assert_eq!(fake.take(usize::MAX), [b"one".to_vec(), b"two".to_vec()]);
        // The reserved record is submitted: it and the one after it come out.
        let pos = fake.ring.consumer.position().load(Ordering::Relaxed) as usize;
        fake.data()[pos + 3] &= !(BUSY >> 24) as u8;
        assert_eq!(
            fake.take(usize::MAX),
            [b"reserved".to_vec(), b"after".to_vec()]
        );
    }

    #[test]
    fn a_batch_stops_at_its_budget_or_when_the_sink_says_so() {
        let mut fake = Fake::new(4096);
        for n in 0..5u8 {
            fake.publish(&[n; 5], 0);
        }
        assert_eq!(fake.take(2), [vec![0; 5], vec![1; 5]]);
        let mut seen = 0;
        let handed = fake.ring.consume(
            10,
            &mut |_| {
                seen += 1;
                false
            },
            false,
        );
        assert_eq!((handed, seen), (1, 1));
        assert_eq!(fake.take(10), [vec![3; 5], vec![4; 5]]);
    }

    #[test]
    fn a_held_batch_publishes_the_last_record_read_and_the_next_goes_on_after_it() {
        let mut fake = Fake::new(4096);
        let published = |fake: &Fake| fake.ring.consumer.position().load(Ordering::Relaxed);
        let held = |fake: &mut Fake| {
            let mut seen = Vec::new();
            fake.ring.consume(
                10,
                &mut |r| {
                    seen.push(r.to_vec());
                    true
                },
                true,
            );
            seen
        };
        // 16 bytes of ring each: an 8-byte header and up to 8 of data.
        fake.publish(b"one", 0);
        fake.publish(b"two", 0);
        assert_eq!(held(&mut fake), [b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(published(&fake), 16, "held at the start of `two`");
        fake.publish(b"three", 0);
        fake.publish(b"gone", DISCARD);
        assert_eq!(held(&mut fake), [b"three".to_vec()], "nothing read twice");
        assert_eq!(published(&fake), 48, "held at the last record passed");
        // Nothing new: all of it is published, so the next record wakes the reader.
        assert!(held(&mut fake).is_empty());
        assert_eq!(published(&fake), 64);
        assert_eq!(fake.ring.waiting(), 0);
        fake.publish(b"four", 0);
        assert_eq!(fake.take(10), [b"four".to_vec()]);
        assert_eq!(published(&fake), 80);
    }

    #[test]
    fn a_held_ring_is_drained_before_a_quarter_of_it_fills() {
        let ms = Duration::from_millis;
        // An open storm in a 4 MiB ring: 2 MiB a millisecond, a quarter in half of one.
        assert_eq!(
            hold_interval(4 << 20, 2 << 20, ms(1)),
            Duration::from_micros(500)
        );
        // Slow for the ring's size: at most a millisecond apart.
        assert_eq!(hold_interval(16 << 20, 1 << 20, ms(1)), HOLD_POLL);
        assert_eq!(hold_interval(4 << 20, 0, ms(1)), HOLD_POLL);
        // Faster than the ring can take a tenth of a millisecond of: the floor.
        assert_eq!(hold_interval(1 << 20, 8 << 20, ms(1)), HOLD_POLL_MIN);
        // A long stall does not overflow the arithmetic.
        assert_eq!(hold_interval(1 << 30, 1, Duration::MAX), HOLD_POLL);
    }

    #[test]
    fn a_ring_of_few_records_gets_room_for_a_thousand() {
        // bcc's opensnoop: 256 KiB of 8,232-byte records (31) becomes 4 MiB, the cap
        // (509 records; 1,024 would take 16 MiB).
        assert_eq!(roomier_size(256 << 10, 8232), Some(4 << 20));
        // 1,000-byte records: 1,024 of them fit in 1 MiB.
        assert_eq!(roomier_size(64 << 10, 1000), Some(1 << 20));
        // sigsnoop's 1 MiB of 40-byte records already holds 21,845.
        assert_eq!(roomier_size(1 << 20, 40), None);
        // A ring already at the cap stays as it is.
        assert_eq!(roomier_size(4 << 20, 1 << 20), None);
        // An object that leaves the size to userspace (0) gets one.
        assert_eq!(roomier_size(0, 100), Some(128 << 10));
    }
}

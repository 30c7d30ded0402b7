//! Reading a perf event array with a wake-up watermark. libbpf's default perf buffer wakes
//! the reader for every sample, which costs more than the tracing itself; this one asks the
//! kernel to wake it only when a quarter of a CPU's buffer is filled, and relies on the
//! stream's short drain timer (`consume`) for everything below that.

use std::ffi::{c_int, c_void};
use std::os::fd::AsRawFd as _;
use std::os::fd::BorrowedFd;
use std::ptr::NonNull;
use std::time::Duration;

use libbpf_rs::libbpf_sys as sys;

/// Pages of each CPU's buffer (a power of two).
const PAGES: usize = 64;

/// Called with each sample's bytes.
type SampleFn<'a> = dyn FnMut(&[u8]) + 'a;
/// Called with a CPU and how many samples the kernel dropped there.
type LostFn<'a> = dyn FnMut(i32, u64) + 'a;

/// What the kernel hands over, per record.
struct Callbacks<'a> {
    sample: Box<SampleFn<'a>>,
    lost: Box<LostFn<'a>>,
}

/// A perf buffer over every CPU of one `BPF_MAP_TYPE_PERF_EVENT_ARRAY`.
pub struct PerfReader<'a> {
    pb: NonNull<sys::perf_buffer>,
    /// From `Box::into_raw`; `pb` calls into it until it is freed, then `Drop` frees it.
    callbacks: NonNull<Callbacks<'a>>,
}

unsafe extern "C" fn on_record(
    ctx: *mut c_void,
    cpu: c_int,
    event: *mut sys::perf_event_header,
) -> sys::bpf_perf_event_ret {
    // SAFETY: `ctx` is the `Callbacks` boxed by `PerfReader::new`, alive until the buffer is
    // freed; libbpf hands over a whole record (copied out if it wrapped around the ring).
    unsafe {
        let callbacks = &mut *ctx.cast::<Callbacks>();
        let header = event.read_unaligned();
        let body = event
            .cast::<u8>()
            .add(std::mem::size_of::<sys::perf_event_header>());
        match header.type_ {
            sys::PERF_RECORD_SAMPLE => {
                // PERF_SAMPLE_RAW: u32 size, then the bytes the program sent (padded).
                let size = body.cast::<u32>().read_unaligned() as usize;
                (callbacks.sample)(std::slice::from_raw_parts(body.add(4), size));
            }
            sys::PERF_RECORD_LOST => {
                // u64 id, u64 lost.
                let lost = body.add(8).cast::<u64>().read_unaligned();
                (callbacks.lost)(cpu, lost);
            }
            _ => {}
        }
    }
    sys::LIBBPF_PERF_EVENT_CONT
}

impl<'a> PerfReader<'a> {
    pub fn new(
        map: BorrowedFd<'_>,
        sample: impl FnMut(&[u8]) + 'a,
        lost: impl FnMut(i32, u64) + 'a,
    ) -> std::io::Result<Self> {
        let callbacks = Box::new(Callbacks {
            sample: Box::new(sample),
            lost: Box::new(lost),
        });
        let page = page_size::get();
        // SAFETY: an all-zero perf_event_attr is valid; the fields that matter are set.
        let mut attr: sys::perf_event_attr = unsafe { std::mem::zeroed() };
        attr.type_ = sys::PERF_TYPE_SOFTWARE;
        attr.size = std::mem::size_of::<sys::perf_event_attr>() as u32;
        attr.config = u64::from(sys::PERF_COUNT_SW_BPF_OUTPUT);
        attr.sample_type = u64::from(sys::PERF_SAMPLE_RAW);
        attr.set_watermark(1);
        attr.__bindgen_anon_2.wakeup_watermark = (PAGES * page / 4) as u32;
        let opts = sys::perf_buffer_raw_opts {
            sz: std::mem::size_of::<sys::perf_buffer_raw_opts>() as _,
            ..Default::default()
        };
        let ctx = Box::into_raw(callbacks);
        // SAFETY: all pointers are valid for the call; `ctx` outlives the buffer (freed
        // after `perf_buffer__free`).
        let pb = unsafe {
            sys::perf_buffer__new_raw(
                map.as_raw_fd(),
                PAGES as _,
                &mut attr,
                Some(on_record),
                ctx.cast(),
                &opts,
            )
        };
        let error = std::io::Error::last_os_error();
        // SAFETY: `ctx` came from Box::into_raw just above.
        let callbacks = unsafe { NonNull::new_unchecked(ctx) };
        let Some(pb) = NonNull::new(pb) else {
            // SAFETY: no buffer refers to the callbacks; reclaim them once.
            drop(unsafe { Box::from_raw(ctx) });
            return Err(error);
        };
        Ok(PerfReader { pb, callbacks })
    }

    /// Wait up to `timeout` for a CPU's buffer to pass its watermark, and read it.
    pub fn poll(&self, timeout: Duration) {
        // SAFETY: `pb` is valid until drop.
        unsafe { sys::perf_buffer__poll(self.pb.as_ptr(), timeout.as_millis() as c_int) };
    }

    /// Read every record waiting in every CPU's buffer.
    pub fn consume(&self) {
        // SAFETY: `pb` is valid until drop.
        unsafe { sys::perf_buffer__consume(self.pb.as_ptr()) };
    }
}

impl Drop for PerfReader<'_> {
    fn drop(&mut self) {
        // SAFETY: `pb` came from perf_buffer__new_raw and is freed once; after that nothing
        // refers to the callbacks, which came from Box::into_raw.
        unsafe {
            sys::perf_buffer__free(self.pb.as_ptr());
            drop(Box::from_raw(self.callbacks.as_ptr()));
        }
    }
}

/// The system page size.
mod page_size {
    pub fn get() -> usize {
        // SAFETY: sysconf has no preconditions.
        let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if size > 0 {
            size as usize
        } else {
            4096
        }
    }
}

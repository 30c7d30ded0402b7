//! The thread that reads the channels runs at real-time priority: `SCHED_FIFO` 1 by
//! default (`--reader-priority N`, 0 for normal scheduling), the lowest real-time level,
//! above every normal task and below the kernel's interrupt threads.
//!
//! Why: a ring holds only so much. An open storm fills 4 MiB of bcc opensnoop's 8 KiB
//! records in 2 ms, and at normal priority the reader, woken, waits behind whatever holds
//! its CPU (kernel threads here held it 1–4 ms at a time: kdamond, kworkers) while the ring
//! overflows. At real-time priority it runs as soon as it is woken; it sleeps between
//! batches, so what it takes from others is what it would take anyway.
//!
//! The guard: a real-time reader that could not keep up would never sleep and would hold
//! its CPU. The kernel counts a real-time thread's CPU time since it last slept against
//! `RLIMIT_RTTIME` and signals `SIGXCPU` past the soft limit; the runner sets that to
//! [`BUDGET`] and, on the signal, goes back to normal scheduling for the rest of the run
//! and says so. Without the privilege (`CAP_SYS_NICE`, or an `RLIMIT_RTPRIO` that allows
//! it) the reader stays at normal priority, quietly: nothing else changes.
//!
//! Threads the reader starts later (closing links at the stop) are normal
//! (`SCHED_RESET_ON_FORK`); those started before it (the metrics server) are untouched.

use std::time::Duration;

/// The CPU time the reader may spend at real-time priority without sleeping.
pub(super) const BUDGET: Duration = Duration::from_millis(200);

/// `SCHED_RESET_ON_FORK` (linux/sched.h): threads and children start at normal priority.
const RESET_ON_FORK: i32 = 0x4000_0000;

/// Run the calling thread at `SCHED_FIFO` `priority` (1–99), with the kernel watching
/// that it sleeps at least every [`BUDGET`] of CPU. Returns whether it does; the kernel's
/// refusal (no privilege) is no error, the thread just stays as it was.
pub(super) fn raise(priority: u8) -> bool {
    if priority == 0 {
        return false;
    }
    let Some(before) = rt_time_limit() else {
        return false;
    };
    // Past the hard limit the kernel kills: stay below half of one that is set.
    let watched = libc::rlimit {
        rlim_cur: match before.rlim_max {
            libc::RLIM_INFINITY => BUDGET.as_micros() as libc::rlim_t,
            hard => (BUDGET.as_micros() as libc::rlim_t).min(hard / 2),
        },
        rlim_max: before.rlim_max,
    };
    if watched.rlim_cur == 0 || !set_rt_time_limit(&watched) {
        return false;
    }
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is valid for the call; 0 is the calling thread.
    let raised =
        unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO | RESET_ON_FORK, &param) } == 0;
    if !raised {
        set_rt_time_limit(&before);
    }
    raised
}

/// Back to normal scheduling (`SCHED_OTHER`).
pub(super) fn lower() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as in `raise`. Failing leaves the thread as it was, and there is nothing
    // better to do then.
    unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) };
}

/// `RLIMIT_RTTIME`, in µs.
fn rt_time_limit() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is valid for the call.
    (unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &mut limit) } == 0).then_some(limit)
}

/// Set `RLIMIT_RTTIME` (a soft limit at most the hard one needs no privilege).
fn set_rt_time_limit(limit: &libc::rlimit) -> bool {
    // SAFETY: `limit` is valid for the call.
    unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, limit) == 0 }
}

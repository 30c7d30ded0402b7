//! The signals a run answers, read from a signalfd that the event loop waits on with
//! everything else, so a signal is seen at once whatever the loop is waiting for (an
//! event, room on a stalled stdout, a deadline) and never interrupts a write halfway.
//!
//! SIGINT, SIGTERM and SIGHUP stop the run (summary, detach, exit 0); SIGUSR1 and SIGUSR2
//! print the counts so far and the map views; SIGXCPU says the reader ran too long at
//! real-time priority without sleeping (`priority`). They stay blocked until the process exits,
//! so one that arrives after the last read cannot kill the runner before its summary.

use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};

/// What a signal asks of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    /// SIGINT, SIGTERM, SIGHUP.
    Stop(i32),
    /// SIGUSR1, SIGUSR2.
    Report,
    /// SIGXCPU.
    RealtimeSpent,
}

const STOP: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
const REPORT: [i32; 2] = [libc::SIGUSR1, libc::SIGUSR2];

pub(super) struct Signals {
    fd: OwnedFd,
}

impl Signals {
    /// Block the signals a run answers and open a non-blocking signalfd for them.
    pub fn new() -> std::io::Result<Signals> {
        // SAFETY: an all-zero sigset is a valid argument to sigemptyset, which sets it.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset for each call.
        unsafe {
            libc::sigemptyset(&mut set);
            for sig in STOP.iter().chain(&REPORT).chain(&[libc::SIGXCPU]) {
                libc::sigaddset(&mut set, *sig);
            }
        }
        // SAFETY: `set` is valid; the old mask is not wanted. The runner has one thread.
        if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `set` is valid; -1 asks for a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Signals {
            // SAFETY: `fd` was just created and is owned by nothing else.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// The next pending request, if any.
    pub fn next(&self) -> Option<Request> {
        // SAFETY: an all-zero siginfo is a valid buffer.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        loop {
            // SAFETY: `info` has room for one record of `size` bytes.
            let n = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if n != size as isize {
                return None;
            }
            let sig = info.ssi_signo as i32;
            if STOP.contains(&sig) {
                return Some(Request::Stop(sig));
            }
            if REPORT.contains(&sig) {
                return Some(Request::Report);
            }
            if sig == libc::SIGXCPU {
                return Some(Request::RealtimeSpent);
            }
        }
    }
}

impl AsFd for Signals {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

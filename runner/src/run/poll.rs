//! Waiting on many descriptors at once: a small epoll set that the event loop puts every
//! channel into, so a wake-up from any of them (not only the first) ends the wait; also
//! its signals (a signalfd) and stdout (room to write, or its reader gone).

use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd};
use std::time::Duration;

pub(crate) struct Poller {
    epoll: OwnedFd,
    ready: Vec<libc::epoll_event>,
    /// The kernel has no `epoll_pwait2` (before 5.11): wait in whole milliseconds.
    no_pwait2: bool,
}

impl Poller {
    pub fn new() -> std::io::Result<Poller> {
        // SAFETY: epoll_create1 has no memory preconditions.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Poller {
            // SAFETY: `fd` was just created and is owned by nothing else.
            epoll: unsafe { OwnedFd::from_raw_fd(fd) },
            ready: Vec::with_capacity(16),
            no_pwait2: false,
        })
    }

    /// Wake the wait when `fd` is readable, reporting `token`.
    pub fn add(&mut self, fd: BorrowedFd<'_>, token: u64) -> std::io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, libc::EPOLLIN as u32)
    }

    /// Add `fd` waiting for `events` (`EPOLLERR` and `EPOLLHUP` are always reported).
    pub fn add_for(&mut self, fd: BorrowedFd<'_>, token: u64, events: u32) -> std::io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, token, events)
    }

    /// Change what an added `fd` is waited for.
    pub fn modify(&mut self, fd: BorrowedFd<'_>, token: u64, events: u32) -> std::io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, token, events)
    }

    fn ctl(&mut self, op: i32, fd: BorrowedFd<'_>, token: u64, events: u32) -> std::io::Result<()> {
        let mut event = libc::epoll_event { events, u64: token };
        // SAFETY: both descriptors are open; `event` is valid for the call.
        let rc = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), op, fd.as_raw_fd(), &mut event) };
        if rc < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Wait up to `timeout` for any descriptor; returns the tokens of those that are
    /// ready, with what they are ready for (`EPOLLIN`, ...). A signal ends the wait early,
    /// with none ready. The timeout counts to the microsecond (`epoll_pwait2`, Linux 5.11);
    /// on an older kernel it is rounded up to a millisecond.
    pub fn wait(&mut self, timeout: Duration) -> impl Iterator<Item = (u64, u32)> + '_ {
        let room = self.ready.capacity() as i32;
        let epoll = self.epoll.as_raw_fd();
        let events = self.ready.as_mut_ptr();
        let mut n = -1;
        if !self.no_pwait2 {
            let at = libc::timespec {
                tv_sec: timeout.as_secs().min(i32::MAX as u64) as libc::time_t,
                tv_nsec: timeout.subsec_nanos() as libc::c_long,
            };
            // SAFETY: `ready` has room for `room` (16) events, the kernel writes at most
            // that many; `at` is valid for the call; no signal mask is passed.
            n = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait2,
                    epoll,
                    events,
                    room,
                    &at as *const libc::timespec,
                    std::ptr::null::<libc::sigset_t>(),
                    0usize,
                )
            } as i32;
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS) {
                self.no_pwait2 = true;
            }
        }
        if self.no_pwait2 {
            let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
            // SAFETY: as above.
            n = unsafe { libc::epoll_wait(epoll, events, room, ms) };
        }
        // SAFETY: the kernel initialised the first `n` events (none on error).
        unsafe { self.ready.set_len(usize::try_from(n).unwrap_or(0)) };
        self.ready.iter().map(|e| (e.u64, e.events))
    }
}

//! The runner's two outputs, stdout and stderr, written so that neither can hang it or
//! bring it down: every write can be tried without blocking, waits for room only until a
//! deadline, and never panics. Text that came from a package or an event passes through
//! [`escape_controls`] before it reaches a terminal.
//!
//! Making a write non-blocking must not change the descriptor for anyone else: `O_NONBLOCK`
//! belongs to the open file description, which a terminal shares with the shell. So a pipe
//! or terminal is reopened through `/proc/self/fd/N` (a description of our own), a socket is
//! written with `MSG_DONTWAIT`, a regular file never blocks, and when none of that is
//! possible each write waits for `POLLOUT` and writes no more than the kernel then takes
//! without blocking (`PIPE_BUF` into a pipe).

use std::borrow::Cow;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd as _, BorrowedFd, FromRawFd as _, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one diagnostic line may wait for a stalled stderr before it is dropped.
const NOTE_WAIT: Duration = Duration::from_millis(250);

/// How writes to one descriptor avoid blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A regular file or a block device: a write does not wait for a reader.
    File,
    /// A socket: `send(MSG_DONTWAIT)`.
    Socket,
    /// Our own non-blocking description of the same pipe or terminal.
    Reopened,
    /// Wait for `POLLOUT`, then write at most this many bytes.
    Polled(usize),
}

/// One output descriptor (1 or 2), written without blocking.
pub struct Output {
    fd: RawFd,
    own: Option<OwnedFd>,
    mode: Mode,
}

/// What [`Output::write_until`] stopped on.
#[derive(Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Everything was written.
    Done,
    /// The deadline passed first.
    Deadline,
    /// The abort descriptor became readable first.
    Aborted,
}

impl Output {
    /// Prepare descriptor `fd` (1 for stdout, 2 for stderr) for non-blocking writes.
    pub fn new(fd: RawFd) -> Output {
        // SAFETY: an all-zero stat is a valid out-parameter.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `st` is valid for the call; a closed `fd` only makes it fail.
        if unsafe { libc::fstat(fd, &mut st) } != 0 {
            return Output {
                fd,
                own: None,
                mode: Mode::File,
            };
        }
        let mode = match st.st_mode & libc::S_IFMT {
            libc::S_IFSOCK => Mode::Socket,
            libc::S_IFIFO | libc::S_IFCHR => {
                if let Some(own) = reopen(fd, &st) {
                    return Output {
                        fd,
                        own: Some(own),
                        mode: Mode::Reopened,
                    };
                }
                let chunk = if st.st_mode & libc::S_IFMT == libc::S_IFIFO {
                    libc::PIPE_BUF
                } else {
                    256
                };
                Mode::Polled(chunk)
            }
            _ => Mode::File,
        };
        Output {
            fd,
            own: None,
            mode,
        }
    }

    fn raw(&self) -> RawFd {
        self.own.as_ref().map_or(self.fd, |o| o.as_raw_fd())
    }

    /// The descriptor to wait on for room (`EPOLLOUT`) or for the reader going away
    /// (`EPOLLERR`); `None` for a file, which epoll cannot wait on and never fills up.
    pub fn pollable(&self) -> Option<BorrowedFd<'_>> {
        // SAFETY: the descriptor is open for as long as `self` (ours) or the process (1, 2).
        (self.mode != Mode::File).then(|| unsafe { BorrowedFd::borrow_raw(self.raw()) })
    }

    /// One write that does not block: how much was taken, or `WouldBlock`.
    pub fn try_write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let fd = self.raw();
        let n = match self.mode {
            // SAFETY: `buf` is valid for reads of its length.
            Mode::File | Mode::Reopened => unsafe {
                libc::write(fd, buf.as_ptr().cast(), buf.len())
            },
            // SAFETY: as above.
            Mode::Socket => unsafe {
                libc::send(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            },
            Mode::Polled(chunk) => {
                if !wait_fd(fd, libc::POLLOUT, Duration::ZERO) {
                    return Err(std::io::ErrorKind::WouldBlock.into());
                }
                let len = buf.len().min(chunk);
                // SAFETY: as above, `len` is at most the buffer's length.
                unsafe { libc::write(fd, buf.as_ptr().cast(), len) }
            }
        };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Write all of `buf`, waiting for room until `deadline` (forever when `None`), and
    /// giving up early when `abort` becomes readable. Returns how much was written and why
    /// it stopped; a write error (a closed pipe, a full disk) is an error.
    pub fn write_until(
        &mut self,
        buf: &[u8],
        deadline: Option<Instant>,
        abort: Option<BorrowedFd<'_>>,
    ) -> std::io::Result<(usize, Stopped)> {
        let mut done = 0;
        while done < buf.len() {
            match self.try_write(&buf[done..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    let left = match deadline {
                        Some(d) => match d.checked_duration_since(Instant::now()) {
                            Some(left) if !left.is_zero() => left,
                            _ => return Ok((done, Stopped::Deadline)),
                        },
                        None => Duration::from_secs(3600),
                    };
                    if self.wait_room(left, abort) {
                        return Ok((done, Stopped::Aborted));
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok((done, Stopped::Done))
    }

    /// Wait up to `timeout` for room; true when `abort` became readable instead.
    pub fn wait_room(&self, timeout: Duration, abort: Option<BorrowedFd<'_>>) -> bool {
        let mut fds = [
            libc::pollfd {
                fd: self.raw(),
                events: libc::POLLOUT,
                revents: 0,
            },
            libc::pollfd {
                fd: abort.map_or(-1, |a| a.as_raw_fd()),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: `fds` is valid for two entries; a negative fd is ignored by poll.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, ms) };
        n > 0 && fds[1].revents != 0
    }
}

/// Our own description of the pipe or terminal on `fd`, opened non-blocking, if the
/// system lets us (it needs /proc, and permission to open the inode again).
fn reopen(fd: RawFd, st: &libc::stat) -> Option<OwnedFd> {
    // SAFETY: F_GETFL has no memory arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || flags & libc::O_ACCMODE == libc::O_RDONLY {
        return None;
    }
    let path = std::ffi::CString::new(format!("/proc/self/fd/{fd}")).ok()?;
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY;
    // SAFETY: `path` is a valid C string.
    let new = unsafe { libc::open(path.as_ptr(), flags) };
    if new < 0 {
        return None;
    }
    // SAFETY: `new` was just opened and is owned by nothing else.
    let own = unsafe { OwnedFd::from_raw_fd(new) };
    // SAFETY: an all-zero stat is a valid out-parameter.
    let mut again: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `again` is valid for the call.
    let same = unsafe { libc::fstat(own.as_raw_fd(), &mut again) } == 0
        && again.st_dev == st.st_dev
        && again.st_ino == st.st_ino;
    same.then_some(own)
}

/// Whether `fd` is ready for `events` within `timeout`.
fn wait_fd(fd: RawFd, events: libc::c_short, timeout: Duration) -> bool {
    let mut pfd = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: `pfd` is valid for one entry.
    unsafe { libc::poll(&mut pfd, 1, ms) > 0 }
}

static STDERR: Mutex<Option<Output>> = Mutex::new(None);

/// Print one diagnostic line on stderr: control characters escaped, never blocking for
/// more than [`NOTE_WAIT`], never panicking (what `crate::note!` expands to).
#[doc(hidden)]
pub fn note(args: std::fmt::Arguments<'_>) {
    let mut line = String::new();
    let _ = line.write_fmt(args);
    let mut line = escape_controls(&line, true).into_owned();
    line.push('\n');
    // A poisoned lock only means a panic elsewhere; the output is still usable.
    let mut guard = STDERR.lock().unwrap_or_else(|e| e.into_inner());
    let err = guard.get_or_insert_with(|| Output::new(2));
    let _ = err.write_until(line.as_bytes(), Some(Instant::now() + NOTE_WAIT), None);
}

/// `text` with every control character (C0, DEL, C1, so every ANSI and OSC sequence)
/// shown as an escape (`\x1b`, `\u{9b}`) instead of acting on a terminal. Line breaks and
/// tabs are kept when `keep_lines`.
pub fn escape_controls(text: &str, keep_lines: bool) -> Cow<'_, str> {
    let bad = |c: char| c.is_control() && !(keep_lines && (c == '\n' || c == '\t'));
    if !text.chars().any(bad) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !bad(c) {
            out.push(c);
        } else if (c as u32) < 0x80 {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
    Cow::Owned(out)
}

/// Write all of `text` to stdout, waiting as long as it takes (for `runner info`); a
/// closed pipe or a full disk is an error, never a panic.
pub fn print(text: &[u8]) -> std::io::Result<()> {
    Output::new(1).write_until(text, None, None).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped() {
        assert_eq!(escape_controls("plain text", false), "plain text");
        assert_eq!(
            escape_controls("\x1b]0;owned\x07title\x1b[2J", false),
            "\\x1b]0;owned\\x07title\\x1b[2J"
        );
        assert_eq!(escape_controls("a\u{9b}31m", false), "a\\u{9b}31m");
        assert_eq!(escape_controls("a\nb\tc\r", true), "a\nb\tc\\x0d");
        assert_eq!(escape_controls("a\nb", false), "a\\x0ab");
        assert_eq!(escape_controls("del\x7f", false), "del\\x7f");
    }

    #[test]
    fn a_full_pipe_gives_up_at_the_deadline() {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for two descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both were just created and are owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut out = Output::new(write.as_raw_fd());
        assert!(out.pollable().is_some());
        let big = vec![b'x'; 1 << 20];
        let start = Instant::now();
        let (written, why) = out
            .write_until(&big, Some(start + Duration::from_millis(100)), None)
            .unwrap();
        assert_eq!(why, Stopped::Deadline);
        assert!(written > 0 && written < big.len());
        assert!(start.elapsed() < Duration::from_secs(1));
        drop(read);
        let err = out.write_until(b"more", None, None).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::BrokenPipe);
    }
}

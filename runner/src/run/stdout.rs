//! stdout as the event loop sees it: rendered text waits in one buffer until stdout takes
//! it, written without blocking, so a reader that stalls (a pager, a full pipe, a stopped
//! log shipper) never stops the loop from seeing a signal or a deadline. The loop stops
//! reading its channels while [`Stdout::waiting`] is above its limit, so the buffer stays
//! bounded and a flood is dropped by the kernel (and reported) instead of held in memory.

use std::os::fd::BorrowedFd;
use std::time::{Duration, Instant};

use crate::stdio::{Output, Stopped};

pub(super) struct Stdout {
    out: Output,
    buf: Vec<u8>,
    /// How much of `buf` was written already.
    sent: usize,
    /// The reader went away (a closed pipe).
    gone: bool,
}

impl Stdout {
    pub fn new() -> Stdout {
        Stdout {
            out: Output::new(1),
            buf: Vec::with_capacity(1 << 16),
            sent: 0,
            gone: false,
        }
    }

    /// Where rendered text goes.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Bytes rendered and not written yet.
    pub fn waiting(&self) -> usize {
        self.buf.len() - self.sent
    }

    /// Whether the reader went away.
    pub fn gone(&self) -> bool {
        self.gone
    }

    /// The reader went away (epoll said so).
    pub fn mark_gone(&mut self) {
        self.gone = true;
        self.buf.clear();
        self.sent = 0;
    }

    /// The descriptor to wait on for room or for the reader leaving; `None` for a file.
    pub fn pollable(&self) -> Option<BorrowedFd<'_>> {
        self.out.pollable()
    }

    /// Write what stdout takes now, without waiting. A closed pipe is not an error: it
    /// marks the reader gone. Any other failure (a full disk) is.
    pub fn write_ready(&mut self) -> std::io::Result<()> {
        while self.waiting() > 0 && !self.gone {
            match self.out.try_write(&self.buf[self.sent..]) {
                Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => self.mark_gone(),
                Err(e) => return Err(e),
            }
        }
        self.compact();
        Ok(())
    }

    /// Forget what was written, without moving the rest more often than it grows.
    fn compact(&mut self) {
        if self.sent == self.buf.len() {
            self.buf.clear();
            self.sent = 0;
        } else if self.sent >= 1 << 16 && self.sent * 2 >= self.buf.len() {
            self.buf.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Wait up to `timeout` for room on stdout, or for `abort` to become readable (then
    /// true).
    pub fn wait_room(&self, timeout: Duration, abort: BorrowedFd<'_>) -> bool {
        self.out.wait_room(timeout, Some(abort))
    }

    /// Write everything left, until `deadline` or until `abort` becomes readable; returns
    /// how many bytes were dropped.
    pub fn finish(&mut self, deadline: Instant, abort: BorrowedFd<'_>) -> std::io::Result<usize> {
        if self.gone {
            return Ok(0);
        }
        let left = &self.buf[self.sent..];
        let dropped = match self.out.write_until(left, Some(deadline), Some(abort)) {
            Ok((_, Stopped::Done)) => 0,
            Ok((n, _)) => left.len() - n,
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.gone = true;
                0
            }
            Err(e) => return Err(e),
        };
        self.buf.clear();
        self.sent = 0;
        Ok(dropped)
    }
}

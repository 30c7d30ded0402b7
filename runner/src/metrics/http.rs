//! The `/metrics` endpoint: a small HTTP/1.1 responder on a std `TcpListener`, in a thread
//! of its own so a slow client never delays the event loop. It is bounded: one connection
//! at a time, a request head of at most [`MAX_HEAD`] bytes read within [`DEADLINE`], the
//! response written within the same deadline, then the connection closed.
//!
//! `GET /metrics` (or `HEAD`) answers OpenMetrics text when the client's `Accept` asks for
//! it (Prometheus does), else the Prometheus text format 0.0.4; `/` says where the metrics
//! are; anything else is 404, another method 405, a malformed request 400.

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::state::Shared;

/// The longest a request head may be.
const MAX_HEAD: usize = 8 << 10;
/// How long one connection may take, request and response.
const DEADLINE: Duration = Duration::from_secs(10);

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The listening endpoint; dropping it stops the thread at its next connection.
pub(super) struct Server {
    listener: Arc<TcpListener>,
    stop: Arc<AtomicBool>,
}

impl Server {
    /// Listen on `addr` now (so a taken port fails the run before anything loads), and
    /// serve `shared` from a thread.
    pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<Server> {
        let listener = Arc::new(TcpListener::bind(addr)?);
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s) = (listener.clone(), stop.clone());
        without_signals(|| {
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || serve(&l, &s, &shared))
        })?;
        Ok(Server { listener, stop })
    }

    /// Where it listens (the port, when 0 was asked for).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes an accept(2) waiting in the thread: it fails, and the thread sees `stop`.
        // SAFETY: shutdown(2) on a descriptor the listener owns and keeps open.
        unsafe { libc::shutdown(self.listener.as_raw_fd(), libc::SHUT_RDWR) };
    }
}

/// Run `spawn` with every signal blocked, so the thread it starts inherits that mask: the
/// signals a run answers (SIGINT, SIGTERM...) must reach the event loop's signalfd, and a
/// thread with them unblocked would take them with their default action (exit).
fn without_signals<T>(spawn: impl FnOnce() -> T) -> T {
    // SAFETY: sigfillset and pthread_sigmask write only the sets given, which live on the
    // stack for the calls; the old mask is put back before returning.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
        let out = spawn();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        out
    }
}

fn serve(listener: &TcpListener, stop: &AtomicBool, shared: &Arc<Shared>) {
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = answer(stream, shared);
            }
            // Out of descriptors, a connection reset before it was taken...: try again
            // soon, without spinning.
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// A request, as far as the responder cares.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
    openmetrics: bool,
}

/// The request line and `Accept` of a request head; `None` when it is not HTTP/1.x.
fn parse(head: &str) -> Option<Request> {
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, target, version) = (first.next()?, first.next()?, first.next()?);
    if first.next().is_some() || !version.starts_with("HTTP/1.") || method.is_empty() {
        return None;
    }
    let openmetrics = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("accept") && value.contains("application/openmetrics-text")
        })
    });
    Some(Request {
        method: method.into(),
        path: target.split('?').next().unwrap_or("").into(),
        openmetrics,
    })
}

/// Read a request head: up to the blank line, at most [`MAX_HEAD`] bytes, by `deadline`.
fn read_head(stream: &mut TcpStream, deadline: Instant) -> Option<String> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = stream.read(&mut buf).ok()?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

fn answer(mut stream: TcpStream, shared: &Arc<Shared>) -> std::io::Result<()> {
    let deadline = Instant::now() + DEADLINE;
    let request = read_head(&mut stream, deadline).and_then(|h| parse(&h));
    let (status, kind, body, allow) = match &request {
        None => ("400 Bad Request", TEXT, "bad request\n".to_string(), false),
        Some(r) if r.method != "GET" && r.method != "HEAD" => {
            ("405 Method Not Allowed", TEXT, "GET or HEAD\n".into(), true)
        }
        Some(r) if r.path == "/metrics" => {
            let kind = if r.openmetrics { OPENMETRICS } else { TEXT };
            ("200 OK", kind, shared.encode(r.openmetrics), false)
        }
        Some(r) if r.path == "/" => (
            "200 OK",
            TEXT,
            "runner: metrics are at /metrics\n".into(),
            false,
        ),
        Some(_) => (
            "404 Not Found",
            TEXT,
            "not found: metrics are at /metrics\n".into(),
            false,
        ),
    };
    let mut response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if allow { "Allow: GET, HEAD\r\n" } else { "" }
    )
    .into_bytes();
    if request.as_ref().is_none_or(|r| r.method != "HEAD") {
        response.extend_from_slice(body.as_bytes());
    }
    let left = deadline.saturating_duration_since(Instant::now());
    stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
    stream.write_all(&response)?;
    stream.shutdown(Shutdown::Write)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let prometheus = "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n";
        assert_eq!(
            parse(prometheus),
            Some(Request {
                method: "GET".into(),
                path: "/metrics".into(),
                openmetrics: true
            })
        );
        let curl = "GET /metrics?x=1 HTTP/1.0\r\naccept: */*\r\n\r\n";
        assert_eq!(
            parse(curl),
            Some(Request {
                method: "GET".into(),
                path: "/metrics".into(),
                openmetrics: false
            })
        );
        for bad in [
            "",
            "GET /metrics\r\n\r\n",
            "GET /metrics SPDY/3\r\n\r\n",
            "GET  /x HTTP/1.1 y\r\n\r\n",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}

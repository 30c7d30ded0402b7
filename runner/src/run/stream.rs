//! Phase 5 of `runner run`: the event loop. It waits on every channel at once (epoll) for
//! at most [`POLL`], drains each channel in bounded batches, decodes each record once
//! through its channel's writer into one buffer and writes that buffer per batch. Programs
//! may submit without waking the reader (`BPF_RB_NO_WAKEUP`); the timer drains them, so an
//! event waits at most [`POLL`] before it is printed. Map views print at `--interval` and
//! at exit; losses are reported as they are found and in the summary.

use std::fs::File;
use std::io::Write as _;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::attach::Attached;
use super::load::Loaded;
use super::poll::Poller;
use crate::output::EventWriter;
use crate::spec::plan::Plan;

/// The longest an event waits in a buffer before it is printed.
const POLL: Duration = Duration::from_millis(10);
/// Records consumed between two writes, so a flood is written in batches of bounded size.
const BATCH: usize = 4096;
/// How often the lost-event counts are checked.
const LOST_CHECK: Duration = Duration::from_millis(500);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    // A second Ctrl-C stops the runner at once, even while it drains.
    // SAFETY: signal() is async-signal-safe.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Stop on SIGINT and SIGTERM; without SA_RESTART so a blocked wait returns at once.
fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic and resets the disposition, both
        // async-signal-safe; `action` is valid for the call.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

/// What a run saw, for the summary line.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub events: u64,
    pub lost: u64,
}

/// What one channel's records become, and what was counted on the way.
struct Reader {
    writer: EventWriter,
    events: u64,
    /// Records shorter than the fixed part of their struct: counted, never shown as
    /// garbage.
    short: u64,
    /// Losses already reported.
    lost: u64,
}

/// The loop's own state; the channels and maps stay in [`Loaded`].
struct Stream {
    readers: Vec<Reader>,
    out: Vec<u8>,
    stdout: ManuallyDrop<File>,
    poller: Poller,
}

/// Print events until stopped (Ctrl-C, SIGTERM, `--duration`), then detach, drain what is
/// left, print the map views one last time and return what was seen.
pub(crate) fn stream(mut attached: Attached) -> anyhow::Result<Stats> {
    install_signal_handlers();
    let mut stream = Stream::new(attached.loaded())?;
    stream.flush().context("cannot write to stdout")?;
    let programs = attached.programs();
    crate::note!(
        "runner: {}: {programs} programs attached; tracing, Ctrl-C to stop",
        attached.loaded().package().package().name,
    );
    if let Some(note) = attached.loaded().views_note() {
        crate::note!("{note}");
    }
    let result = stream.run(attached.loaded());
    let mut loaded = attached.detach();
    let result = result.and_then(|()| {
        stream.drain(&mut loaded)?;
        stream.dump_views(&mut loaded, false);
        stream.flush()
    });
    stream.check_lost(&mut loaded);
    result.context("cannot write to stdout")?;
    Ok(stream.finish())
}

impl Stream {
    fn new(loaded: &mut Loaded) -> anyhow::Result<Stream> {
        let pkg = loaded.package().package();
        let format = loaded.invocation().format;
        let mut out = Vec::with_capacity(1 << 18);
        let mut readers = Vec::new();
        for event in &pkg.events {
            let padded = event.channel.pads_records();
            let mut writer = EventWriter::new(format, Plan::record(&event.ty, padded)?);
            if pkg.events.len() > 1 {
                writer = writer.with_label(&event.struct_name);
            }
            writer.header(&mut out);
            readers.push(Reader {
                writer,
                events: 0,
                short: 0,
                lost: 0,
            });
        }
        let mut poller = Poller::new().context("cannot create an epoll set")?;
        for (token, channel) in loaded.channels_mut().iter().enumerate() {
            poller
                .add(channel.fd(), token as u64)
                .with_context(|| format!("cannot wait on map `{}`", channel.map()))?;
        }
        Ok(Stream {
            readers,
            out,
            // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never
            // closes it.
            stdout: ManuallyDrop::new(unsafe { File::from_raw_fd(1) }),
            poller,
        })
    }

    /// Until a signal or the deadline: wait, drain, print views when due, check losses.
    fn run(&mut self, loaded: &mut Loaded) -> std::io::Result<()> {
        // A duration too long to add to the clock is no deadline at all.
        let run = loaded.invocation();
        let deadline = run.duration.and_then(|d| Instant::now().checked_add(d));
        let interval = run.interval;
        let mut next_dump = interval.and_then(|i| Instant::now().checked_add(i));
        let mut last_check = Instant::now();
        loop {
            let now = Instant::now();
            if STOP.load(Ordering::Relaxed) || deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
            let timeout = [deadline, next_dump]
                .into_iter()
                .flatten()
                .map(|at| at.saturating_duration_since(now))
                .fold(POLL, Duration::min);
            self.poller.wait(timeout).for_each(drop);
            self.drain(loaded)?;
            if let (Some(at), Some(every)) = (next_dump, interval) {
                if Instant::now() >= at {
                    let clear = loaded.invocation().clear;
                    self.dump_views(loaded, clear);
                    next_dump = at.checked_add(every).map(|next| next.max(Instant::now()));
                }
            }
            if last_check.elapsed() >= LOST_CHECK {
                self.check_lost(loaded);
                last_check = Instant::now();
            }
        }
    }

    /// Read every channel empty, writing out each batch as it fills.
    fn drain(&mut self, loaded: &mut Loaded) -> std::io::Result<()> {
        let Stream {
            readers,
            out,
            stdout,
            ..
        } = self;
        for (channel, reader) in loaded.channels_mut().iter_mut().zip(readers) {
            loop {
                let handed = channel.consume(BATCH, &mut |data: &[u8]| {
                    if data.len() >= reader.writer.fixed() {
                        reader.writer.event(data, out);
                        reader.events += 1;
                    } else {
                        reader.short += 1;
                    }
                });
                write_out(stdout, out)?;
                if handed < BATCH {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Print every map view; with `clear`, empty what was printed.
    fn dump_views(&mut self, loaded: &mut Loaded, clear: bool) {
        for view in loaded.views_mut() {
            view.dump(clear, &mut self.out);
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        write_out(&mut self.stdout, &mut self.out)
    }

    /// Report losses found since the last check.
    fn check_lost(&mut self, loaded: &mut Loaded) {
        for (channel, reader) in loaded.channels_mut().iter_mut().zip(&mut self.readers) {
            let now = channel.lost();
            if now > reader.lost {
                crate::note!(
                    "runner: {} events lost on map `{}` (buffer full)",
                    now - reader.lost,
                    channel.map()
                );
                reader.lost = now;
            }
        }
    }

    fn finish(self) -> Stats {
        let short: u64 = self.readers.iter().map(|r| r.short).sum();
        if short > 0 {
            crate::note!(
                "runner: {short} records were shorter than the fixed part of their event struct and were skipped"
            );
        }
        Stats {
            events: self.readers.iter().map(|r| r.events).sum(),
            lost: self.readers.iter().map(|r| r.lost).sum(),
        }
    }
}

/// Write `out` to stdout and empty it.
fn write_out(stdout: &mut File, out: &mut Vec<u8>) -> std::io::Result<()> {
    if !out.is_empty() {
        stdout.write_all(out)?;
        out.clear();
    }
    Ok(())
}

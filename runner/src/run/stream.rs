//! Phase 5 of `runner run`: the event loop. It waits on every channel at once (epoll),
//! drains each channel in bounded batches, decodes each record once through its channel's
//! writer into one buffer and writes that buffer as stdout takes it. Programs may submit
//! without waking the reader (`BPF_RB_NO_WAKEUP`, a perf buffer's watermark); a timer
//! drains them, so an event waits at most [`POLL`] before it is printed. The timer runs
//! only while it is needed: after a drain that found records, or always for a channel
//! whose records may wait unannounced. When every channel wakes a sleeping reader
//! (`runner/ring.h`) and the last drain found nothing, the loop tells the programs it
//! sleeps and blocks with no timer: idle, it never wakes. Map views print at `--interval`
//! and at exit; losses are reported at most once a [`LOST_CHECK`] and in the summary.
//!
//! What bounds it: signals come through a signalfd in the same epoll set, and stdout is
//! written without blocking (`run::stdout`), so a stalled reader never hides a signal or a
//! deadline; a closed stdout wakes the loop (`EPOLLERR`) without waiting for an event.
//! Rendered output is capped at [`HIGH_WATER`]: above it the channels are not read, the
//! kernel drops what does not fit (reported as lost), and memory stays bounded. After a
//! stop everything (detach, last drain, views, writing) ends within [`WIND_DOWN`].
//!
//! The loop runs at real-time priority when it may (`run::priority`), so a woken reader
//! is not kept waiting behind other tasks while a ring fills. A drain gives the loop back
//! after [`DRAIN_FOR`] even when records keep coming, so signals and deadlines are seen.
//!
//! With `--metrics`, each channel's [`EventTap`] sees every record and is published after
//! each batch and loss check, and the map views refresh their metrics every
//! [`METRICS_EVERY`]; without it those hooks are `None`.

use std::os::fd::AsFd as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use super::attach::Attached;
use super::load::Loaded;
use super::poll::Poller;
use super::priority;
use super::signals::{Request, Signals};
use super::stdout::Stdout;
use super::views::MapView;
use crate::metrics::{EventTap, Exporter};
use crate::output::EventWriter;
use crate::spec::plan::Plan;

/// The longest an event waits in a buffer before it is printed, while the timer runs.
const POLL: Duration = Duration::from_millis(10);
/// Records consumed between two writes at most.
const BATCH: usize = 4096;
/// Rendered bytes after which a batch stops early and is written.
const FLUSH_AT: usize = 64 << 10;
/// The longest one drain reads before the loop looks at its signals and deadlines again.
const DRAIN_FOR: Duration = Duration::from_millis(20);
/// Rendered bytes waiting for stdout above which channels are left unread.
const HIGH_WATER: usize = 1 << 20;
/// How often losses are checked, so at most one line reports them per this long.
const LOST_CHECK: Duration = Duration::from_secs(1);
/// After a stop, how long the runner may take to detach, drain and write what is left.
const WIND_DOWN: Duration = Duration::from_millis(500);
/// How often map views refresh their metrics (a sleeping loop wakes for it).
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// epoll tokens besides the channels' (their index).
const SIGNALS: u64 = u64::MAX;
const STDOUT: u64 = u64::MAX - 1;

/// Tell every channel's program whether the reader sleeps.
fn set_asleep(loaded: &Loaded, asleep: bool) {
    for channel in loaded.channels() {
        channel.set_asleep(asleep);
    }
}

/// What a run saw, for the summary line.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub events: u64,
    /// Counted losses (by the kernel, or the program's `runner:lost` counter).
    pub lost: u64,
    /// Times a ring without a counter was found full: losses that may have happened.
    pub times_full: u64,
    /// A perf buffer was found full in the last second: losses it may not have counted.
    pub still_full: bool,
}

impl Stats {
    /// `40222 events, 0 lost`, or with uncounted losses, what is known of them.
    pub fn summary(&self) -> String {
        let mut line = match (self.lost, self.times_full) {
            (lost, 0) => format!("{} events, {lost} lost", self.events),
            (0, full) => format!(
                "{} events; events may have been lost: the ring was full {full} times",
                self.events
            ),
            (lost, full) => format!(
                "{} events, {lost} lost; more may have been: a ring was full {full} times",
                self.events
            ),
        };
        if self.still_full {
            line.push_str("; more may have been lost: a perf buffer was full in the last second");
        }
        line
    }
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
    /// Times found full, already reported.
    full: u64,
    /// Records read at the end that a stalled stdout had no room for.
    unwritten: u64,
    /// `--metrics`: what the channel's records count in.
    tap: Option<EventTap>,
}

/// The loop's own state; the channels and maps stay in [`Loaded`].
struct Stream {
    readers: Vec<Reader>,
    stdout: Stdout,
    /// Whether stdout is in the epoll set, and whether the set waits for room on it.
    stdout_polled: bool,
    waits_for_room: bool,
    poller: Poller,
    /// Per channel: whether the epoll set waits on it (not while it is held back).
    waited_on: Vec<bool>,
    signals: Signals,
    stop: bool,
    /// `--metrics`: when the map views next refresh their metrics.
    next_metrics: Option<Instant>,
    /// Whether the loop runs at real-time priority.
    realtime: bool,
    /// Whether the last drain stopped at [`DRAIN_FOR`] with records left.
    behind: bool,
}

/// Print events until stopped (SIGINT, SIGTERM, SIGHUP, `--duration`, stdout closed),
/// then detach, drain what is left, print the map views one last time and return what
/// was seen: all of that within [`WIND_DOWN`] of the stop.
pub(crate) fn stream(mut attached: Attached, metrics: Option<&Exporter>) -> anyhow::Result<Stats> {
    let mut stream = Stream::new(attached.loaded(), metrics)?;
    stream
        .stdout
        .write_ready()
        .context("cannot write to stdout")?;
    // Before saying it traces, so that from then on the reader is what it will be.
    stream.realtime = priority::raise(attached.loaded().invocation().reader_priority);
    let programs = attached.programs();
    crate::note!(
        "runner: {}: {programs} programs attached; tracing, Ctrl-C to stop",
        attached.loaded().package().package().name,
    );
    if let Some(note) = attached.loaded().views_note() {
        crate::note!("{note}");
    }
    let result = stream.run(attached.loaded());
    let wind_down = Instant::now() + WIND_DOWN;
    let mut loaded = attached.detach();
    let result = result.and_then(|()| stream.wind_down(&mut loaded, wind_down));
    stream.check_lost(&mut loaded);
    result.context("cannot write to stdout")?;
    Ok(stream.finish(&loaded))
}

impl Stream {
    fn new(loaded: &mut Loaded, metrics: Option<&Exporter>) -> anyhow::Result<Stream> {
        let pkg = loaded.package().package();
        let format = loaded.invocation().format;
        let labels = &loaded.invocation().labels;
        let mut stdout = Stdout::new();
        let mut readers = Vec::new();
        for (i, event) in pkg.events.iter().enumerate() {
            let padded = event.channel.pads_records();
            let shows = loaded.invocation().shows;
            let plan = Plan::record_showing(&event.ty, padded, shows)?;
            let mut writer = EventWriter::new(format, plan);
            if pkg.events.len() > 1 {
                writer = writer.with_label(&event.struct_name);
            }
            if !labels.is_empty() {
                writer = writer.with_keys(labels);
            }
            writer.header(stdout.buf());
            readers.push(Reader {
                writer,
                events: 0,
                short: 0,
                lost: 0,
                full: 0,
                unwritten: 0,
                tap: metrics.map(|m| m.tap(i)),
            });
        }
        if let Some(exporter) = metrics {
            for view in loaded.views_mut() {
                view.export(exporter)?;
            }
        }
        let mut poller = Poller::new().context("cannot create an epoll set")?;
        let waited_on = vec![true; loaded.channels().len()];
        for (token, channel) in loaded.channels_mut().iter().enumerate() {
            poller
                .add(channel.fd(), token as u64)
                .with_context(|| format!("cannot wait on map `{}`", channel.map()))?;
        }
        let signals = Signals::new().context("cannot receive signals")?;
        poller
            .add(signals.as_fd(), SIGNALS)
            .context("cannot wait for signals")?;
        // Nothing asked for yet: EPOLLERR (the reader went away) always wakes the wait.
        // A device epoll cannot wait on (/dev/null) never makes a writer wait either.
        let stdout_polled = match stdout.pollable() {
            Some(fd) => match poller.add_for(fd, STDOUT, 0) {
                Ok(()) => true,
                Err(e) if e.raw_os_error() == Some(libc::EPERM) => false,
                Err(e) => return Err(e).context("cannot wait on stdout"),
            },
            None => false,
        };
        Ok(Stream {
            readers,
            stdout,
            stdout_polled,
            waits_for_room: false,
            poller,
            waited_on,
            signals,
            stop: false,
            // Only views need a timer: the channels' counts go out with each batch.
            next_metrics: loaded
                .views_mut()
                .iter()
                .any(MapView::exported)
                .then(Instant::now),
            realtime: false,
            behind: false,
        })
    }

    /// Until a stop: wait, write, drain, print views when due, check losses.
    fn run(&mut self, loaded: &mut Loaded) -> std::io::Result<()> {
        // A duration too long to add to the clock is no deadline at all.
        let run = loaded.invocation();
        let deadline = run.duration.and_then(|d| Instant::now().checked_add(d));
        let interval = run.interval;
        let mut next_dump = interval.and_then(|i| Instant::now().checked_add(i));
        let mut last_check = Instant::now();
        // Whether the last drain found records (then the next one is at most POLL away),
        // and whether records came since losses were last checked.
        let (mut busy, mut unchecked) = (true, false);
        loop {
            self.take_signals(loaded);
            let now = Instant::now();
            if self.stop || self.stdout.gone() || deadline.is_some_and(|d| now >= d) {
                return Ok(());
            }
            // Idle: nothing found, nothing to write, and every channel's records wake a
            // sleeping reader. Then no timer, only the deadlines (and one loss check).
            let idle = !busy
                && self.stdout.waiting() == 0
                && loaded.channels().iter().all(|c| c.wakes_reader());
            let lost_due = unchecked.then(|| last_check + LOST_CHECK);
            let poll = loaded
                .channels()
                .iter()
                .filter_map(|c| c.held())
                .fold(POLL, Duration::min);
            let timeout = [deadline, next_dump, lost_due, self.next_metrics]
                .into_iter()
                .flatten()
                .map(|at| at.saturating_duration_since(now))
                .fold(if idle { Duration::MAX } else { poll }, Duration::min);
            let timeout = if self.behind { Duration::ZERO } else { timeout };
            if idle && self.fall_asleep(loaded)? {
                (busy, unchecked) = (true, true);
                continue;
            }
            self.wait(timeout)?;
            if idle {
                set_asleep(loaded, false);
            }
            self.stdout.write_ready()?;
            let before = self.handled();
            self.drain(loaded)?;
            self.wait_on_unheld(loaded)?;
            busy = self.handled() != before;
            unchecked |= busy;
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
                unchecked = false;
            }
            self.refresh_metrics(loaded);
        }
    }

    /// When due, hand every map view's contents to its metrics.
    fn refresh_metrics(&mut self, loaded: &mut Loaded) {
        let Some(at) = self.next_metrics.filter(|at| Instant::now() >= *at) else {
            return;
        };
        for view in loaded.views_mut() {
            view.refresh_metrics();
        }
        // Behind (a long stall): the next one a full period from now, not at once.
        let now = Instant::now();
        let next = at + METRICS_EVERY;
        self.next_metrics = Some(if next < now {
            now + METRICS_EVERY
        } else {
            next
        });
    }

    /// Before blocking with no timer: tell the programs the reader sleeps, then drain once
    /// more, since a record published before they could see that woke nobody (see
    /// `channel::wakeup`). Returns whether that drain found records; then the programs are
    /// told the reader is awake again.
    fn fall_asleep(&mut self, loaded: &mut Loaded) -> std::io::Result<bool> {
        set_asleep(loaded, true);
        let before = self.handled();
        self.drain(loaded)?;
        let found = self.handled() != before;
        if found {
            set_asleep(loaded, false);
        }
        Ok(found)
    }

    /// Take a channel that holds records back out of the epoll set (it polls readable all
    /// along, and is drained on a timer, `Channel::held`), and put it back once it stops; epoll
    /// then reports at once whatever came in between.
    fn wait_on_unheld(&mut self, loaded: &Loaded) -> std::io::Result<()> {
        for (token, (channel, waited_on)) in loaded
            .channels()
            .iter()
            .zip(&mut self.waited_on)
            .enumerate()
        {
            let wait = channel.held().is_none();
            if wait != *waited_on {
                let events = if wait { libc::EPOLLIN as u32 } else { 0 };
                self.poller.modify(channel.fd(), token as u64, events)?;
                *waited_on = wait;
            }
        }
        Ok(())
    }

    /// Records read so far, shown or not.
    fn handled(&self) -> u64 {
        self.readers.iter().map(|r| r.events + r.short).sum()
    }

    /// Wait up to `timeout` for records, a signal, room on stdout (when output waits) or
    /// its reader leaving. Above [`HIGH_WATER`] only stdout and the signals are waited on:
    /// the channels, which are not read then, would wake the wait at once.
    fn wait(&mut self, timeout: Duration) -> std::io::Result<()> {
        if self.stdout.waiting() >= HIGH_WATER {
            self.stdout.wait_room(timeout, self.signals.as_fd());
            return Ok(());
        }
        let want_room = self.stdout.waiting() > 0;
        if self.stdout_polled && want_room != self.waits_for_room {
            if let Some(fd) = self.stdout.pollable() {
                let events = if want_room { libc::EPOLLOUT as u32 } else { 0 };
                self.poller.modify(fd, STDOUT, events)?;
            }
            self.waits_for_room = want_room;
        }
        let gone = (libc::EPOLLERR | libc::EPOLLHUP) as u32;
        let reader_left = self
            .poller
            .wait(timeout)
            .any(|(token, events)| token == STDOUT && events & gone != 0);
        if reader_left {
            self.stdout.mark_gone();
        }
        Ok(())
    }

    /// Act on the signals that arrived.
    fn take_signals(&mut self, loaded: &mut Loaded) {
        while let Some(request) = self.signals.next() {
            match request {
                Request::Stop(_) => self.stop = true,
                Request::Report => {
                    let stats = self.stats();
                    crate::note!("runner: so far {}", stats.summary());
                    self.dump_views(loaded, false);
                }
                Request::RealtimeSpent if self.realtime => {
                    priority::lower();
                    self.realtime = false;
                    crate::note!(
                        "runner: the reader ran {} ms at real-time priority without a pause; it goes on at normal priority",
                        priority::BUDGET.as_millis()
                    );
                }
                Request::RealtimeSpent => {}
            }
        }
    }

    /// Read the channels, in batches of at most [`BATCH`] records or [`FLUSH_AT`] bytes of
    /// text, each written out as it is rendered, until they are empty, output waiting
    /// for stdout reaches [`HIGH_WATER`], or [`DRAIN_FOR`] has passed (`behind`).
    fn drain(&mut self, loaded: &mut Loaded) -> std::io::Result<()> {
        let Stream {
            readers,
            stdout,
            behind,
            ..
        } = self;
        let until = Instant::now() + DRAIN_FOR;
        *behind = false;
        for (channel, reader) in loaded.channels_mut().iter_mut().zip(readers) {
            loop {
                if stdout.waiting() >= HIGH_WATER || stdout.gone() {
                    return Ok(());
                }
                let out = stdout.buf();
                let stop_at = out.len() + FLUSH_AT;
                let handed = channel.consume(BATCH, &mut |data: &[u8]| {
                    if data.len() >= reader.writer.fixed() {
                        reader.writer.event(data, out);
                        reader.events += 1;
                        if let Some(tap) = &mut reader.tap {
                            tap.record(data);
                        }
                    } else {
                        reader.short += 1;
                    }
                    out.len() < stop_at
                });
                let full_batch = handed >= BATCH || stdout.buf().len() >= stop_at;
                if let Some(tap) = &mut reader.tap {
                    tap.publish(reader.events);
                }
                stdout.write_ready()?;
                if !full_batch {
                    break;
                }
                if Instant::now() >= until {
                    *behind = true;
                    break;
                }
            }
        }
        Ok(())
    }

    /// After the programs are detached: read what they left in the channels, print the
    /// views, and write it all, giving up at `deadline` or on another signal.
    fn wind_down(&mut self, loaded: &mut Loaded, deadline: Instant) -> std::io::Result<()> {
        self.stdout.write_ready()?;
        // Print what is left while stdout takes it; a drain that ends below the cap has
        // emptied the channels.
        loop {
            self.drain(loaded)?;
            if self.behind && Instant::now() < deadline {
                continue;
            }
            if self.stdout.waiting() < HIGH_WATER || self.stdout.gone() {
                break;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || self.stdout.wait_room(left, self.signals.as_fd()) {
                break;
            }
            self.stdout.write_ready()?;
        }
        self.discard(loaded, deadline);
        self.dump_views(loaded, false);
        let dropped = self.stdout.finish(deadline, self.signals.as_fd())?;
        let unwritten: u64 = self.readers.iter().map(|r| r.unwritten).sum();
        if dropped > 0 || unwritten > 0 {
            crate::note!(
                "runner: stdout is not being read: {unwritten} events left in the buffers and the last {dropped} bytes of output were not written"
            );
        }
        Ok(())
    }

    /// Read what is left in the channels without printing it (stdout has no room), only
    /// counting it, until they are empty or `deadline`.
    fn discard(&mut self, loaded: &mut Loaded, deadline: Instant) {
        for (channel, reader) in loaded.channels_mut().iter_mut().zip(&mut self.readers) {
            while Instant::now() < deadline {
                let handed = channel.consume(BATCH, &mut |_: &[u8]| true);
                reader.unwritten += handed as u64;
                if handed < BATCH {
                    break;
                }
            }
        }
    }

    /// Print every map view; with `clear`, empty what was printed.
    fn dump_views(&mut self, loaded: &mut Loaded, clear: bool) {
        if self.stdout.gone() {
            return;
        }
        for view in loaded.views_mut() {
            view.dump(clear, self.stdout.buf());
        }
    }

    /// Report, in one line, losses found since the last check.
    fn check_lost(&mut self, loaded: &mut Loaded) {
        let mut found = Vec::new();
        for (channel, reader) in loaded.channels_mut().iter_mut().zip(&mut self.readers) {
            let lost = channel.lost();
            if lost > reader.lost {
                found.push(format!(
                    "{} events lost on map `{}` (buffer full)",
                    lost - reader.lost,
                    channel.map()
                ));
                reader.lost = lost;
            }
            let full = channel.times_full();
            if full > reader.full {
                found.push(format!(
                    "ring `{}` was found full {} times: events may have been lost",
                    channel.map(),
                    full - reader.full
                ));
                reader.full = full;
            }
            if let Some(tap) = &mut reader.tap {
                tap.losses(reader.lost, reader.full);
            }
        }
        if !found.is_empty() {
            crate::note!("runner: {}", found.join("; "));
        }
    }

    fn stats(&self) -> Stats {
        Stats {
            events: self.readers.iter().map(|r| r.events).sum(),
            lost: self.readers.iter().map(|r| r.lost).sum(),
            times_full: self.readers.iter().map(|r| r.full).sum(),
            still_full: false,
        }
    }

    fn finish(self, loaded: &Loaded) -> Stats {
        let short: u64 = self.readers.iter().map(|r| r.short).sum();
        if short > 0 {
            crate::note!(
                "runner: {short} records were shorter than the fixed part of their event struct and were skipped"
            );
        }
        Stats {
            still_full: loaded.channels().iter().any(|c| c.still_full()),
            ..self.stats()
        }
    }
}

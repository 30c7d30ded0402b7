//! The event loop: read ring buffers and perf buffers, decode each record once through its
//! plan, render into one buffer and write it per batch. Programs may submit without waking
//! the reader (`BPF_RB_NO_WAKEUP`); the loop drains on a short timer, so an event waits at
//! most [`POLL`] before it is printed.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::Write as _;
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use std::os::fd::AsFd as _;

use libbpf_rs::{AsRawLibbpf as _, Map, MapCore, RingBufferBuilder};

use crate::output::{wall_clock, Format, Renderer};
use crate::package::{Channel, Global};
use crate::perfbuf::PerfReader;
use crate::plan::Plan;
use crate::run::{Checked, Loaded, Settings};
use crate::views::MapView;

/// The longest an event waits in a buffer before it is printed.
const POLL: Duration = Duration::from_millis(10);
/// Records consumed between two writes, so a flood is written in batches of bounded size.
const BATCH: usize = 4096;
/// How often the lost-event counters kept by programs are read.
const LOST_CHECK: Duration = Duration::from_millis(500);

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(sig: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
    // A second Ctrl-C stops the runner at once, even while it drains.
    // SAFETY: signal() is async-signal-safe.
    unsafe { libc::signal(sig, libc::SIG_DFL) };
}

/// Stop on SIGINT and SIGTERM; without SA_RESTART so a blocked poll returns at once.
fn install_signal_handlers() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_signal as *const () as usize;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(sig, &action, std::ptr::null_mut());
        }
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub lost: u64,
}

/// A lost-event counter kept by the program in a global.
struct LostCounter<'a> {
    map_name: String,
    global: &'a Global,
    seen: u64,
}

fn read_counter(obj: &libbpf_rs::Object, global: &Global) -> Option<u64> {
    let section = std::ffi::CString::new(global.section.as_str()).ok()?;
    // SAFETY: the object is loaded and alive; libbpf finds internal maps by section name.
    let map = unsafe {
        libbpf_rs::libbpf_sys::bpf_object__find_map_by_name(
            obj.as_libbpf_object().as_ptr(),
            section.as_ptr(),
        )
    };
    if map.is_null() {
        return None;
    }
    let key = 0u32;
    // SAFETY: `map` belongs to the loaded object; `value` has the map's value size.
    let value = unsafe {
        let mut value = vec![0u8; libbpf_rs::libbpf_sys::bpf_map__value_size(map) as usize];
        let fd = libbpf_rs::libbpf_sys::bpf_map__fd(map);
        let rc = libbpf_rs::libbpf_sys::bpf_map_lookup_elem(
            fd,
            (&key as *const u32).cast(),
            value.as_mut_ptr().cast(),
        );
        (rc == 0).then_some(value)?
    };
    let start = global.offset as usize;
    let bytes = value.get(start..start + 8)?;
    Some(u64::from_le_bytes(bytes.try_into().ok()?))
}

fn stdout() -> ManuallyDrop<File> {
    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop never closes it.
    ManuallyDrop::new(unsafe { File::from_raw_fd(1) })
}

/// Open the event buffers of `loaded`, attach its programs, and print until stopped.
pub fn stream(loaded: &Loaded, checked: &Checked, settings: &Settings) -> anyhow::Result<Stats> {
    install_signal_handlers();
    let obj = &loaded.obj;
    let pkg = &checked.pkg;
    let mut out_file = stdout();
    let out = RefCell::new(Vec::<u8>::with_capacity(1 << 18));
    let events = Cell::new(0u64);
    let perf_lost = Cell::new(0u64);
    // Records smaller than their struct cannot be decoded; they are counted, not shown.
    let short = Cell::new(0u64);

    let mut renderers = Vec::new();
    for event in &pkg.events {
        let mut renderer = Renderer::new(settings.format, Plan::compile(&event.ty)?);
        if pkg.events.len() > 1 {
            renderer = renderer.with_label(&event.struct_name);
        }
        renderer.header(&mut out.borrow_mut());
        renderers.push(RefCell::new(renderer));
    }
    out_file
        .write_all(&out.borrow())
        .context("cannot write to stdout")?;
    out.borrow_mut().clear();

    let maps: Vec<Map> = obj.maps().collect();
    let find_map = |name: &str| maps.iter().find(|m| m.name() == name);
    let on_record = |renderer: &RefCell<Renderer>, data: &[u8]| {
        let mut renderer = renderer.borrow_mut();
        if data.len() >= renderer.size() {
            renderer.event(data, &mut out.borrow_mut());
            events.set(events.get() + 1);
        } else {
            short.set(short.get() + 1);
        }
    };

    let mut ring = RingBufferBuilder::new();
    let mut has_ring = false;
    let mut perf = Vec::new();
    for (event, renderer) in pkg.events.iter().zip(&renderers) {
        let map = find_map(&event.map)
            .with_context(|| format!("map `{}` is missing after load", event.map))?;
        match event.channel {
            Channel::Ringbuf => {
                ring.add(map, move |data: &[u8]| {
                    on_record(renderer, data);
                    0
                })?;
                has_ring = true;
            }
            Channel::PerfEventArray => {
                let buffer = PerfReader::new(
                    map.as_fd(),
                    move |data: &[u8]| on_record(renderer, data),
                    |cpu: i32, count: u64| {
                        perf_lost.set(perf_lost.get() + count);
                        crate::note!(
                            "runner: {count} events lost on CPU {cpu} (perf buffer `{}` full)",
                            event.map
                        );
                    },
                )
                .with_context(|| format!("cannot open perf buffer `{}`", event.map))?;
                perf.push(buffer);
            }
        }
    }
    let ring = if has_ring { Some(ring.build()?) } else { None };

    let mut views = Vec::new();
    for map in &pkg.maps {
        if let Some(view) = MapView::new(map)? {
            let live = find_map(&map.name)
                .with_context(|| format!("map `{}` is missing after load", map.name))?;
            views.push((view, live));
        }
    }
    let dump_views = || {
        let (hms, iso) = wall_clock();
        let time = if settings.format == Format::Json {
            iso
        } else {
            hms
        };
        let mut buf = out.borrow_mut();
        for (view, map) in &views {
            view.dump(*map, settings.format, &time, &mut buf);
        }
    };
    let mut next_dump = settings
        .interval
        .and_then(|i| Instant::now().checked_add(i));

    let mut counters: Vec<LostCounter> = pkg
        .events
        .iter()
        .filter_map(|e| {
            let name = e.lost_counter.as_ref()?;
            let global = pkg.globals.iter().find(|g| &g.name == name)?;
            Some(LostCounter {
                map_name: e.map.clone(),
                global,
                seen: 0,
            })
        })
        .collect();
    let check_lost = |counters: &mut Vec<LostCounter>| -> u64 {
        let mut total = 0;
        for c in counters.iter_mut() {
            if let Some(now) = read_counter(obj, c.global) {
                if now > c.seen {
                    crate::note!(
                        "runner: {} events lost on map `{}` (buffer full)",
                        now - c.seen,
                        c.map_name
                    );
                    c.seen = now;
                }
            }
            total += c.seen;
        }
        total
    };

    // Readers exist now: attach, so no event finds its perf buffer missing.
    let attached = loaded.attach(checked, settings)?;
    crate::note!(
        "runner: {}: {} programs attached; tracing, Ctrl-C to stop",
        pkg.name,
        attached.programs
    );
    // A duration too long to add to the clock is no deadline at all.
    let deadline = settings
        .duration
        .and_then(|d| Instant::now().checked_add(d));
    let mut last_check = Instant::now();
    let mut flush = |out_file: &mut File| -> std::io::Result<()> {
        let mut buf = out.borrow_mut();
        if !buf.is_empty() {
            out_file.write_all(&buf)?;
            buf.clear();
        }
        Ok(())
    };
    let drain = |out_file: &mut File,
                 flush: &mut dyn FnMut(&mut File) -> std::io::Result<()>|
     -> std::io::Result<()> {
        if let Some(ring) = &ring {
            while usize::try_from(ring.consume_raw_n(BATCH)).is_ok_and(|n| n >= BATCH) {
                flush(out_file)?;
            }
        }
        for buffer in &perf {
            buffer.consume();
        }
        flush(out_file)
    };

    let mut ring_lost = 0;
    let result = loop {
        if STOP.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            break Ok(());
        }
        let mut timeout = deadline.map_or(POLL, |d| {
            POLL.min(d.saturating_duration_since(Instant::now()))
        });
        if let Some(at) = next_dump {
            timeout = timeout.min(at.saturating_duration_since(Instant::now()));
        }
        match (&ring, perf.first()) {
            (Some(ring), _) => {
                let _ = ring.poll_raw(timeout);
            }
            (None, Some(buffer)) => {
                buffer.poll(timeout);
            }
            (None, None) => std::thread::sleep(timeout),
        }
        if let Err(e) = drain(&mut out_file, &mut flush) {
            break Err(e);
        }
        if let (Some(at), Some(every)) = (next_dump, settings.interval) {
            if Instant::now() >= at {
                dump_views();
                next_dump = at.checked_add(every).map(|next| next.max(Instant::now()));
            }
        }
        if last_check.elapsed() >= LOST_CHECK {
            ring_lost = check_lost(&mut counters);
            last_check = Instant::now();
        }
    };
    drop(attached);
    let result = result.and_then(|()| {
        drain(&mut out_file, &mut flush)?;
        dump_views();
        flush(&mut out_file)
    });
    ring_lost = ring_lost.max(check_lost(&mut counters));
    result.context("cannot write to stdout")?;
    if short.get() > 0 {
        crate::note!(
            "runner: {} records were shorter than their event struct and were skipped",
            short.get()
        );
    }
    Ok(Stats {
        events: events.get(),
        lost: ring_lost + perf_lost.get(),
    })
}

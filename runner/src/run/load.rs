//! Phase 3 of `runner run`: the object in the kernel, with what reading it needs opened
//! before any program is attached (event channels, map views), so no event is emitted
//! before its reader exists. A failed load is diagnosed: the verifier's log, a missing
//! tracepoint, missing privileges or a program type this kernel lacks.

use std::rc::Rc;

use anyhow::Context as _;
use libbpf_rs::{Map, MapCore as _, MapHandle, Object};

use super::configure::Configured;
use super::error::RunError;
use super::invocation::Invocation;
use super::views::MapView;
use crate::channel::{self, Channel, LostCounter, WakeFlag};
use crate::kernel;
use crate::spec::mapview;
use crate::spec::package::{serde_name, AttachKind, Package};
use crate::spec::verify::Verified;
use crate::spec::vocab::DataSection;

/// In the kernel, readers open, not attached yet. Dropping it unloads everything.
pub(crate) struct Loaded {
    // Readers go before the object they read.
    channels: Vec<Box<dyn Channel>>,
    views: Vec<MapView>,
    /// Which maps are shown and why, said once tracing starts.
    views_note: Option<String>,
    package: Verified,
    run: Invocation,
    obj: Object,
}

impl Loaded {
    pub fn new(configured: Configured) -> anyhow::Result<Loaded> {
        let (package, run, open) = configured.into_parts();
        let pkg = package.package();
        check_tracepoints(pkg, &run.enabled)?;
        kernel::clear_log();
        let obj = open.load().map_err(|e| load_error(pkg, e))?;
        let channels = open_channels(pkg, &obj)?;
        let (views, views_note) = open_views(pkg, &run, &obj)?;
        Ok(Loaded {
            channels,
            views,
            views_note,
            package,
            run,
            obj,
        })
    }

    pub fn package(&self) -> &Verified {
        &self.package
    }

    pub fn invocation(&self) -> &Invocation {
        &self.run
    }

    pub fn object(&self) -> &Object {
        &self.obj
    }

    /// Which maps are shown and why, when the user did not choose.
    pub fn views_note(&self) -> Option<&str> {
        self.views_note.as_deref()
    }

    pub fn views_mut(&mut self) -> &mut [MapView] {
        &mut self.views
    }

    pub fn channels(&self) -> &[Box<dyn Channel>] {
        &self.channels
    }

    pub fn channels_mut(&mut self) -> &mut [Box<dyn Channel>] {
        &mut self.channels
    }
}

/// A handle of its own on map `name` of `obj`.
fn handle(obj: &Object, name: &str) -> anyhow::Result<MapHandle> {
    let map = obj
        .maps()
        .find(|m| m.name() == name)
        .with_context(|| format!("map `{name}` is missing after load"))?;
    Ok(MapHandle::try_from(&map)?)
}

/// The maps shown, each with its reader: chosen at run time, declared, or by default
/// (`spec::mapview`). Defaults are announced, so a user knows where the rows come from.
fn open_views(
    pkg: &Package,
    run: &Invocation,
    obj: &Object,
) -> anyhow::Result<(Vec<MapView>, Option<String>)> {
    let chosen = mapview::chosen(&pkg.maps, !pkg.events.is_empty(), &run.views);
    let mut views = Vec::new();
    for &(index, view) in &chosen {
        let map = &pkg.maps[index];
        let handle = handle(obj, &map.name)?;
        views.push(MapView::new(map, view, run, handle)?);
    }
    let declared = pkg.maps.iter().any(|m| m.view.is_some());
    let mut note = None;
    if pkg.events.is_empty() && chosen.is_empty() {
        note = Some(
            "runner: no event channel and no map to show; --view MAP=VIEW shows one (`runner info` lists the maps)".to_string()
        );
    } else if pkg.events.is_empty() && !declared && run.views.is_empty() {
        let shown: Vec<String> = chosen
            .iter()
            .map(|&(i, view)| format!("`{}` ({})", pkg.maps[i].name, view.name()))
            .collect();
        note = Some(format!(
            "runner: no event channel; showing map {} at exit{} (choose with --view MAP=VIEW)",
            shown.join(", "),
            if run.interval.is_some() {
                " and every --interval"
            } else {
                ""
            }
        ));
    }
    Ok((views, note))
}

fn open_channels(pkg: &Package, obj: &Object) -> anyhow::Result<Vec<Box<dyn Channel>>> {
    let mut channels = Vec::new();
    let mut flags = Vec::new();
    for event in &pkg.events {
        let counter = match &event.lost_counter {
            Some(name) => lost_counter(pkg, obj, name)?,
            None => None,
        };
        let wake = match &event.wakeup {
            Some(name) => wake_flag(pkg, obj, name, &mut flags),
            None => None,
        };
        let map = handle(obj, &event.map)?;
        let channel = channel::open(event, map, counter, wake).with_context(|| {
            format!("cannot open {} `{}`", serde_name(&event.channel), event.map)
        })?;
        channels.push(channel);
    }
    Ok(channels)
}

/// The program's flag `name` for a sleeping reader (`runner/ring.h`), mapped once for all
/// the channels that read it. `None` when it cannot be mapped (a kernel without mmapable
/// data sections): those channels are then drained on a timer, as a runner that does not
/// set the flag drains them.
fn wake_flag(
    pkg: &Package,
    obj: &Object,
    name: &str,
    mapped: &mut Vec<(String, Rc<WakeFlag>)>,
) -> Option<Rc<WakeFlag>> {
    if let Some((_, flag)) = mapped.iter().find(|(n, _)| n == name) {
        return Some(Rc::clone(flag));
    }
    let global = pkg.globals.iter().find(|g| g.name == name)?;
    let section_map =
        |m: &Map| DataSection::names_map(&global.section, &m.name().to_string_lossy());
    let map = obj.maps().find(section_map)?;
    let flag = MapHandle::try_from(&map)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|handle| WakeFlag::map(handle, global.offset as usize));
    match flag {
        Ok(flag) => {
            let flag = Rc::new(flag);
            mapped.push((name.to_string(), Rc::clone(&flag)));
            Some(flag)
        }
        Err(e) => {
            crate::note!(
                "runner: cannot map global `{name}` ({e}); draining its rings every 10 ms"
            );
            None
        }
    }
}

/// Where the program keeps global `name`, a lost-event counter.
fn lost_counter(pkg: &Package, obj: &Object, name: &str) -> anyhow::Result<Option<LostCounter>> {
    let Some(global) = pkg.globals.iter().find(|g| g.name == name) else {
        return Ok(None);
    };
    let section_map =
        |m: &Map| DataSection::names_map(&global.section, &m.name().to_string_lossy());
    let Some(map) = obj.maps().find(section_map) else {
        return Ok(None);
    };
    Ok(Some(LostCounter {
        map: MapHandle::try_from(&map)?,
        offset: global.offset as usize,
    }))
}

/// Every enabled tracepoint program's tracepoint exists (mounting tracefs if needed).
fn check_tracepoints(pkg: &Package, enabled: &[bool]) -> anyhow::Result<()> {
    let mut tracepoints = pkg
        .programs
        .iter()
        .zip(enabled)
        .filter(|(p, on)| **on && p.attach.kind == AttachKind::Tracepoint)
        .map(|(p, _)| p)
        .peekable();
    if tracepoints.peek().is_none() {
        return Ok(());
    }
    let tracefs = kernel::ensure_tracefs()?;
    for p in tracepoints {
        kernel::check_tracepoint(&tracefs, &p.attach.target, &p.name)?;
    }
    Ok(())
}

fn load_error(pkg: &Package, e: libbpf_rs::Error) -> RunError {
    let error = e.to_string();
    let program = kernel::failed_program().unwrap_or_default();
    if let Some(log) = kernel::verifier_log_tail(20) {
        return RunError::Verifier {
            name: pkg.name.clone(),
            program,
            log,
        };
    }
    let spec = pkg.programs.iter().find(|p| p.name == program);
    let hint = match spec {
        _ if !kernel::privileged() => {
            "; loading BPF programs needs root, or CAP_BPF and CAP_PERFMON".to_string()
        }
        Some(p) if e.kind() == libbpf_rs::ErrorKind::PermissionDenied => format!(
            "; the kernel refused program `{}` ({} {}): this kernel may not support {} programs",
            p.name,
            serde_name(&p.attach.kind),
            p.attach.target,
            serde_name(&p.attach.kind)
        ),
        Some(p) => format!(
            " (program `{}`, {} {})",
            p.name,
            serde_name(&p.attach.kind),
            p.attach.target
        ),
        None => kernel::last_libbpf_message()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
    };
    RunError::Load {
        name: pkg.name.clone(),
        error,
        hint,
        program: Some(program).filter(|p| !p.is_empty()),
    }
}

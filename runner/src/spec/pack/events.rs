//! Event channels: which struct each ring buffer or perf event array carries, and which
//! global, if any, counts the events the program could not submit to it.

use super::annotations::Annotations;
use super::error::PackError;
use super::metrics;
use crate::spec::btf::ObjectBtf;
use crate::spec::package::{Event, Flag, Global, Map, MapType};
use crate::spec::plan::Plan;
use crate::spec::types::Kind;
use crate::spec::vocab::{DataSection, KEEP_SECTION};

/// Pick the struct each event channel carries: `--event map=struct`, else the map's tag
/// `runner:event=<struct>`, else (one channel only) `struct event`, else the one struct
/// whose name contains "event".
pub(super) fn events(
    btf: &ObjectBtf,
    tags: &Annotations,
    maps: &[(u32, Map)],
    globals: &[Global],
    overrides: &[(String, String)],
) -> Result<Vec<Event>, PackError> {
    let channels: Vec<&(u32, Map)> = maps
        .iter()
        .filter(|(_, m)| m.kind.channel().is_some())
        .collect();
    for (map, _) in overrides {
        if !channels.iter().any(|(_, m)| &m.name == map) {
            return Err(PackError::UnknownEventMap(map.clone()));
        }
    }
    check_lost_counters(tags, &channels)?;
    let candidates = event_candidates(btf);
    let mut out = Vec::new();
    for (var_id, map) in &channels {
        let chosen = overrides
            .iter()
            .find(|(m, _)| m == &map.name)
            .map(|(_, s)| s.as_str())
            .or_else(|| tags.event(*var_id));
        let name = match chosen {
            Some(name) => name.to_string(),
            None => pick(map, channels.len(), &candidates)?,
        };
        let Some(&id) = btf.structs_named(&name).first() else {
            return Err(PackError::MissingStruct {
                map: map.name.clone(),
                name,
                hint: " (clang only emits types reachable from globals, function signatures and CO-RE relocations; `runner build` keeps the source's structs, or add `struct <name> *unused __attribute__((unused));`)".into(),
            });
        };
        let ty = btf.resolve(id)?;
        Plan::compile(&ty)?;
        let lost_counter = globals
            .iter()
            .find(|g| matches!(&g.flag, Flag::None(_)) && tags.lost_by(&g.name) == Some(&map.name))
            .map(|g| g.name.clone());
        let wakeup = match tags.wakeup(*var_id) {
            Some(global) => Some(wakeup_flag(map, global, globals)?),
            None => None,
        };
        let mut event = Event {
            map: map.name.clone(),
            channel: map.kind.channel().expect("filtered on channel maps"),
            struct_name: name,
            ty,
            lost_counter,
            metrics: Vec::new(),
            wakeup,
        };
        event.metrics = metrics::from_tags(&event, tags.metrics(*var_id))?;
        out.push(event);
    }
    check_metric_tags(tags, maps)?;
    Ok(out)
}

/// The struct a channel without a tag or override carries, when that is unambiguous.
fn pick(map: &Map, channels: usize, candidates: &[String]) -> Result<String, PackError> {
    let ambiguous = |why: String, names: &[String]| PackError::AmbiguousEvent {
        map: map.name.clone(),
        why,
        candidates: list_structs(names),
    };
    let eventish: Vec<String> = candidates
        .iter()
        .filter(|s| s.contains("event"))
        .cloned()
        .collect();
    match (candidates, eventish.as_slice()) {
        _ if channels > 1 => {
            let why = format!("{channels} event channels and no tag on this one");
            Err(ambiguous(why, candidates))
        }
        (all, _) if all.iter().any(|s| s == "event") => Ok("event".to_string()),
        ([one], _) | (_, [one]) => Ok(one.clone()),
        ([], _) => Err(ambiguous(
            "the program defines no struct".into(),
            candidates,
        )),
        (_, []) => Err(ambiguous("no struct is named `event`".into(), candidates)),
        (_, many) => Err(ambiguous("several structs could be the event".into(), many)),
    }
}

/// `runner:metric=` is on event channels only.
fn check_metric_tags(tags: &Annotations, maps: &[(u32, Map)]) -> Result<(), PackError> {
    for (id, map) in maps.iter().filter(|(_, m)| m.kind.channel().is_none()) {
        if let Some(tag) = tags.metrics(*id).next() {
            return Err(PackError::BadMetric {
                map: map.name.clone(),
                name: tag.name.clone(),
                what: "runner:metric counts events: it goes on a ring buffer or perf event array"
                    .into(),
            });
        }
    }
    Ok(())
}

/// The global a ring's `runner:wakeup=<global>` names: a 4-byte integer the runner can
/// write while the program runs (in `.bss` or `.data`).
fn wakeup_flag(map: &Map, global: &str, globals: &[Global]) -> Result<String, PackError> {
    let bad = |why: &str| PackError::BadWakeup {
        map: map.name.clone(),
        global: global.to_string(),
        why: why.to_string(),
    };
    if map.kind != MapType::Ringbuf {
        return Err(bad(
            "only a ring buffer's submits can wake the reader this way",
        ));
    }
    let Some(g) = globals.iter().find(|g| g.name == global) else {
        return Err(bad("the object has no such global"));
    };
    let writable = matches!(
        DataSection::of(&g.section),
        Some(DataSection::Bss | DataSection::Data)
    );
    if !writable {
        return Err(bad(
            "it is not in .bss or .data, where the runner can set it",
        ));
    }
    if !matches!(g.ty.kind, Kind::Int { size: 4, .. }) {
        return Err(bad("it is not a 4-byte integer"));
    }
    Ok(global.to_string())
}

/// Every `runner:lost=<map>` names an event channel.
fn check_lost_counters(tags: &Annotations, channels: &[&(u32, Map)]) -> Result<(), PackError> {
    for (global, map) in tags.lost_counters() {
        if !channels.iter().any(|(_, m)| &m.name == map) {
            let names: Vec<String> = channels
                .iter()
                .map(|(_, m)| format!("`{}`", m.name))
                .collect();
            return Err(PackError::LostNamesNoChannel {
                global: global.clone(),
                map: map.clone(),
                channels: if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                },
            });
        }
    }
    Ok(())
}

/// The structs an event may be: the ones the program's own files define when `runner build`
/// anchored them, else every named struct but the kernel's (program context types and
/// tracepoint records), so a tracepoint's context is never taken for the event.
/// CO-RE flavours (`struct foo___x`, libbpf's name for another layout of `struct foo`)
/// are never candidates.
fn event_candidates(btf: &ObjectBtf) -> Vec<String> {
    let mut anchored = btf.keep_structs(KEEP_SECTION);
    anchored.retain(|n| !is_flavour(n));
    if !anchored.is_empty() {
        return anchored;
    }
    let contexts = btf.param_structs();
    btf.struct_names()
        .into_iter()
        .filter(|n| {
            !contexts.contains(n)
                && !n.starts_with("trace_event_raw_")
                && n != "trace_entry"
                && !is_flavour(n)
        })
        .collect()
}

/// A CO-RE flavour of a kernel type: libbpf ignores what follows `___` in its name.
pub(crate) fn is_flavour(name: &str) -> bool {
    name.contains("___")
}

/// `struct a`, `struct b` for an error message.
fn list_structs(names: &[String]) -> String {
    if names.is_empty() {
        "(no named structs in the BTF)".into()
    } else {
        names
            .iter()
            .map(|n| format!("`struct {n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

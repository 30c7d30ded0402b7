//! The packer: a BPF object (plus, when there is one, its C source) in, a [`Package`] out.
//! It reads the ELF with `object` and the BTF through [`ObjectBtf`], never needs root, and
//! gives the same package for the same inputs, byte for byte.

use crate::btf::{BtfError, ObjectBtf};
use crate::elf::{ElfError, ElfInfo};
use crate::flags;
use crate::maps;
use crate::output::json_value;
use crate::package::{
    Attach, AttachKind, Channel, Condition, Embedded, Event, Flag, Global, Map, Package, Program,
    FORMAT_VERSION,
};
use crate::plan::{Plan, PlanError};
use crate::source;
use crate::types::{Kind, Type};

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error(transparent)]
    Elf(#[from] ElfError),
    #[error("bad BTF")]
    Btf(#[from] BtfError),
    #[error("bad layout")]
    Plan(#[from] PlanError),
    #[error("global `{name}` in {section} has no ELF symbol, so its offset is unknown")]
    NoSymbol { name: String, section: String },
    #[error("global `{name}` is {symbol} bytes in the symbol table but its BTF type `{c}` is {btf} bytes")]
    SizeMismatch {
        name: String,
        c: String,
        symbol: u64,
        btf: u64,
    },
    #[error("map `{map}` names event struct `{name}`, which is not in the object's BTF{hint}")]
    MissingStruct {
        map: String,
        name: String,
        hint: String,
    },
    #[error("cannot tell which struct map `{map}` carries: {why}; candidates: {candidates}. Tag the map with __attribute__((btf_decl_tag(\"runner:event=<struct>\"))) or pass --event {map}=<struct>")]
    AmbiguousEvent {
        map: String,
        why: String,
        candidates: String,
    },
    #[error(
        "--event names map `{0}`, which is not a ring buffer or perf event array of this object"
    )]
    UnknownEventMap(String),
    #[error("global `{0}` is tagged runner:lost but is not a __u64 (the runner reads 8 bytes)")]
    BadLostCounter(String),
    #[error("map `{map}`: unknown view `{view}` (expected table or log2_hist)")]
    UnknownView { map: String, view: String },
    #[error("map `{map}`: a {view} view needs {needs}")]
    BadView {
        map: String,
        view: &'static str,
        needs: &'static str,
    },
    #[error("program `{program}`: tag `runner:{key}={global}` names no bool global")]
    BadCondition {
        program: String,
        key: String,
        global: String,
    },
}

/// What the packer is told besides the object.
#[derive(Debug, Default, Clone)]
pub struct PackOptions {
    pub name: String,
    /// The C source, for comments (help of globals, description).
    pub source: Option<String>,
    pub description: Option<String>,
    /// `map=struct` overrides of the event struct lookup.
    pub events: Vec<(String, String)>,
}

/// What the object itself says about its globals, events, maps and programs. The runner
/// recomputes this from the embedded object to check a package before trusting it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub license: String,
    pub globals: Vec<Global>,
    pub events: Vec<Event>,
    pub maps: Vec<Map>,
    pub programs: Vec<Program>,
}

/// Describe `object`; `source` (the C text) only adds the help of globals.
pub fn describe(
    object: &[u8],
    source: Option<&str>,
    events: &[(String, String)],
) -> Result<Description, PackError> {
    let elf = ElfInfo::parse(object)?;
    let btf = ObjectBtf::parse(&elf.btf)?;
    let maps = maps::maps(&btf)?;
    let globals = globals(&elf, &btf, source)?;
    let events = self::events(&btf, &maps, &globals, events)?;
    let programs = programs(&elf, &btf, &globals)?;
    Ok(Description {
        license: elf.license.clone().unwrap_or_default(),
        globals,
        events,
        maps: maps.into_iter().map(|(_, m)| m).collect(),
        programs,
    })
}

/// Describe `object` completely, as a package.
pub fn pack(object: &[u8], opts: &PackOptions) -> Result<Package, PackError> {
    let d = describe(object, opts.source.as_deref(), &opts.events)?;
    let description = opts
        .description
        .clone()
        .or_else(|| opts.source.as_deref().and_then(source::description))
        .map(|d| match d.strip_prefix(&format!("{}:", opts.name)) {
            Some(rest) => rest.trim_start().to_string(),
            None => d,
        })
        .unwrap_or_default();
    Ok(Package {
        format_version: FORMAT_VERSION,
        name: opts.name.clone(),
        description,
        license: d.license,
        globals: d.globals,
        events: d.events,
        maps: d.maps,
        programs: d.programs,
        object: Embedded::new(object),
    })
}

/// Is `section` one whose globals libbpf exposes as a writable or read-only data map?
fn is_data_section(section: &str) -> bool {
    [".rodata", ".data", ".bss"].iter().any(|base| {
        section == *base
            || section
                .strip_prefix(base)
                .is_some_and(|r| r.starts_with('.'))
    })
}

fn globals(elf: &ElfInfo, btf: &ObjectBtf, source: Option<&str>) -> Result<Vec<Global>, PackError> {
    let mut out = Vec::new();
    for sec in btf.datasecs() {
        if !is_data_section(&sec.name) {
            continue;
        }
        for var in sec.vars {
            let sym = elf
                .data_symbol(&var.name, &sec.name)
                .ok_or_else(|| PackError::NoSymbol {
                    name: var.name.clone(),
                    section: sec.name.clone(),
                })?;
            let ty = btf.resolve(var.type_id)?;
            let size = ty.size();
            if sym.size != 0 && sym.size != size {
                return Err(PackError::SizeMismatch {
                    name: var.name,
                    c: ty.c,
                    symbol: sym.size,
                    btf: size,
                });
            }
            let default = default_value(elf, &sec.name, sym.offset, &ty)?;
            let lost_map = btf.runner_tag(var.id, "lost");
            if lost_map.is_some()
                && ty.kind
                    != (Kind::Int {
                        size: 8,
                        signed: false,
                    })
            {
                return Err(PackError::BadLostCounter(var.name));
            }
            let flag = match lost_map {
                Some(map) => Flag::None(format!(
                    "counts events lost on map `{map}`; the runner reports it"
                )),
                None if var.is_static => {
                    Flag::None("static variables are private to the program".into())
                }
                None => flags::flag_for(&var.name, &ty),
            };
            let help = source
                .and_then(|s| source::global_comment(s, &var.name))
                .unwrap_or_default();
            out.push(Global {
                name: var.name,
                section: sec.name.clone(),
                offset: sym.offset,
                size,
                ty,
                default,
                flag,
                help,
            });
        }
    }
    // Configuration first: .rodata, then .data, then .bss; by offset within each.
    let rank = |s: &str| {
        [".rodata", ".data", ".bss"]
            .iter()
            .position(|b| s.starts_with(b))
            .unwrap_or(3)
    };
    out.sort_by(|a, b| {
        (rank(&a.section), &a.section, a.offset).cmp(&(rank(&b.section), &b.section, b.offset))
    });
    Ok(out)
}

/// Globals larger than this get no decoded default (`null`).
const MAX_DEFAULT_SIZE: u64 = 64 * 1024;

fn default_value(
    elf: &ElfInfo,
    section: &str,
    offset: u64,
    ty: &Type,
) -> Result<serde_json::Value, PackError> {
    // Big buffers are not configuration: their default is not decoded.
    if ty.size() > MAX_DEFAULT_SIZE {
        return Ok(serde_json::Value::Null);
    }
    let size = ty.size() as usize;
    let mut bytes = vec![0u8; size];
    if let Some((Some(data), _)) = elf.section(section) {
        let start = (offset as usize).min(data.len());
        let end = (start + size).min(data.len());
        bytes[..end - start].copy_from_slice(&data[start..end]);
    }
    Ok(json_value(&Plan::compile(ty)?, &bytes))
}

fn channel(map: &Map) -> Option<Channel> {
    match map.kind.as_str() {
        "ringbuf" => Some(Channel::Ringbuf),
        "perf_event_array" => Some(Channel::PerfEventArray),
        _ => None,
    }
}

/// Pick the struct each event channel carries: `--event map=struct`, else the map's tag
/// `runner:event=<struct>`, else (one channel only) `struct event`, else the one struct
/// whose name contains "event".
fn events(
    btf: &ObjectBtf,
    maps: &[(u32, Map)],
    globals: &[Global],
    overrides: &[(String, String)],
) -> Result<Vec<Event>, PackError> {
    let channels: Vec<&(u32, Map)> = maps.iter().filter(|(_, m)| channel(m).is_some()).collect();
    for (map, _) in overrides {
        if !channels.iter().any(|(_, m)| &m.name == map) {
            return Err(PackError::UnknownEventMap(map.clone()));
        }
    }
    let candidates = event_candidates(btf);
    let mut out = Vec::new();
    for (var_id, map) in &channels {
        let chosen = overrides
            .iter()
            .find(|(m, _)| m == &map.name)
            .map(|(_, s)| s.as_str())
            .or_else(|| btf.runner_tag(*var_id, "event"));
        let ambiguous = |why: String, names: &[String]| PackError::AmbiguousEvent {
            map: map.name.clone(),
            why,
            candidates: list(names),
        };
        let eventish: Vec<String> = candidates
            .iter()
            .filter(|s| s.contains("event"))
            .cloned()
            .collect();
        let name = match (chosen, candidates.as_slice(), eventish.as_slice()) {
            (Some(name), _, _) => name.to_string(),
            (None, _, _) if channels.len() > 1 => {
                let why = format!("{} event channels and no tag on this one", channels.len());
                return Err(ambiguous(why, &candidates));
            }
            (None, all, _) if all.iter().any(|s| s == "event") => "event".to_string(),
            (None, [one], _) | (None, _, [one]) => one.clone(),
            (None, [], _) => {
                return Err(ambiguous(
                    "the program defines no struct".into(),
                    &candidates,
                ))
            }
            (None, _, []) => {
                return Err(ambiguous("no struct is named `event`".into(), &candidates))
            }
            (None, _, many) => {
                return Err(ambiguous("several structs could be the event".into(), many))
            }
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
            .find(|g| {
                matches!(&g.flag, Flag::None(_)) && is_lost_counter_for(btf, &g.name, &map.name)
            })
            .map(|g| g.name.clone());
        out.push(Event {
            map: map.name.clone(),
            channel: channel(map).expect("filtered on channel maps"),
            struct_name: name,
            ty,
            lost_counter,
        });
    }
    Ok(out)
}

/// The structs an event may be: the ones the program's own files define when `runner build`
/// anchored them, else every named struct but the kernel's (program context types and
/// tracepoint records), so a tracepoint's context is never taken for the event.
fn event_candidates(btf: &ObjectBtf) -> Vec<String> {
    let anchored = btf.keep_structs(crate::compile::KEEP_SECTION);
    if !anchored.is_empty() {
        return anchored;
    }
    let contexts = btf.param_structs();
    btf.struct_names()
        .into_iter()
        .filter(|n| {
            !contexts.contains(n) && !n.starts_with("trace_event_raw_") && n != "trace_entry"
        })
        .collect()
}

fn is_lost_counter_for(btf: &ObjectBtf, global: &str, map: &str) -> bool {
    btf.datasecs()
        .iter()
        .flat_map(|s| s.vars.iter())
        .any(|v| v.name == global && btf.runner_tag(v.id, "lost") == Some(map))
}

fn list(names: &[String]) -> String {
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

/// The attach kind and target a libbpf section name stands for.
pub fn attach_for(section: &str) -> Attach {
    let (prefix, target) = section.split_once('/').unwrap_or((section, ""));
    let base = prefix.strip_suffix(".s").unwrap_or(prefix);
    let base = base.strip_suffix(".multi").unwrap_or(base);
    let kind = match base {
        "tracepoint" | "tp" => AttachKind::Tracepoint,
        "raw_tracepoint" | "raw_tp" | "raw_tracepoint.w" | "raw_tp.w" => AttachKind::RawTracepoint,
        "tp_btf" => AttachKind::TpBtf,
        "kprobe" => AttachKind::Kprobe,
        "kretprobe" => AttachKind::Kretprobe,
        "ksyscall" => AttachKind::Ksyscall,
        "kretsyscall" => AttachKind::Kretsyscall,
        "uprobe" => AttachKind::Uprobe,
        "uretprobe" => AttachKind::Uretprobe,
        "usdt" => AttachKind::Usdt,
        "fentry" => AttachKind::Fentry,
        "fexit" => AttachKind::Fexit,
        "fmod_ret" => AttachKind::FmodRet,
        "lsm" => AttachKind::Lsm,
        "perf_event" => AttachKind::PerfEvent,
        "iter" => AttachKind::Iter,
        _ => AttachKind::Other,
    };
    Attach {
        kind,
        target: target.to_string(),
    }
}

fn programs(elf: &ElfInfo, btf: &ObjectBtf, globals: &[Global]) -> Result<Vec<Program>, PackError> {
    let funcs = btf.funcs();
    let mut out = Vec::new();
    for prog in &elf.programs {
        let mut when = None;
        if let Some(&(id, _)) = funcs.iter().find(|(_, n)| n == &prog.name) {
            for (key, equals) in [("if", true), ("unless", false)] {
                let Some(global) = btf.runner_tag(id, key) else {
                    continue;
                };
                let is_bool = globals
                    .iter()
                    .any(|g| g.name == global && matches!(g.ty.kind, Kind::Bool { .. }));
                if !is_bool {
                    return Err(PackError::BadCondition {
                        program: prog.name.clone(),
                        key: key.into(),
                        global: global.into(),
                    });
                }
                when = Some(Condition {
                    global: global.to_string(),
                    equals,
                });
            }
        }
        out.push(Program {
            name: prog.name.clone(),
            section: prog.section.clone(),
            attach: attach_for(&prog.section),
            when,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_map_to_attach_kinds() {
        let a = attach_for("tracepoint/syscalls/sys_enter_kill");
        assert_eq!(
            (a.kind, a.target.as_str()),
            (AttachKind::Tracepoint, "syscalls/sys_enter_kill")
        );
        assert_eq!(attach_for("tp_btf/sched_switch").kind, AttachKind::TpBtf);
        assert_eq!(attach_for("uprobe").kind, AttachKind::Uprobe);
        assert_eq!(
            attach_for("uprobe.s//bin/bash:readline").kind,
            AttachKind::Uprobe
        );
        assert_eq!(attach_for("kprobe.multi/do_*").kind, AttachKind::Kprobe);
        assert_eq!(attach_for("perf_event").kind, AttachKind::PerfEvent);
        assert_eq!(attach_for("xdp").kind, AttachKind::Other);
    }

    #[test]
    fn data_sections() {
        assert!(is_data_section(".rodata"));
        assert!(is_data_section(".data.custom"));
        assert!(!is_data_section(".rodata_x"));
        assert!(!is_data_section(".maps"));
    }
}

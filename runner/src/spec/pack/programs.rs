//! Programs: the attach kind and target their section names, and the condition
//! (`runner:if` / `runner:unless`) under which they are loaded.

use super::annotations::Annotations;
use super::error::PackError;
use crate::spec::btf::ObjectBtf;
use crate::spec::elf::ElfInfo;
use crate::spec::package::{Attach, AttachKind, Condition, Global, Program};
use crate::spec::types::Kind;

/// The attach kind and target a libbpf section name stands for.
pub(super) fn attach_for(section: &str) -> Attach {
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

pub(super) fn programs(
    elf: &ElfInfo,
    btf: &ObjectBtf,
    tags: &Annotations,
    globals: &[Global],
) -> Result<Vec<Program>, PackError> {
    let funcs = btf.funcs();
    let mut out = Vec::new();
    for prog in &elf.programs {
        let mut when = None;
        if let Some(&(id, _)) = funcs.iter().find(|(_, n)| n == &prog.name) {
            for (key, global, equals) in tags.conditions(id) {
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
            optional: false,
            targets: Vec::new(),
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
}

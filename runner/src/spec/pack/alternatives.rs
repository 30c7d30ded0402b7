//! Alternative programs: the same kernel event attached through different mechanisms, of
//! which exactly one may load. libbpf-tools ship such twins (`tp_btf/X` and `raw_tp/X`,
//! `fentry/F` and `kprobe/F`, `fexit/F` and `kretprobe/F`) and pick one in their front end;
//! here they form a group by themselves, best mechanism first. A sidecar declares groups
//! across different hooks; a program it groups, or one with a condition of its own, is no
//! twin.

use crate::spec::package::{AttachKind, Group, Program};

/// The event programs attach to: what kind of hook, and its name.
type Event<'a> = (&'static str, &'a str);

/// The event a program attaches to, when it has twins by another mechanism, and the rank
/// of its mechanism (0 is the best).
fn twin_key(p: &Program) -> Option<(Event<'_>, u8)> {
    let target = p.attach.target.as_str();
    let (event, rank) = match p.attach.kind {
        AttachKind::TpBtf => ("tracepoint", 0),
        AttachKind::RawTracepoint => ("tracepoint", 1),
        AttachKind::Fentry => ("entry", 0),
        AttachKind::Kprobe => ("entry", 1),
        AttachKind::Fexit => ("exit", 0),
        AttachKind::Kretprobe => ("exit", 1),
        _ => return None,
    };
    (!target.is_empty()).then_some(((event, target), rank))
}

/// The groups of `programs`: each declared one, then every set of twins (exactly one
/// program per mechanism for one event, none of them declared or conditional).
pub(super) fn groups(programs: &[Program], declared: &[Vec<String>]) -> Vec<Group> {
    let mut out: Vec<Group> = declared
        .iter()
        .map(|g| Group {
            programs: g.clone(),
            declared: true,
        })
        .collect();
    let free = programs
        .iter()
        .filter(|p| p.when.is_none() && !declared.iter().flatten().any(|name| name == &p.name));
    let mut by_event: Vec<(Event, Vec<(u8, &Program)>)> = Vec::new();
    for p in free {
        let Some((event, rank)) = twin_key(p) else {
            continue;
        };
        match by_event.iter_mut().find(|(e, _)| *e == event) {
            Some((_, members)) => members.push((rank, p)),
            None => by_event.push((event, vec![(rank, p)])),
        }
    }
    for (_, mut members) in by_event {
        let mut ranks: Vec<u8> = members.iter().map(|(r, _)| *r).collect();
        ranks.sort_unstable();
        ranks.dedup();
        // Two programs of one mechanism on one event both run: they are no alternatives.
        if members.len() < 2 || ranks.len() != members.len() {
            continue;
        }
        members.sort_by_key(|(rank, _)| *rank);
        out.push(Group {
            programs: members.iter().map(|(_, p)| p.name.clone()).collect(),
            declared: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::package::{Attach, Condition};

    fn prog(name: &str, kind: AttachKind, target: &str) -> Program {
        Program {
            name: name.into(),
            section: String::new(),
            attach: Attach {
                kind,
                target: target.into(),
            },
            when: None,
            optional: false,
            targets: Vec::new(),
        }
    }

    fn names(groups: &[Group]) -> Vec<Vec<&str>> {
        groups
            .iter()
            .map(|g| g.programs.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn twins_group_best_mechanism_first() {
        let programs = [
            prog("switch_raw", AttachKind::RawTracepoint, "sched_switch"),
            prog("switch_btf", AttachKind::TpBtf, "sched_switch"),
            prog("wakeup_btf", AttachKind::TpBtf, "sched_wakeup"),
            prog("exit_kretprobe", AttachKind::Kretprobe, "vfs_read"),
            prog("entry_kprobe", AttachKind::Kprobe, "vfs_read"),
            prog("entry_fentry", AttachKind::Fentry, "vfs_read"),
            prog("exit_fexit", AttachKind::Fexit, "vfs_read"),
            prog("tp", AttachKind::Tracepoint, "sched/sched_switch"),
        ];
        assert_eq!(
            names(&groups(&programs, &[])),
            [
                ["switch_btf", "switch_raw"],
                ["exit_fexit", "exit_kretprobe"],
                ["entry_fentry", "entry_kprobe"],
            ]
        );
    }

    #[test]
    fn declared_conditional_and_same_mechanism_programs_are_no_twins() {
        let mut conditional = prog("kprobe_if", AttachKind::Kprobe, "do_nanosleep");
        conditional.when = Some(Condition {
            global: "use_fentry".into(),
            equals: false,
        });
        let programs = [
            conditional,
            prog("fentry", AttachKind::Fentry, "do_nanosleep"),
            prog("a_btf", AttachKind::TpBtf, "sched_switch"),
            prog("b_btf", AttachKind::TpBtf, "sched_switch"),
            prog("c_raw", AttachKind::RawTracepoint, "sched_switch"),
            prog("start_btf", AttachKind::TpBtf, "block_io_start"),
            prog("start_fentry", AttachKind::Fentry, "blk_account_io_start"),
            prog("start_raw", AttachKind::RawTracepoint, "block_io_start"),
        ];
        let declared = vec![vec!["start_btf".to_string(), "start_fentry".to_string()]];
        let groups = groups(&programs, &declared);
        assert_eq!(names(&groups), [["start_btf", "start_fentry"]]);
        assert!(groups[0].declared);
    }
}

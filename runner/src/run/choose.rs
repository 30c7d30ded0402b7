//! Which programs load on this kernel, decided as a libbpf-tools front end decides it:
//! of each group of alternatives the first (best) one whose hook this kernel has, and an
//! optional program only when its hook is there. A program that then fails to load or
//! attach is dropped and the object loaded again, when it is optional or its group has
//! another member to fall back to; otherwise its error stands. Each program left out says
//! so in one line on stderr.

use crate::probe::{Hook, Hooks};
use crate::spec::package::{serde_name, Package, Program};

/// The programs a run may load and those it does.
pub(crate) struct Selection {
    /// Allowed by the command line: conditions hold, not `--no-program`.
    allowed: Vec<bool>,
    /// Failed to load or attach once.
    failed: Vec<bool>,
    /// What loads.
    enabled: Vec<bool>,
    /// The lines already returned, so deciding again does not repeat them.
    said: Vec<String>,
}

/// `program `x` (tp_btf sched_switch)`.
fn named(p: &Program) -> String {
    let target = match p.attach.target.as_str() {
        "" => String::new(),
        t => format!(" {t}"),
    };
    format!("`{}` ({}{target})", p.name, serde_name(&p.attach.kind))
}

impl Selection {
    /// Start from what the command line allows (one flag per program of `pkg`).
    pub fn new(allowed: Vec<bool>) -> Selection {
        Selection {
            failed: vec![false; allowed.len()],
            enabled: allowed.clone(),
            allowed,
            said: Vec::new(),
        }
    }

    /// Whether each program (by index) loads.
    pub fn enabled(&self) -> &[bool] {
        &self.enabled
    }

    /// Decide, probing the hooks; returns a line for each program left out, or an error
    /// when a group that must have one has none that can attach.
    pub fn choose(&mut self, pkg: &Package, hooks: &dyn Hooks) -> Result<Vec<String>, String> {
        let mut notes = Vec::new();
        let candidate: Vec<bool> = (0..self.allowed.len())
            .map(|i| self.allowed[i] && !self.failed[i])
            .collect();
        self.enabled = candidate.clone();
        let index = |name: &str| pkg.programs.iter().position(|p| p.name == name);
        for group in &pkg.groups {
            let members: Vec<usize> = (group.programs.iter())
                .filter_map(|n| index(n))
                .filter(|&i| candidate[i])
                .collect();
            if members.is_empty() {
                continue;
            }
            let mut missing = Vec::new();
            let mut chosen = None;
            for &i in &members {
                match hooks.probe(&pkg.programs[i]) {
                    Hook::Available => {
                        chosen = Some(i);
                        break;
                    }
                    Hook::Missing(why) => missing.push((i, why)),
                }
            }
            for &i in &members {
                self.enabled[i] = Some(i) == chosen;
            }
            let reasons = || {
                let r: Vec<String> = (missing.iter())
                    .map(|(i, why)| format!("{}: {why}", named(&pkg.programs[*i])))
                    .collect();
                r.join("; ")
            };
            match chosen {
                Some(c) => notes.extend(missing.iter().map(|(i, why)| {
                    format!(
                        "program {} cannot attach here ({why}); using its alternative {}",
                        named(&pkg.programs[*i]),
                        named(&pkg.programs[c])
                    )
                })),
                None if members.iter().all(|&i| pkg.programs[i].optional) => {
                    notes.push(format!("skipping optional programs: {}", reasons()))
                }
                None => {
                    return Err(format!(
                        "no program of the group {} can attach on this kernel: {}",
                        group.programs.join(" | "),
                        reasons()
                    ))
                }
            }
        }
        for (i, p) in pkg.programs.iter().enumerate() {
            let grouped = pkg.groups.iter().any(|g| g.programs.contains(&p.name));
            if !self.enabled[i] || !p.optional || grouped {
                continue;
            }
            if let Hook::Missing(why) = hooks.probe(p) {
                self.enabled[i] = false;
                notes.push(format!("skipping optional program {}: {why}", named(p)));
            }
        }
        if !pkg.programs.is_empty() && !self.enabled.contains(&true) {
            return Err("no program is left to load".into());
        }
        notes.retain(|n| !self.said.contains(n));
        self.said.extend(notes.iter().cloned());
        Ok(notes)
    }

    /// Program `name` failed to load or attach with `error`. When it is optional, or its
    /// group has another member, drop it and decide again (returns the lines to print);
    /// `None` when the failure stands.
    pub fn after_failure(
        &mut self,
        pkg: &Package,
        hooks: &dyn Hooks,
        name: &str,
        error: &str,
    ) -> Option<Result<Vec<String>, String>> {
        let i = pkg.programs.iter().position(|p| p.name == name)?;
        if !self.enabled[i] || self.failed[i] {
            return None;
        }
        let p = &pkg.programs[i];
        let group = pkg.groups.iter().find(|g| g.programs.contains(&p.name));
        let fallback = group.is_some_and(|g| {
            g.programs.iter().any(|other| {
                let j = pkg.programs.iter().position(|q| &q.name == other);
                j.is_some_and(|j| j != i && self.allowed[j] && !self.failed[j])
            })
        });
        if !p.optional && !fallback {
            return None;
        }
        self.failed[i] = true;
        let first_line = error.lines().next().unwrap_or(error);
        let mut notes = vec![format!(
            "{} program {} failed ({first_line}); leaving it out",
            if p.optional {
                "optional"
            } else {
                "alternative"
            },
            named(p)
        )];
        Some(self.choose(pkg, hooks).map(|more| {
            notes.extend(more);
            notes
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::package::{Attach, AttachKind, Embedded, Group};

    fn prog(name: &str, kind: AttachKind, target: &str, optional: bool) -> Program {
        Program {
            name: name.into(),
            section: String::new(),
            attach: Attach {
                kind,
                target: target.into(),
            },
            when: None,
            optional,
            targets: Vec::new(),
        }
    }

    fn package(programs: Vec<Program>, groups: &[&[&str]]) -> Package {
        Package {
            format_version: 1,
            requires: Vec::new(),
            name: "t".into(),
            description: String::new(),
            license: String::new(),
            globals: Vec::new(),
            switches: Vec::new(),
            events: Vec::new(),
            maps: Vec::new(),
            programs,
            groups: groups
                .iter()
                .map(|g| Group {
                    programs: g.iter().map(|s| s.to_string()).collect(),
                    declared: false,
                })
                .collect(),
            declarations: None,
            object: Embedded::new(b""),
        }
    }

    /// A kernel with only some mechanisms, recording the order of the probes.
    struct Fake {
        has: Vec<AttachKind>,
        probed: std::cell::RefCell<Vec<String>>,
    }

    impl Hooks for Fake {
        fn probe(&self, p: &Program) -> Hook {
            self.probed.borrow_mut().push(p.name.clone());
            if self.has.contains(&p.attach.kind) {
                Hook::Available
            } else {
                Hook::Missing(format!("no {}", serde_name(&p.attach.kind)))
            }
        }
    }

    fn fake(has: &[AttachKind]) -> Fake {
        Fake {
            has: has.to_vec(),
            probed: Default::default(),
        }
    }

    fn twins() -> Package {
        package(
            vec![
                prog("btf", AttachKind::TpBtf, "sched_switch", false),
                prog("raw", AttachKind::RawTracepoint, "sched_switch", false),
                prog("other", AttachKind::Tracepoint, "sched/sched_wakeup", false),
            ],
            &[&["btf", "raw"]],
        )
    }

    #[test]
    fn the_best_mechanism_is_probed_first_and_chosen() {
        let pkg = twins();
        let hooks = fake(&[AttachKind::TpBtf, AttachKind::RawTracepoint]);
        let mut sel = Selection::new(vec![true; 3]);
        assert_eq!(sel.choose(&pkg, &hooks).unwrap(), Vec::<String>::new());
        assert_eq!(sel.enabled(), [true, false, true]);
        // Only the group is probed, and only until one is found.
        assert_eq!(*hooks.probed.borrow(), ["btf"]);
    }

    #[test]
    fn without_the_best_the_fallback_is_chosen_and_said() {
        let pkg = twins();
        let hooks = fake(&[AttachKind::RawTracepoint]);
        let mut sel = Selection::new(vec![true; 3]);
        let notes = sel.choose(&pkg, &hooks).unwrap();
        assert_eq!(sel.enabled(), [false, true, true]);
        assert_eq!(*hooks.probed.borrow(), ["btf", "raw"]);
        assert_eq!(
            notes,
            ["program `btf` (tp_btf sched_switch) cannot attach here (no tp_btf); using its alternative `raw` (raw_tracepoint sched_switch)"]
        );
    }

    #[test]
    fn a_group_with_nothing_that_attaches_is_an_error() {
        let pkg = package(
            vec![
                prog("fentry", AttachKind::Fentry, "vfs_read", false),
                prog("kprobe", AttachKind::Kprobe, "vfs_read", false),
            ],
            &[&["fentry", "kprobe"]],
        );
        let err = Selection::new(vec![true; 2])
            .choose(&pkg, &fake(&[]))
            .unwrap_err();
        assert_eq!(
            err,
            "no program of the group fentry | kprobe can attach on this kernel: `fentry` (fentry vfs_read): no fentry; `kprobe` (kprobe vfs_read): no kprobe"
        );
    }

    #[test]
    fn optional_programs_without_a_hook_are_skipped() {
        let pkg = package(
            vec![
                prog(
                    "open",
                    AttachKind::Tracepoint,
                    "syscalls/sys_enter_open",
                    true,
                ),
                prog(
                    "openat",
                    AttachKind::Tracepoint,
                    "syscalls/sys_enter_openat",
                    false,
                ),
                prog(
                    "merge",
                    AttachKind::Kprobe,
                    "blk_account_io_merge_bio",
                    true,
                ),
            ],
            &[],
        );
        let hooks = fake(&[AttachKind::Tracepoint]);
        let mut sel = Selection::new(vec![true; 3]);
        let notes = sel.choose(&pkg, &hooks).unwrap();
        assert_eq!(sel.enabled(), [true, true, false]);
        assert_eq!(
            notes,
            ["skipping optional program `merge` (kprobe blk_account_io_merge_bio): no kprobe"]
        );
        // Programs that are neither optional nor grouped are not probed.
        assert_eq!(*hooks.probed.borrow(), ["open", "merge"]);
    }

    #[test]
    fn a_failure_falls_back_or_stands() {
        let pkg = twins();
        let hooks = fake(&[AttachKind::TpBtf, AttachKind::RawTracepoint]);
        let mut sel = Selection::new(vec![true; 3]);
        sel.choose(&pkg, &hooks).unwrap();
        let notes = sel
            .after_failure(&pkg, &hooks, "btf", "refused\nlog")
            .unwrap()
            .unwrap();
        assert_eq!(sel.enabled(), [false, true, true]);
        assert_eq!(
            notes,
            ["alternative program `btf` (tp_btf sched_switch) failed (refused); leaving it out"]
        );
        // The last alternative, and a program that is neither, fail for good.
        assert!(sel.after_failure(&pkg, &hooks, "raw", "refused").is_none());
        assert!(sel
            .after_failure(&pkg, &hooks, "other", "refused")
            .is_none());
    }

    #[test]
    fn nothing_left_is_an_error() {
        let pkg = package(
            vec![prog(
                "open",
                AttachKind::Tracepoint,
                "syscalls/sys_enter_open",
                true,
            )],
            &[],
        );
        let err = Selection::new(vec![true])
            .choose(&pkg, &fake(&[]))
            .unwrap_err();
        assert_eq!(err, "no program is left to load");
    }
}

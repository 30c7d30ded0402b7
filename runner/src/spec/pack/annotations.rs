//! The `runner:` annotations of an object, parsed once from its BTF declaration tags and
//! indexed by what they are on: a map, a global or a program. (Formats, on struct members
//! and typedefs, are read by the BTF walker with the types they apply to.) A tag the runner does not
//! know, or one on the wrong kind of thing, fails the pack with a message that lists the
//! valid ones.

use std::collections::BTreeMap;

use crate::spec::btf::ObjectBtf;
use crate::spec::package::View;
use crate::spec::vocab::{Annotation, AnnotationError, DataSection, MetricTag, Target};

pub(super) struct Annotations {
    by_id: BTreeMap<u32, Vec<Annotation>>,
    /// (global, map) of every `runner:lost=<map>`.
    lost: Vec<(String, String)>,
    /// (map, global) of every `runner:wakeup=<global>`.
    wakeup: Vec<(String, String)>,
}

impl Annotations {
    pub fn collect(btf: &ObjectBtf) -> Result<Self, AnnotationError> {
        let mut targets: BTreeMap<u32, (Target, String)> = BTreeMap::new();
        let mut names: BTreeMap<u32, String> = BTreeMap::new();
        for sec in btf.datasecs() {
            let target = if sec.name == ".maps" {
                Target::Map
            } else if DataSection::of(&sec.name).is_some() {
                Target::Global
            } else {
                continue;
            };
            for var in sec.vars {
                let noun = if target == Target::Map {
                    "map"
                } else {
                    "global"
                };
                targets.insert(var.id, (target, format!("{noun} `{}`", var.name)));
                names.insert(var.id, var.name);
            }
        }
        for (id, name) in btf.funcs() {
            targets.insert(id, (Target::Program, format!("program `{name}`")));
        }
        let mut by_id: BTreeMap<u32, Vec<Annotation>> = BTreeMap::new();
        for (id, tags) in btf.tagged() {
            for tag in tags {
                let parsed = match targets.get(&id) {
                    Some((target, what)) => Annotation::parse(tag, *target, what),
                    // A typedef's format is read with the member it types (`spec::btf`);
                    // here it is only checked, even on a typedef nothing uses.
                    None if btf.is_typedef(id) => {
                        let what = format!("typedef `{}`", btf.name(id));
                        Annotation::parse(tag, Target::Value, &what).transpose()?;
                        None
                    }
                    None if tag.starts_with("runner:") => {
                        return Err(AnnotationError::Unknown {
                            tag: tag.clone(),
                            what: format!("`{}`, which is no map, global or program", btf.name(id)),
                        })
                    }
                    None => None,
                };
                if let Some(annotation) = parsed {
                    by_id.entry(id).or_default().push(annotation?);
                }
            }
        }
        for (id, index, tags) in btf.member_tagged() {
            let members = btf.members(id).unwrap_or_default();
            let member = members.get(index as usize).map(|(n, _)| n.clone());
            let what = format!(
                "member `{}` of `{}`",
                member.unwrap_or_default(),
                btf.c_name(id).unwrap_or_default()
            );
            for tag in tags {
                Annotation::parse(tag, Target::Value, &what).transpose()?;
            }
        }
        let mut this = Annotations {
            by_id,
            lost: Vec::new(),
            wakeup: Vec::new(),
        };
        this.lost = (this.by_id.keys())
            .filter_map(|id| Some((names.get(id)?.clone(), this.lost(*id)?.to_string())))
            .collect();
        this.wakeup = (this.by_id.keys())
            .filter_map(|id| Some((names.get(id)?.clone(), this.wakeup(*id)?.to_string())))
            .collect();
        Ok(this)
    }

    fn on(&self, id: u32) -> &[Annotation] {
        self.by_id.get(&id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// `runner:event=<struct>` on a map.
    pub fn event(&self, id: u32) -> Option<&str> {
        self.on(id).iter().find_map(|a| match a {
            Annotation::Event(s) => Some(s.as_str()),
            _ => None,
        })
    }

    /// `runner:lost=<map>` on a global.
    pub fn lost(&self, id: u32) -> Option<&str> {
        self.on(id).iter().find_map(|a| match a {
            Annotation::Lost(m) => Some(m.as_str()),
            _ => None,
        })
    }

    /// The map global `name` counts lost events of (`runner:lost=<map>`).
    pub fn lost_by(&self, global: &str) -> Option<&str> {
        self.lost
            .iter()
            .find(|(g, _)| g == global)
            .map(|(_, m)| m.as_str())
    }

    /// Every `runner:lost` tag: (global, map).
    pub fn lost_counters(&self) -> &[(String, String)] {
        &self.lost
    }

    /// `runner:wakeup=<global>` on a map.
    pub fn wakeup(&self, id: u32) -> Option<&str> {
        self.on(id).iter().find_map(|a| match a {
            Annotation::Wakeup(g) => Some(g.as_str()),
            _ => None,
        })
    }

    /// The first map whose records wake the reader when global `name` is set
    /// (`runner:wakeup=<global>`).
    pub fn wakes_by(&self, global: &str) -> Option<&str> {
        self.wakeup
            .iter()
            .find(|(_, g)| g == global)
            .map(|(m, _)| m.as_str())
    }

    /// `runner:view=<view>` on a map.
    pub fn view(&self, id: u32) -> Option<View> {
        self.on(id).iter().find_map(|a| match a {
            Annotation::View(v) => Some(*v),
            _ => None,
        })
    }

    /// `runner:unit=<unit>` on a map.
    pub fn unit(&self, id: u32) -> Option<&str> {
        self.on(id).iter().find_map(|a| match a {
            Annotation::Unit(u) => Some(u.as_str()),
            _ => None,
        })
    }

    /// Every `runner:metric=` on a map, in order.
    pub fn metrics(&self, id: u32) -> impl Iterator<Item = &MetricTag> {
        self.on(id).iter().filter_map(|a| match a {
            Annotation::Metric(m) => Some(m),
            _ => None,
        })
    }

    /// `runner:if=<global>` (true) or `runner:unless=<global>` (false) on a program, with
    /// the tag's key for errors.
    pub fn conditions(&self, id: u32) -> impl Iterator<Item = (&'static str, &str, bool)> {
        self.on(id).iter().filter_map(|a| match a {
            Annotation::If(g) => Some(("if", g.as_str(), true)),
            Annotation::Unless(g) => Some(("unless", g.as_str(), false)),
            _ => None,
        })
    }
}

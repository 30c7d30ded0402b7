//! Maps shown by the runner (counts per key, latency histograms), read at an interval and
//! at exit: their entries, per-CPU values summed, handed to the map's [`ViewWriter`], and,
//! with `--clear`, emptied after each interval's print as bcc tools do (hash maps lose the
//! keys printed; array maps, whose keys cannot go, are zeroed).
//!
//! With `--metrics`, the same entries also go to the view's metrics, every second and at
//! each print; what `--clear` empties is added up there, so the metrics keep counting.

use std::collections::HashMap;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::invocation::Invocation;
use crate::metrics::Exporter;
use crate::output::{ViewWriter, ViewWriterError};
use crate::spec::package::{Map, View};
use crate::spec::plan::{Node, Plan};
use crate::spec::vocab::MapType;

/// A map shown by the runner, and how to read it.
pub(crate) struct MapView {
    writer: ViewWriter,
    kind: MapType,
    map: MapHandle,
    /// What is shown, for its metrics.
    shown: (Map, View),
    metrics: Option<Exported>,
}

/// A view's metrics, and what `--clear` took from the map so far (key → value).
struct Exported {
    writer: ViewWriter,
    cleared: HashMap<Vec<u8>, Vec<u8>>,
}

/// Where the integers of a value are (offset, size), found through its decoder: the fields
/// that per-CPU copies are summed over.
fn int_leaves(node: &Node, base: usize, out: &mut Vec<(usize, usize)>) {
    match node {
        Node::Int { off, size, .. } if *size <= 8 => out.push((base + off, *size)),
        Node::Array {
            off,
            len,
            stride,
            elem,
        } => {
            for i in 0..*len {
                int_leaves(elem, base + off + i * stride, out);
            }
        }
        Node::Record { fields } => {
            for (_, field) in fields {
                int_leaves(field, base, out);
            }
        }
        // A number in a declared format (a total in `duration:ns`) is summed as one.
        Node::Format { node, .. } => int_leaves(node, base, out),
        _ => {}
    }
}

/// Add per-CPU copies of a value: every integer in it (a count, the slots of a histogram,
/// the members of a struct) is summed; anything else is taken from the first CPU.
fn sum_percpu(plan: &Plan, copies: &[Vec<u8>]) -> Vec<u8> {
    let Some(first) = copies.first() else {
        return vec![0; plan.size];
    };
    let mut total = first[..plan.size].to_vec();
    let mut leaves = Vec::new();
    int_leaves(&plan.root, 0, &mut leaves);
    for (off, size) in leaves {
        let mut sum = 0u64;
        for copy in copies {
            let mut buf = [0u8; 8];
            buf[..size].copy_from_slice(&copy[off..off + size]);
            sum = sum.wrapping_add(u64::from_le_bytes(buf));
        }
        total[off..off + size].copy_from_slice(&sum.to_le_bytes()[..size]);
    }
    total
}

impl MapView {
    /// `map` shown as `view` in the run's format, read through `handle`.
    pub fn new(
        map: &Map,
        view: View,
        run: &Invocation,
        handle: MapHandle,
    ) -> Result<MapView, ViewWriterError> {
        let mut writer = ViewWriter::showing(run.format, map, view, run.shows)?;
        if !run.labels.is_empty() {
            writer = writer.with_keys(&run.labels);
        }
        Ok(MapView {
            writer,
            kind: map.kind,
            map: handle,
            shown: (map.clone(), view),
            metrics: None,
        })
    }

    /// Feed the view's metrics too (if `exporter` serves them).
    pub fn export(&mut self, exporter: &Exporter) -> Result<(), ViewWriterError> {
        if let Some(writer) = exporter.view(&self.shown.0, self.shown.1) {
            self.metrics = Some(Exported {
                writer: writer?,
                cleared: HashMap::new(),
            });
        }
        Ok(())
    }

    /// Whether it feeds metrics.
    pub fn exported(&self) -> bool {
        self.metrics.is_some()
    }

    /// Hand the map's current contents to its metrics.
    pub fn refresh_metrics(&mut self) {
        if self.metrics.is_some() {
            let entries = self.entries();
            self.feed_metrics(&entries, false);
        }
    }

    /// `entries` plus what was cleared before, to the metrics; with `cleared`, the map is
    /// about to be emptied, so the sum is what was cleared from now on.
    fn feed_metrics(&mut self, entries: &[(Vec<u8>, Vec<u8>)], cleared: bool) {
        let Some(exported) = &mut self.metrics else {
            return;
        };
        let plan = self.writer.value_plan();
        let mut total = exported.cleared.clone();
        for (key, value) in entries {
            let sum = match total.get(key) {
                // Members that are no number (a task's name) are the current ones.
                Some(before) => sum_percpu(plan, &[value.clone(), before.clone()]),
                None => value.clone(),
            };
            total.insert(key.clone(), sum);
        }
        let rows = total.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        exported.writer.render(rows, &mut Vec::new());
        if cleared {
            exported.cleared = total;
        }
    }

    /// Every (key, value) of the map, per-CPU values summed.
    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let (key_size, value_size) = self.writer.sizes();
        let mut out = Vec::new();
        for key in self.map.keys() {
            let value = if self.kind.is_percpu() {
                self.map
                    .lookup_percpu(&key, MapFlags::ANY)
                    .ok()
                    .flatten()
                    .filter(|copies| copies.iter().all(|c| c.len() >= value_size))
                    .map(|copies| sum_percpu(self.writer.value_plan(), &copies))
            } else {
                self.map.lookup(&key, MapFlags::ANY).ok().flatten()
            };
            if let Some(value) = value.filter(|v| v.len() >= value_size && key.len() >= key_size) {
                out.push((key, value));
            }
        }
        out
    }

    /// Print the map's current contents; with `clear`, empty what was printed.
    pub fn dump(&mut self, clear: bool, out: &mut Vec<u8>) {
        let entries = self.entries();
        self.feed_metrics(&entries, clear);
        let keys: Vec<Vec<u8>> = if clear {
            entries.iter().map(|(k, _)| k.clone()).collect()
        } else {
            Vec::new()
        };
        self.writer.render(entries, out);
        for key in keys {
            self.clear(&key);
        }
    }

    /// Delete `key`, or zero its value in an array map. A failure (the program deleted
    /// it first) is nothing to report.
    fn clear(&self, key: &[u8]) {
        let arrays = matches!(self.kind, MapType::Array | MapType::PercpuArray);
        if !arrays {
            let _ = self.map.delete(key);
        } else if self.kind.is_percpu() {
            let size = self.map.value_size() as usize;
            let cpus = libbpf_rs::num_possible_cpus().unwrap_or(1);
            let zeros = vec![vec![0u8; size]; cpus];
            let _ = self.map.update_percpu(key, &zeros, MapFlags::ANY);
        } else {
            let zeros = vec![0u8; self.map.value_size() as usize];
            let _ = self.map.update(key, &zeros, MapFlags::ANY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::spec::types::{Kind, Type};

    fn u32_type() -> Type {
        Type {
            c: "u32".into(),
            kind: Kind::Int {
                size: 4,
                signed: false,
            },
        }
    }

    #[test]
    fn percpu_sums() {
        let plan = Plan::compile(&u32_type()).unwrap();
        let copies = vec![vec![1, 0, 0, 0, 9, 9, 9, 9], vec![2, 1, 0, 0, 9, 9, 9, 9]];
        assert_eq!(sum_percpu(&plan, &copies), vec![3, 1, 0, 0]);
    }

    #[test]
    fn percpu_sums_each_member_of_a_struct() {
        let member = |name: &str, offset| crate::spec::types::Member {
            name: name.into(),
            offset,
            bitfield: None,
            ty: u32_type(),
            shown: None,
        };
        let ty = Type {
            c: "struct pair".into(),
            kind: Kind::Struct {
                size: 8,
                members: vec![member("a", 0), member("b", 4)],
            },
        };
        let plan = Plan::compile(&ty).unwrap();
        // a = 0xffffffff + 1 wraps within `a`; it must not carry into `b`.
        let copies = vec![
            vec![0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0],
            vec![1, 0, 0, 0, 2, 0, 0, 0],
        ];
        assert_eq!(sum_percpu(&plan, &copies), vec![0, 0, 0, 0, 3, 0, 0, 0]);
    }
}

//! Maps that are not event streams (counts per key, latency histograms), read at an
//! interval and at exit: their entries (per-CPU values summed), sorted, as a key → value
//! table or as power-of-two histograms, handed to the output layer. Keys and values go
//! through the same decoder as events.

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::output::{Histograms, MapTable, Output, Stamp};
use crate::spec::package::{Map, View};
use crate::spec::plan::{Node, Plan, PlanError, Sink};
use crate::spec::types::{Kind, Type};

fn void_type() -> Type {
    Type {
        c: "void".into(),
        kind: Kind::Struct {
            size: 0,
            members: Vec::new(),
        },
    }
}

/// A map shown by the runner, with decoders for its keys and values.
pub(crate) struct MapView {
    name: String,
    view: View,
    key: Plan,
    value: Plan,
    value_ty: Type,
    percpu: bool,
    map: MapHandle,
}

/// Collects integers from a decoded value (a count, or the slots of a histogram).
struct Numbers(Vec<u64>);

impl Sink for Numbers {
    fn int(&mut self, v: i64) {
        self.0.push(v.max(0) as u64)
    }
    fn uint(&mut self, v: u64) {
        self.0.push(v)
    }
    fn int128(&mut self, v: i128) {
        self.0.push(v.clamp(0, i128::from(u64::MAX)) as u64)
    }
    fn uint128(&mut self, v: u128) {
        self.0.push(v.min(u128::from(u64::MAX)) as u64)
    }
    fn bool(&mut self, v: bool) {
        self.0.push(u64::from(v))
    }
    fn float(&mut self, v: f64) {
        self.0.push(v.max(0.0) as u64)
    }
    fn text(&mut self, _: &[u8]) {}
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend(b.iter().map(|&x| u64::from(x)))
    }
    fn enum_name(&mut self, _: &str) {}
    fn pointer(&mut self, _: u64) {}
    fn begin_list(&mut self) {}
    fn item(&mut self, _: bool) {}
    fn end_list(&mut self) {}
    fn begin_record(&mut self) {}
    fn field(&mut self, _: &str, _: bool) {}
    fn end_record(&mut self) {}
}

fn numbers(plan: &Plan, bytes: &[u8]) -> Vec<u64> {
    let mut n = Numbers(Vec::new());
    plan.visit(bytes, &mut n);
    n.0
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
    /// The view of `map`, if it has one, reading the map through `handle`.
    pub fn new(map: &Map, handle: MapHandle) -> Result<Option<MapView>, PlanError> {
        let Some(view) = map.view else {
            return Ok(None);
        };
        let key_ty = map.key.clone().unwrap_or_else(void_type);
        let value_ty = map.value.clone().unwrap_or_else(void_type);
        Ok(Some(MapView {
            name: crate::stdio::escape_controls(&map.name, false).into_owned(),
            view,
            key: Plan::compile(&key_ty)?,
            value: Plan::compile(&value_ty)?,
            value_ty,
            percpu: map.kind.is_percpu(),
            map: handle,
        }))
    }

    /// Every (key, value) of the map, per-CPU values summed.
    fn entries(&self) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for key in self.map.keys() {
            let value = if self.percpu {
                self.map
                    .lookup_percpu(&key, MapFlags::ANY)
                    .ok()
                    .flatten()
                    .filter(|copies| copies.iter().all(|c| c.len() >= self.value.size))
                    .map(|copies| sum_percpu(&self.value, &copies))
            } else {
                self.map.lookup(&key, MapFlags::ANY).ok().flatten()
            };
            if let Some(value) =
                value.filter(|v| v.len() >= self.value.size && key.len() >= self.key.size)
            {
                out.push((key, value));
            }
        }
        out
    }

    /// Print the map's current contents.
    pub fn dump(&self, output: &dyn Output, at: &Stamp, out: &mut Vec<u8>) {
        let mut entries = self.entries();
        // Biggest first when the value is a count; otherwise in key order.
        if matches!(self.value_ty.kind, Kind::Int { .. }) && self.view == View::Table {
            entries.sort_by(|a, b| {
                numbers(&self.value, &b.1)
                    .cmp(&numbers(&self.value, &a.1))
                    .then(a.0.cmp(&b.0))
            });
        } else {
            entries.sort();
        }
        match self.view {
            View::Table => output.map_table(
                &MapTable {
                    map: &self.name,
                    at,
                    key: &self.key,
                    value: &self.value,
                    entries: &entries,
                },
                out,
            ),
            View::Log2Hist => output.histograms(
                &Histograms {
                    map: &self.name,
                    at,
                    key: &self.key,
                    hists: &self.histograms(&entries),
                },
                out,
            ),
        }
    }

    /// Histograms: one per key (value = slots), or one for the whole map (key = slot).
    fn histograms(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<(Option<Vec<u8>>, Vec<u64>)> {
        if matches!(self.value_ty.kind, Kind::Array { .. }) {
            return entries
                .iter()
                .map(|(k, v)| (Some(k.clone()), numbers(&self.value, v)))
                .collect();
        }
        let mut slots = Vec::new();
        for (k, v) in entries {
            let slot = numbers(&self.key, k).first().copied().unwrap_or(0) as usize;
            if slot < 64 {
                if slots.len() <= slot {
                    slots.resize(slot + 1, 0);
                }
                slots[slot] += numbers(&self.value, v).first().copied().unwrap_or(0);
            }
        }
        vec![(None, slots)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

//! Maps that are not event streams (counts per key, latency histograms), printed at an
//! interval and at exit: a key → value table, or power-of-two histograms drawn with star
//! bars the way bcc's tools draw them. Keys and values go through the same decoder as
//! events.

use std::io::Write as _;

use libbpf_rs::{MapCore, MapFlags};

use crate::output::{csv_cell, Format, JsonSink, TextSink};
use crate::package::{Map, View};
use crate::plan::{Node, Plan, PlanError, Sink};
use crate::types::{Kind, Type};

/// Width of the star bar of a histogram.
const BAR: usize = 40;

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
pub struct MapView {
    pub name: String,
    view: View,
    key: Plan,
    value: Plan,
    value_ty: Type,
    percpu: bool,
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

fn cell<F: FnOnce(&mut TextSink)>(f: F) -> String {
    let mut buf = Vec::new();
    f(&mut TextSink(&mut buf));
    String::from_utf8_lossy(&buf).into_owned()
}

impl MapView {
    pub fn new(map: &Map) -> Result<Option<MapView>, PlanError> {
        let Some(view) = map.view else {
            return Ok(None);
        };
        let key_ty = map.key.clone().unwrap_or_else(void_type);
        let value_ty = map.value.clone().unwrap_or_else(void_type);
        Ok(Some(MapView {
            name: map.name.clone(),
            view,
            key: Plan::compile(&key_ty)?,
            value: Plan::compile(&value_ty)?,
            value_ty,
            percpu: map.kind.starts_with("percpu") || map.kind.starts_with("lru_percpu"),
        }))
    }

    /// Every (key, value) of the map, per-CPU values summed.
    fn entries(&self, map: &dyn MapCore) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        for key in map.keys() {
            let value = if self.percpu {
                map.lookup_percpu(&key, MapFlags::ANY)
                    .ok()
                    .flatten()
                    .filter(|copies| copies.iter().all(|c| c.len() >= self.value.size))
                    .map(|copies| sum_percpu(&self.value, &copies))
            } else {
                map.lookup(&key, MapFlags::ANY).ok().flatten()
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
    pub fn dump(&self, map: &dyn MapCore, format: Format, time: &str, out: &mut Vec<u8>) {
        let mut entries = self.entries(map);
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
        match (self.view, format) {
            (View::Table, Format::Json) => self.json_table(&entries, time, out),
            (View::Table, _) => self.text_table(&entries, format, time, out),
            (View::Log2Hist, Format::Json) => self.json_hist(&entries, time, out),
            (View::Log2Hist, _) => self.text_hist(&entries, time, out),
        }
    }

    fn columns(plan: &Plan, fallback: &str) -> Vec<String> {
        match &plan.root {
            Node::Record { fields } if !fields.is_empty() => {
                fields.iter().map(|(n, _)| n.to_ascii_uppercase()).collect()
            }
            _ => vec![fallback.to_string()],
        }
    }

    fn cells(plan: &Plan, bytes: &[u8]) -> Vec<String> {
        match &plan.root {
            Node::Record { fields } if !fields.is_empty() => fields
                .iter()
                .map(|(_, node)| cell(|s| node.visit(bytes, 0, s)))
                .collect(),
            _ => vec![cell(|s| plan.visit(bytes, s))],
        }
    }

    fn text_table(
        &self,
        entries: &[(Vec<u8>, Vec<u8>)],
        format: Format,
        time: &str,
        out: &mut Vec<u8>,
    ) {
        let mut rows = vec![[
            Self::columns(&self.key, "KEY"),
            Self::columns(&self.value, "VALUE"),
        ]
        .concat()];
        for (k, v) in entries {
            rows.push([Self::cells(&self.key, k), Self::cells(&self.value, v)].concat());
        }
        if format == Format::Csv {
            for row in rows {
                out.extend_from_slice(self.name.as_bytes());
                for cell in row {
                    out.push(b',');
                    csv_cell(out, cell.as_bytes());
                }
                out.push(b'\n');
            }
            return;
        }
        let _ = writeln!(out, "\n{time} map {}: {} entries", self.name, entries.len());
        let mut widths = vec![0; rows[0].len()];
        for row in &rows {
            for (w, c) in widths.iter_mut().zip(row) {
                *w = (*w).max(c.chars().count());
            }
        }
        for row in rows {
            let last = row.len() - 1;
            for (i, c) in row.iter().enumerate() {
                if i == last {
                    let _ = writeln!(out, "{c}");
                } else {
                    let _ = write!(out, "{c:<width$} ", width = widths[i]);
                }
            }
        }
    }

    fn json_table(&self, entries: &[(Vec<u8>, Vec<u8>)], time: &str, out: &mut Vec<u8>) {
        let _ = write!(
            out,
            "{{\"time\":\"{time}\",\"map\":\"{}\",\"entries\":[",
            self.name
        );
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"key\":");
            self.key.visit(k, &mut JsonSink(out));
            out.extend_from_slice(b",\"value\":");
            self.value.visit(v, &mut JsonSink(out));
            out.push(b'}');
        }
        out.extend_from_slice(b"]}\n");
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

    fn text_hist(&self, entries: &[(Vec<u8>, Vec<u8>)], time: &str, out: &mut Vec<u8>) {
        let _ = writeln!(out, "\n{time} map {}:", self.name);
        for (key, slots) in self.histograms(entries) {
            if let Some(key) = key {
                let _ = writeln!(
                    out,
                    "\n{} = {}",
                    Self::columns(&self.key, "key").join(","),
                    Self::cells(&self.key, &key).join(",")
                );
            }
            draw_log2(&slots, out);
        }
    }

    fn json_hist(&self, entries: &[(Vec<u8>, Vec<u8>)], time: &str, out: &mut Vec<u8>) {
        for (key, slots) in self.histograms(entries) {
            let _ = write!(out, "{{\"time\":\"{time}\",\"map\":\"{}\"", self.name);
            if let Some(key) = key {
                out.extend_from_slice(b",\"key\":");
                self.key.visit(&key, &mut JsonSink(out));
            }
            out.extend_from_slice(b",\"buckets\":[");
            let last = slots.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
            for (i, count) in slots[..last].iter().enumerate() {
                let (low, high) = bounds(i);
                let _ = write!(
                    out,
                    "{}{{\"low\":{low},\"high\":{high},\"count\":{count}}}",
                    if i > 0 { "," } else { "" }
                );
            }
            out.extend_from_slice(b"]}\n");
        }
    }
}

/// The values counted in slot `i` of a log2 histogram: 0..=1, 2..=3, 4..=7, ...
fn bounds(i: usize) -> (u64, u64) {
    if i == 0 {
        return (0, 1);
    }
    let low = 1u64.checked_shl(i as u32).unwrap_or(u64::MAX);
    (low, low.saturating_mul(2).saturating_sub(1))
}

/// Draw slots as bcc does: `low -> high : count |*****     |`, up to the last used slot.
pub fn draw_log2(slots: &[u64], out: &mut Vec<u8>) {
    let Some(last) = slots.iter().rposition(|&c| c > 0) else {
        let _ = writeln!(out, "(empty)");
        return;
    };
    let max = slots.iter().copied().max().unwrap_or(1).max(1);
    let _ = writeln!(out, "{:>24} : {:<8} distribution", "value", "count");
    for (i, &count) in slots[..=last].iter().enumerate() {
        let (low, high) = bounds(i);
        let stars = (count as u128 * BAR as u128 / max as u128) as usize;
        let _ = writeln!(
            out,
            "{low:>10} -> {high:<10} : {count:<8} |{}{}|",
            "*".repeat(stars),
            " ".repeat(BAR - stars)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log2_hist_like_bcc() {
        let mut out = Vec::new();
        draw_log2(&[1, 0, 4, 2], &mut out);
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[1].starts_with("         0 -> 1          : 1        |**********          "));
        assert!(lines[3]
            .contains("4 -> 7          : 4        |****************************************|"));
        assert!(lines[4].contains("8 -> 15         : 2        |********************"));
    }

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
        let member = |name: &str, offset| crate::types::Member {
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

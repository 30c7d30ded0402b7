//! A map view as metrics: one more implementation of the output layer's [`Output`], fed by
//! the same [`ViewWriter`](crate::output::ViewWriter) as the text formats, so the rows and
//! histograms are the ones `-o table` would print. What it renders replaces the view's
//! samples in the shared state; its `out` buffer stays empty.

use std::sync::Arc;

use super::names::{Role, ViewLayout};
use super::state::{Sample, Shared};
use crate::output::{cell_now, Events, Hist, Histograms, MapTable, Output, Stamp};
use crate::spec::plan::{Node, Plan, Sink};

pub(super) struct ViewOutput {
    pub shared: Arc<Shared>,
    /// Which of the catalogue's views this is.
    pub index: usize,
}

impl ViewOutput {
    fn layout(&self) -> &ViewLayout {
        &self.shared.catalog.views[self.index]
    }

    fn publish(&self, samples: Vec<Vec<Sample>>) {
        self.shared.lock().views[self.index] = samples;
    }
}

/// The text of each top-level member of `bytes` (or of the whole, when not a struct).
fn cells(plan: &Plan, bytes: &[u8]) -> Vec<String> {
    match &plan.root {
        Node::Record { fields } => fields
            .iter()
            .map(|(_, node)| cell_now(|s| node.visit(bytes, 0, s)))
            .collect(),
        root => vec![cell_now(|s| root.visit(bytes, 0, s))],
    }
}

/// The first number a node reads.
#[derive(Default)]
struct Number(Option<f64>);

impl Sink for Number {
    fn int(&mut self, v: i64) {
        self.0.get_or_insert(v as f64);
    }
    fn uint(&mut self, v: u64) {
        self.0.get_or_insert(v as f64);
    }
    fn int128(&mut self, v: i128) {
        self.0.get_or_insert(v as f64);
    }
    fn uint128(&mut self, v: u128) {
        self.0.get_or_insert(v as f64);
    }
    fn bool(&mut self, v: bool) {
        self.0.get_or_insert(f64::from(u8::from(v)));
    }
    fn float(&mut self, v: f64) {
        self.0.get_or_insert(v);
    }
    fn text(&mut self, _: &[u8]) {}
    fn bytes(&mut self, _: &[u8]) {}
    fn enum_name(&mut self, _: &str) {}
    fn pointer(&mut self, _: u64) {}
    fn begin_list(&mut self) {}
    fn item(&mut self, _: bool) {}
    fn end_list(&mut self) {}
    fn begin_record(&mut self) {}
    fn field(&mut self, _: &str, _: bool) {}
    fn end_record(&mut self) {}
}

fn number(node: &Node, bytes: &[u8]) -> f64 {
    let mut n = Number::default();
    node.visit(bytes, 0, &mut n);
    n.0.unwrap_or(f64::NAN)
}

/// A row's labels and its gauges: (family index, value).
type Row = (Vec<(String, String)>, Vec<(usize, f64)>);

/// A row's labels (key members, then the value's label members) and its gauges, from
/// the value's members as `value` reads them: (name, node, bytes).
fn row<'a>(
    layout: &ViewLayout,
    key: Vec<String>,
    members: impl Iterator<Item = (&'a str, &'a Node, &'a [u8])>,
) -> Row {
    let mut labels: Vec<(String, String)> = layout
        .key_labels
        .iter()
        .cloned()
        .zip(key.iter().map(|k| super::state::escape_value(k)))
        .collect();
    let mut gauges = Vec::new();
    for (name, node, bytes) in members {
        match layout.value.iter().find(|(n, _)| n == name).map(|(_, r)| r) {
            Some(Role::Label(label)) => labels.push((
                label.clone(),
                super::state::escape_value(&cell_now(|s| node.visit(bytes, 0, s))),
            )),
            Some(Role::Gauge(family)) => gauges.push((*family, number(node, bytes))),
            _ => {}
        }
    }
    (labels, gauges)
}

/// `le` buckets of a histogram: each slot's count under its upper bound, and the last
/// slot's under +Inf only: programs put every value past the array in the last slot (bcc's
/// tools clamp so), so its printed upper bound may not hold.
fn buckets(h: &Histograms, hist: &Hist) -> (Vec<(f64, u64)>, u64) {
    let (last, slots) = hist.slots.split_last().unwrap_or((&0, &[]));
    let mut buckets: Vec<(f64, u64)> = slots
        .iter()
        .enumerate()
        .map(|(i, &count)| (h.scale.bounds(i).1 as f64, count))
        .collect();
    // Bounds past 2^53 may round to the same float: merge a bucket into the one before.
    buckets.dedup_by(|b, a| {
        let same = b.0 <= a.0;
        if same {
            a.1 += b.1;
        }
        same
    });
    // +Inf, written so by the encoder.
    buckets.push((f64::MAX, *last));
    let count = hist.slots.iter().sum();
    (buckets, count)
}

impl Output for ViewOutput {
    fn header(&self, _: &Events, _: &mut Vec<u8>) {}

    fn event(&mut self, _: &Events, _: &Stamp, _: &[u8], _: &mut Vec<u8>) {}

    fn map_table(&self, t: &MapTable, _: &mut Vec<u8>) {
        let layout = self.layout();
        let mut samples = vec![Vec::new(); layout.families.len()];
        for (k, v) in t.entries {
            let members: Vec<(&str, &Node, &[u8])> = match &t.value.root {
                Node::Record { fields } => fields
                    .iter()
                    .map(|(n, node)| (n.as_str(), node, v.as_slice()))
                    .collect(),
                root => vec![("value", root, v.as_slice())],
            };
            let (labels, gauges) = row(layout, cells(t.key, k), members.into_iter());
            for (family, value) in gauges {
                samples[family].push(Sample::Gauge {
                    labels: labels.clone(),
                    value,
                });
            }
        }
        self.publish(samples);
    }

    fn histograms(&self, h: &Histograms, _: &mut Vec<u8>) {
        let layout = self.layout();
        let mut samples = vec![Vec::new(); layout.families.len()];
        for hist in h.hists {
            let key = match &hist.key {
                Some(key) if !layout.key_labels.is_empty() => cells(h.key, key),
                _ => Vec::new(),
            };
            let members = h
                .labels
                .iter()
                .map(|(n, node)| (n.as_str(), node, hist.value.as_slice()));
            let (labels, gauges) = row(layout, key, members);
            for (family, value) in gauges {
                samples[family].push(Sample::Gauge {
                    labels: labels.clone(),
                    value,
                });
            }
            if let Some(family) = layout.hist {
                let (buckets, count) = buckets(h, hist);
                samples[family].push(Sample::Histogram {
                    labels,
                    buckets,
                    count,
                });
            }
        }
        self.publish(samples);
    }
}

//! The event loop's side of one channel: per record, the bytes of each counter's label
//! members (a fixed-size key, text cut at its NUL) are counted in a local table; after each
//! drained batch the table is added to the shared series (capped) and the channel's counts
//! are published. Nothing is decoded per record: label values are rendered at a scrape.

use std::collections::HashMap;
use std::sync::Arc;

use super::state::{Counts, Series, Shared};
use crate::spec::package::EventMetric;
use crate::spec::plan::{Node, Plan};

/// Where one label's bytes are in a record.
#[derive(Debug, Clone, Copy)]
pub(super) struct Part {
    start: usize,
    len: usize,
    /// A char array: the bytes after its first NUL are not part of the value.
    text: bool,
}

/// The bytes `node` reads in a record, if it is a label: (start, length, text).
fn extent(node: &Node) -> Option<Part> {
    let (start, len, text) = match *node {
        Node::Int { off, size, .. } | Node::Bool { off, size } | Node::Enum { off, size, .. } => {
            (off, size, false)
        }
        Node::Text { off, len } => (off, len, true),
        Node::Bits { bit_off, bits, .. } => {
            let start = bit_off / 8;
            (start, (bit_off + bits as usize).div_ceil(8) - start, false)
        }
        _ => return None,
    };
    Some(Part { start, len, text })
}

/// `node`, reading its value at `at` of a key instead of `part.start` of a record.
fn rebase(node: &Node, part: Part, at: usize) -> Node {
    let mut node = node.clone();
    match &mut node {
        Node::Int { off, .. }
        | Node::Bool { off, .. }
        | Node::Enum { off, .. }
        | Node::Text { off, .. } => *off = at,
        Node::Bits { bit_off, .. } => *bit_off = *bit_off - part.start * 8 + at * 8,
        _ => {}
    }
    node
}

/// One counter of the package, as the loop keeps it.
struct Local {
    /// Its index among the shared series.
    series: usize,
    parts: Vec<Part>,
    key: Vec<u8>,
    /// Counts per key since the last publish.
    pending: HashMap<Vec<u8>, u64>,
}

/// The shared series of `metric` and how the loop reads its labels, for records decoded
/// by `plan`; `None` when a label is not a member `plan` reads as one value (a package
/// the packer checked always is).
pub(super) fn series(plan: &Plan, metric: &EventMetric) -> Option<(Series, Vec<Part>)> {
    let columns = plan.columns();
    let mut labels = Vec::new();
    let mut parts = Vec::new();
    let mut at = 0;
    for label in &metric.labels {
        let (_, node) = columns.iter().find(|(name, _)| name == label)?;
        let node = node.whole();
        let part = extent(node)?;
        labels.push((super::names::sanitize(label), rebase(node, part, at)));
        parts.push(part);
        at += part.len;
    }
    let series = Series {
        labels,
        counts: Default::default(),
        max: metric.max_series as usize,
        dropped: 0,
    };
    Some((series, parts))
}

/// What the event loop calls for one channel.
pub(crate) struct EventTap {
    shared: Arc<Shared>,
    channel: usize,
    counters: Vec<Local>,
}

impl EventTap {
    pub(super) fn new(
        shared: Arc<Shared>,
        channel: usize,
        counters: Vec<(usize, Vec<Part>)>,
    ) -> Self {
        let counters = counters
            .into_iter()
            .map(|(series, parts)| Local {
                series,
                parts,
                key: Vec::new(),
                pending: HashMap::new(),
            })
            .collect();
        EventTap {
            shared,
            channel,
            counters,
        }
    }

    /// One record of the channel (at least the fixed part of its struct). A text label in
    /// a trailing array the record cuts short reads as far as the record goes.
    #[inline]
    pub fn record(&mut self, rec: &[u8]) {
        for counter in &mut self.counters {
            counter.key.clear();
            for part in &counter.parts {
                let end = (part.start + part.len).min(rec.len());
                let bytes = rec.get(part.start..end).unwrap_or_default();
                let kept = if part.text {
                    bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())
                } else {
                    bytes.len()
                };
                counter.key.extend_from_slice(&bytes[..kept]);
                counter.key.resize(counter.key.len() + part.len - kept, 0);
            }
            match counter.pending.get_mut(counter.key.as_slice()) {
                Some(n) => *n += 1,
                None => {
                    counter.pending.insert(counter.key.clone(), 1);
                }
            }
        }
    }

    /// After a drained batch: the channel's events so far, and what the counters counted.
    pub fn publish(&mut self, events: u64) {
        let mut state = self.shared.lock();
        state.channels[self.channel].events = events;
        for counter in &mut self.counters {
            let series = &mut state.counters[counter.series];
            for (key, n) in counter.pending.drain() {
                series.add(key, n);
            }
        }
    }

    /// At a loss check: the channel's losses so far, and the times it was found full.
    pub fn losses(&mut self, lost: u64, full: u64) {
        let mut state = self.shared.lock();
        let counts: &mut Counts = &mut state.channels[self.channel];
        counts.lost = lost;
        counts.full = full;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::cell_now;
    use crate::spec::types::{Kind, Member, Type};

    fn event() -> Plan {
        let int = |c: &str, size, signed| Type {
            c: c.into(),
            kind: Kind::Int { size, signed },
        };
        let member = |name: &str, offset, ty| Member {
            name: name.into(),
            offset,
            bitfield: None,
            ty,
            shown: None,
        };
        let comm = Type {
            c: "char[8]".into(),
            kind: Kind::Array {
                len: 8,
                elem: Box::new(Type {
                    c: "char".into(),
                    kind: Kind::Char { signed: true },
                }),
            },
        };
        let ty = Type {
            c: "struct event".into(),
            kind: Kind::Struct {
                size: 16,
                members: vec![
                    member("pid", 0, int("__u32", 4, false)),
                    member("sig", 4, int("int", 4, true)),
                    member("comm", 8, comm),
                ],
            },
        };
        Plan::record(&ty, false).unwrap()
    }

    fn record(pid: u32, sig: i32, comm: &[u8]) -> Vec<u8> {
        let mut rec = Vec::new();
        rec.extend_from_slice(&pid.to_le_bytes());
        rec.extend_from_slice(&sig.to_le_bytes());
        let mut c = [0u8; 8];
        c[..comm.len()].copy_from_slice(comm);
        rec.extend_from_slice(&c);
        rec
    }

    #[test]
    fn keys_are_the_label_bytes_and_decode_back() {
        let metric = EventMetric {
            name: "signals".into(),
            labels: vec!["sig".into(), "comm".into()],
            max_series: 10,
            help: String::new(),
        };
        let (series, parts) = series(&event(), &metric).unwrap();
        let catalog = super::super::names::catalog(
            &crate::spec::package::Package {
                format_version: 1,
                requires: Vec::new(),
                name: "p".into(),
                description: String::new(),
                license: String::new(),
                globals: Vec::new(),
                switches: Vec::new(),
                events: Vec::new(),
                maps: Vec::new(),
                programs: Vec::new(),
                groups: Vec::new(),
                declarations: None,
                object: crate::spec::package::Embedded::new(b""),
            },
            &[],
        );
        let shared = Arc::new(Shared::new(
            catalog,
            "p",
            vec!["events".into()],
            vec![("signals".into(), 0)],
            vec![series],
        ));
        let mut tap = EventTap::new(shared.clone(), 0, vec![(0, parts)]);
        tap.record(&record(1, 9, b"kill"));
        tap.record(&record(2, 9, b"kill"));
        // What follows the NUL of a char array is no part of its value.
        let mut junk = record(3, 9, b"kill");
        junk[14] = b'x';
        tap.record(&junk);
        // A record cut inside its trailing comm: the text it holds.
        tap.record(&record(1, 15, b"sh")[..10]);
        tap.publish(4);
        let state = shared.lock();
        assert_eq!(state.channels[0].events, 4);
        let series = &state.counters[0];
        let decoded: Vec<(Vec<String>, u64)> = series
            .counts
            .iter()
            .map(|(key, n)| {
                let values = series
                    .labels
                    .iter()
                    .map(|(_, node)| cell_now(|s| node.visit(key, 0, s)))
                    .collect();
                (values, *n)
            })
            .collect();
        assert_eq!(
            decoded,
            [
                (vec!["9".to_string(), "kill".to_string()], 3),
                (vec!["15".to_string(), "sh".to_string()], 1)
            ]
        );
        assert_eq!(series.labels[0].0, "sig");
    }
}

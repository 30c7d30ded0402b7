//! One map view: the entries read from a map (per-CPU copies already summed) in, sorted and
//! shaped as a table or as histograms, out through the format's [`Output`]. Keys and values
//! go through the same decoder as events.
//!
//! Order: rows (and histograms) with a count come biggest count first: the value itself
//! when it is a number, else its member `count`, else its first integer member (not the
//! slots). Ties, and views without a count, go by key, compared as the numbers and texts it
//! holds, member by member (1, 3, 257; not the little-endian bytes 1, 257, 3).

use std::cmp::Ordering;

use super::clock::Clock;
use super::format::Format;
use super::model::{Hist, Histograms, MapTable, Output, Scale};
use crate::spec::mapview::{self, Slots, ViewError};
use crate::spec::package::{Map, View};
use crate::spec::plan::{Node, Plan, PlanError, Shows, Sink};
use crate::spec::types::{Kind, Type};

/// The most slots a histogram keyed by slot index gets: larger keys are not drawn.
const MAX_SLOTS: usize = 1 << 16;

#[derive(Debug, thiserror::Error)]
pub enum ViewWriterError {
    #[error(transparent)]
    View(#[from] ViewError),
    #[error("map `{map}`: {source}")]
    Plan {
        map: String,
        #[source]
        source: PlanError,
    },
}

/// How the entries are shaped.
enum Shape {
    Table,
    /// One histogram per key: the slots are the whole value, or this field of it (the
    /// other fields are its labels).
    PerKey {
        slots: Option<usize>,
    },
    /// One histogram for the map: the key is the slot.
    ByKey,
}

/// A map shown in one format: what the event loop prints at `--interval` and at exit, and
/// what the golden tests render through.
pub struct ViewWriter {
    name: String,
    scale: Scale,
    unit: Option<String>,
    shape: Shape,
    key: Plan,
    value: Plan,
    labels: Vec<(String, Node)>,
    /// What the rows sort by, biggest first.
    count: Option<Node>,
    output: Box<dyn Output>,
    clock: Clock,
}

fn void() -> Type {
    Type {
        c: "void".into(),
        kind: Kind::Struct {
            size: 0,
            members: Vec::new(),
        },
    }
}

impl ViewWriter {
    /// A writer of `map` as `view`, which must fit the map's types.
    pub fn new(format: Format, map: &Map, view: View) -> Result<ViewWriter, ViewWriterError> {
        Self::showing(format, map, view, Shows::default())
    }

    /// [`ViewWriter::new`], showing the declared formats `shows` asks for.
    pub fn showing(
        format: Format,
        map: &Map,
        view: View,
        shows: Shows,
    ) -> Result<ViewWriter, ViewWriterError> {
        Self::through(format.output(), map, view, shows)
    }

    /// A writer of `map` as `view` into `output`: a format, or the metrics of a view.
    pub(crate) fn through(
        output: Box<dyn Output>,
        map: &Map,
        view: View,
        shows: Shows,
    ) -> Result<ViewWriter, ViewWriterError> {
        mapview::fits(map, view)?;
        let plan = |ty: &Option<Type>| {
            Plan::compile_showing(ty.as_ref().unwrap_or(&void()), shows).map_err(|source| {
                ViewWriterError::Plan {
                    map: map.name.clone(),
                    source,
                }
            })
        };
        let (key, value) = (plan(&map.key)?, plan(&map.value)?);
        let fields = match &value.root {
            Node::Record { fields } => fields.clone(),
            _ => Vec::new(),
        };
        let field = |name: &str| fields.iter().position(|(n, _)| n == name);
        let value_ty = map.value.clone().unwrap_or_else(void);
        let (shape, slots_name) = match (view, mapview::slots(map)) {
            (View::Table, _) | (_, None) => (Shape::Table, None),
            (_, Some(Slots::Key)) => (Shape::ByKey, None),
            (_, Some(Slots::Value)) => (Shape::PerKey { slots: None }, None),
            (_, Some(Slots::Member(name))) => (
                Shape::PerKey {
                    slots: field(&name),
                },
                Some(name),
            ),
        };
        let labels = match &shape {
            Shape::PerKey { slots: Some(at) } => {
                let mut labels = fields.clone();
                labels.remove(*at);
                labels
            }
            _ => Vec::new(),
        };
        let count = match (&shape, &value.root) {
            (Shape::Table, root @ Node::Int { .. }) => Some(root.clone()),
            (Shape::ByKey, _) => None,
            _ => mapview::count_member(&value_ty, slots_name.as_deref())
                .and_then(field)
                .map(|i| fields[i].1.clone()),
        };
        Ok(ViewWriter {
            name: crate::stdio::escape_controls(&map.name, false).into_owned(),
            scale: match view {
                View::LinearHist => Scale::Linear,
                _ => Scale::Log2,
            },
            unit: map.unit.clone(),
            shape,
            key,
            value,
            labels,
            count,
            output,
            clock: Clock::new(),
        })
    }

    /// Start every JSON line with these keys (`--labels`): (key without its `@`, value).
    pub fn with_keys(mut self, keys: &[(String, String)]) -> Self {
        self.output = Box::new(super::labels::Labelled::new(self.output, keys));
        self
    }

    /// Show every view at this instant (seconds and nanoseconds since the epoch), in UTC:
    /// for reproducible output in tests.
    pub fn fix_time(&mut self, secs: i64, nsec: i64) {
        self.clock.freeze(secs, nsec);
    }

    /// The sizes a key and a value must have at least.
    pub fn sizes(&self) -> (usize, usize) {
        (self.key.size, self.value.size)
    }

    /// The values' decoder.
    pub fn value_plan(&self) -> &Plan {
        &self.value
    }

    /// Print the map as it is now: `entries` are its (key, value) pairs, in any order.
    pub fn render(&mut self, mut entries: Vec<(Vec<u8>, Vec<u8>)>, out: &mut Vec<u8>) {
        entries.retain(|(k, v)| k.len() >= self.key.size && v.len() >= self.value.size);
        self.sort(&mut entries);
        let hists = match self.shape {
            Shape::Table => {
                let table = MapTable {
                    map: &self.name,
                    at: self.clock.now(),
                    key: &self.key,
                    value: &self.value,
                    entries: &entries,
                };
                return self.output.map_table(&table, out);
            }
            Shape::PerKey { slots } => self.per_key(entries, slots),
            Shape::ByKey => vec![self.by_key(&entries)],
        };
        let hists = Histograms {
            map: &self.name,
            at: self.clock.now(),
            scale: self.scale,
            unit: self.unit.as_deref(),
            key: &self.key,
            labels: &self.labels,
            hists: &hists,
        };
        self.output.histograms(&hists, out);
    }

    /// A histogram per key: the slots are the whole value, or its field `slots`.
    fn per_key(&self, entries: Vec<(Vec<u8>, Vec<u8>)>, slots: Option<usize>) -> Vec<Hist> {
        let node = match (&self.value.root, slots) {
            (Node::Record { fields }, Some(at)) => &fields[at].1,
            (root, _) => root,
        };
        entries
            .into_iter()
            .map(|(key, value)| Hist {
                slots: numbers(node, &value),
                key: Some(key),
                value: if self.labels.is_empty() {
                    Vec::new()
                } else {
                    value
                },
            })
            .collect()
    }

    /// One histogram from a map whose key is the slot and whose value is its count.
    fn by_key(&self, entries: &[(Vec<u8>, Vec<u8>)]) -> Hist {
        let limit = match self.scale {
            Scale::Log2 => 64,
            Scale::Linear => MAX_SLOTS,
        };
        let mut slots = Vec::new();
        for (k, v) in entries {
            let slot = first(&self.key.root, k) as usize;
            if slot < limit {
                if slots.len() <= slot {
                    slots.resize(slot + 1, 0);
                }
                slots[slot] += first(&self.value.root, v);
            }
        }
        Hist {
            key: None,
            value: Vec::new(),
            slots,
        }
    }

    /// Biggest count first, then by key.
    fn sort(&self, entries: &mut [(Vec<u8>, Vec<u8>)]) {
        let count = |v: &[u8]| self.count.as_ref().map_or(0, |node| first(node, v));
        entries.sort_by(|(ka, va), (kb, vb)| {
            count(vb)
                .cmp(&count(va))
                .then_with(|| key_order(&self.key, ka, kb))
        });
    }
}

/// The integers `node` reads in `bytes`: a count, or the slots of a histogram.
fn numbers(node: &Node, bytes: &[u8]) -> Vec<u64> {
    let mut atoms = Atoms(Vec::new());
    node.visit(bytes, 0, &mut atoms);
    atoms
        .0
        .into_iter()
        .map(|a| match a {
            Atom::Int(v) => v.clamp(0, i128::from(u64::MAX)) as u64,
            Atom::Text(_) => 0,
        })
        .collect()
}

/// The first integer `node` reads in `bytes`, or 0.
fn first(node: &Node, bytes: &[u8]) -> u64 {
    numbers(node, bytes).first().copied().unwrap_or(0)
}

/// Two keys compared as the values they hold, member by member.
fn key_order(plan: &Plan, a: &[u8], b: &[u8]) -> Ordering {
    let atoms = |bytes| {
        let mut atoms = Atoms(Vec::new());
        plan.visit(bytes, &mut atoms);
        atoms.0
    };
    atoms(a).cmp(&atoms(b))
}

/// A value reduced to what it compares by.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Atom {
    Int(i128),
    Text(Vec<u8>),
}

/// Collects the numbers and texts of a decoded value, in order.
struct Atoms(Vec<Atom>);

impl Sink for Atoms {
    fn int(&mut self, v: i64) {
        self.0.push(Atom::Int(v.into()))
    }
    fn uint(&mut self, v: u64) {
        self.0.push(Atom::Int(v.into()))
    }
    fn int128(&mut self, v: i128) {
        self.0.push(Atom::Int(v))
    }
    fn uint128(&mut self, v: u128) {
        self.0
            .push(Atom::Int(i128::try_from(v).unwrap_or(i128::MAX)))
    }
    fn bool(&mut self, v: bool) {
        self.0.push(Atom::Int(v.into()))
    }
    fn float(&mut self, v: f64) {
        self.0.push(Atom::Int(v as i128))
    }
    fn text(&mut self, s: &[u8]) {
        self.0.push(Atom::Text(s.to_vec()))
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend(b.iter().map(|&x| Atom::Int(x.into())))
    }
    fn enum_name(&mut self, name: &str) {
        self.0.push(Atom::Text(name.as_bytes().to_vec()))
    }
    fn pointer(&mut self, v: u64) {
        self.0.push(Atom::Int(v.into()))
    }
    fn begin_list(&mut self) {}
    fn item(&mut self, _: bool) {}
    fn end_list(&mut self) {}
    fn begin_record(&mut self) {}
    fn field(&mut self, _: &str, _: bool) {}
    fn end_record(&mut self) {}
}

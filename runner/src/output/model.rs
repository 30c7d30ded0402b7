//! What a format is given: the [`Output`] trait every format implements, and the shapes
//! of data it prints (the columns of an event struct, a map view as a table or as
//! histograms).

use super::clock::Stamp;
use super::text::{self, unit_suffix};
use crate::spec::plan::{Node, Plan};
use crate::stdio::escape_controls;

/// One format.
pub(crate) trait Output {
    /// What goes before the first event of `events`, if anything.
    fn header(&self, events: &Events, out: &mut Vec<u8>);
    /// One event: `rec` holds at least `events.fixed` bytes.
    fn event(&mut self, events: &Events, at: &Stamp, rec: &[u8], out: &mut Vec<u8>);
    /// A map view as key → value rows.
    fn map_table(&self, table: &MapTable, out: &mut Vec<u8>);
    /// A map view as log2 histograms.
    fn histograms(&self, hists: &Histograms, out: &mut Vec<u8>);
}

/// One column of an event: a top-level member of its struct.
pub(crate) struct Column {
    /// The table header: the member's name in upper case, and the unit of a duration
    /// shown in a fixed unit (`LAT(ms)`).
    pub name: String,
    /// The JSON key: the member's name.
    pub key: String,
    /// The CSV header: the member's name, and that unit (`lat(ms)`).
    pub csv: String,
    pub node: Node,
    /// The table width values of this column usually fit.
    pub width: usize,
}

/// What the formats know about the events of one channel.
pub(crate) struct Events {
    pub size: usize,
    /// The shortest record that can be decoded.
    pub fixed: usize,
    pub columns: Vec<Column>,
    /// Which channel's struct this is, shown when a package has several.
    pub label: Option<String>,
}

impl Events {
    pub fn new(plan: Plan) -> Events {
        let columns = plan
            .columns()
            .into_iter()
            .map(|(name, node)| {
                // Member names come from the package: nothing in them may act on a terminal.
                let name = escape_controls(name, false);
                let unit = unit_suffix(node);
                Column {
                    name: format!("{}{unit}", name.to_ascii_uppercase()),
                    key: name.to_string(),
                    csv: format!("{name}{unit}"),
                    width: text::natural_width(node).max(name.len() + unit.len()),
                    node: node.clone(),
                }
            })
            .collect();
        Events {
            size: plan.size,
            fixed: plan.fixed,
            columns,
            label: None,
        }
    }

    /// The width of the EVENT column.
    pub fn label_width(&self) -> usize {
        self.label.as_ref().map_or(0, |l| l.len().max(5))
    }
}

/// A map view at one instant, as rows of (key bytes, value bytes), in the order shown.
pub(crate) struct MapTable<'a> {
    pub map: &'a str,
    pub at: &'a Stamp,
    pub key: &'a Plan,
    pub value: &'a Plan,
    pub entries: &'a [(Vec<u8>, Vec<u8>)],
}

/// How a histogram's slots divide the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// Slot `i` counts the values from 2^i to 2^(i+1) - 1 (slot 0: 0 and 1).
    Log2,
    /// Slot `i` counts the value `i`.
    Linear,
}

impl Scale {
    /// The values counted in slot `i`: (low, high).
    pub fn bounds(self, i: usize) -> (u64, u64) {
        match self {
            Scale::Linear => (i as u64, i as u64),
            Scale::Log2 if i == 0 => (0, 1),
            Scale::Log2 => {
                let low = 1u64.checked_shl(i as u32).unwrap_or(u64::MAX);
                (low, low.saturating_mul(2).saturating_sub(1))
            }
        }
    }
}

/// A map view at one instant, as histograms: one per key, or one for a map keyed by slot.
pub(crate) struct Histograms<'a> {
    pub map: &'a str,
    pub at: &'a Stamp,
    pub scale: Scale,
    /// What the slots count (`usecs`), when the package says.
    pub unit: Option<&'a str>,
    pub key: &'a Plan,
    /// The value's members other than the slots, read from [`Hist::value`]: shown with
    /// each key (bcc's `comm`, hardirqs' count and total time).
    pub labels: &'a [(String, Node)],
    pub hists: &'a [Hist],
}

/// One histogram.
pub(crate) struct Hist {
    /// Its key; none for the one histogram of a map keyed by slot.
    pub key: Option<Vec<u8>>,
    /// The whole value, which the labels read; empty when there are none.
    pub value: Vec<u8>,
    /// The count in each slot.
    pub slots: Vec<u64>,
}

impl Hist {
    /// The slots up to the last one that counted anything (none when all are zero).
    pub fn used(&self) -> &[u64] {
        let end = self.slots.iter().rposition(|&c| c > 0).map_or(0, |i| i + 1);
        &self.slots[..end]
    }
}

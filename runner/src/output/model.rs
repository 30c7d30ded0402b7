//! What a format is given: the [`Output`] trait every format implements, and the shapes
//! of data it prints (the columns of an event struct, a map view as a table or as
//! histograms).

use super::clock::Stamp;
use super::text;
use crate::spec::plan::{Node, Plan};
use crate::stdio::escape_controls;

/// One format.
pub(crate) trait Output {
    /// What goes before the first event of `events`, if anything.
    fn header(&self, events: &Events, out: &mut Vec<u8>);
    /// One event: `rec` holds at least `events.size` bytes.
    fn event(&mut self, events: &Events, at: &Stamp, rec: &[u8], out: &mut Vec<u8>);
    /// A map view as key → value rows.
    fn map_table(&self, table: &MapTable, out: &mut Vec<u8>);
    /// A map view as log2 histograms.
    fn histograms(&self, hists: &Histograms, out: &mut Vec<u8>);
}

/// One column of an event: a top-level member of its struct.
pub(crate) struct Column {
    /// The table and CSV header (upper case).
    pub name: String,
    /// The JSON key and CSV header.
    pub key: String,
    pub node: Node,
    /// The table width values of this column usually fit.
    pub width: usize,
}

/// What the formats know about the events of one channel.
pub(crate) struct Events {
    pub size: usize,
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
                Column {
                    name: name.to_ascii_uppercase(),
                    key: name.to_string(),
                    width: text::natural_width(node).max(name.len()),
                    node: node.clone(),
                }
            })
            .collect();
        Events {
            size: plan.size,
            columns,
            label: None,
        }
    }

    /// The width of the EVENT column.
    pub fn label_width(&self) -> usize {
        self.label.as_ref().map_or(0, |l| l.len().max(5))
    }
}

/// A map view at one instant, as rows of (key bytes, value bytes).
pub(crate) struct MapTable<'a> {
    pub map: &'a str,
    pub at: &'a Stamp,
    pub key: &'a Plan,
    pub value: &'a Plan,
    pub entries: &'a [(Vec<u8>, Vec<u8>)],
}

/// A map view at one instant, as log2 histograms: one per key (`Some(key bytes)`), or one
/// for the whole map (`None`), each a list of slot counts.
pub(crate) struct Histograms<'a> {
    pub map: &'a str,
    pub at: &'a Stamp,
    pub key: &'a Plan,
    pub hists: &'a [(Option<Vec<u8>>, Vec<u64>)],
}

/// The values counted in slot `i` of a log2 histogram: 0..=1, 2..=3, 4..=7, ...
pub(crate) fn bounds(i: usize) -> (u64, u64) {
    if i == 0 {
        return (0, 1);
    }
    let low = 1u64.checked_shl(i as u32).unwrap_or(u64::MAX);
    (low, low.saturating_mul(2).saturating_sub(1))
}

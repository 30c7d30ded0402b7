//! The one output layer. Each format (`-o table|json|csv`) is one implementation of
//! [`Output`], in its own file, and prints both kinds of data the runner has: events of a
//! channel (decoded through the struct's [`Plan`], driven by an [`EventWriter`]) and map
//! views (tables of key → value rows, histograms, driven by a [`ViewWriter`]). Adding a
//! format is one new file and one [`Format`] variant.
//!
//! Everything is appended to a caller's buffer, so a batch of events costs one write.

mod clock;
mod csv;
mod format;
mod hist;
mod json;
mod labels;
mod model;
mod none;
mod shown;
mod table;
mod text;
mod view;

pub(crate) use clock::{Clock, Stamp};
pub use format::Format;
pub(crate) use model::{Events, Hist, Histograms, MapTable, Output};
pub(crate) use text::cell_now;
pub use view::{ViewWriter, ViewWriterError};

use crate::spec::plan::Plan;

/// The events of one channel, printed in one format: what the event loop drives, and what
/// the golden tests render through.
pub struct EventWriter {
    events: Events,
    output: Box<dyn Output>,
    clock: Clock,
}

impl EventWriter {
    /// A writer for records decoded by `plan` (see [`Plan::record`]).
    pub fn new(format: Format, plan: Plan) -> Self {
        EventWriter {
            events: Events::new(plan),
            output: format.output(),
            clock: Clock::new(),
        }
    }

    /// Tag every line with `label` (an EVENT column, an `"event"` key): for packages whose
    /// channels carry different structs.
    pub fn with_label(mut self, label: &str) -> Self {
        self.events.label = Some(crate::stdio::escape_controls(label, false).into_owned());
        self
    }

    /// Start every JSON line with these keys (`--labels`): (key without its `@`, value).
    pub fn with_keys(mut self, keys: &[(String, String)]) -> Self {
        self.output = Box::new(labels::Labelled::new(self.output, keys));
        self
    }

    /// Show every event at this instant (seconds and nanoseconds since the epoch), in UTC,
    /// instead of the local wall clock: for reproducible output in tests.
    pub fn fix_time(&mut self, secs: i64, nsec: i64) {
        self.clock.freeze(secs, nsec);
    }

    /// The header line, if the format has one.
    pub fn header(&self, out: &mut Vec<u8>) {
        self.output.header(&self.events, out);
    }

    /// Render one record, which must hold at least [`fixed`](Self::fixed) bytes; a
    /// shorter record than the struct is a variable-length one (`spec::tail`).
    pub fn event(&mut self, rec: &[u8], out: &mut Vec<u8>) {
        let at = self.clock.now();
        self.output.event(&self.events, at, rec, out);
    }

    /// The size of the struct.
    pub fn size(&self) -> usize {
        self.events.size
    }

    /// The fixed part of the struct (before its trailing array): shorter records cannot
    /// be decoded.
    pub fn fixed(&self) -> usize {
        self.events.fixed
    }
}

//! `-o csv`: a header row, then one row per event (RFC 4180 quoting). A map view is a
//! header row and one row per entry, each starting with the map's name; histograms are
//! drawn as text, as in a table.

use super::clock::Stamp;
use super::model::{Events, Histograms, MapTable, Output};
use super::table::text_histograms;
use super::text::{csv_cell, plan_cells, plan_headers, TextSink};

#[derive(Default)]
pub(super) struct Csv {
    /// One cell, rendered before it is quoted.
    cell: Vec<u8>,
}

impl Output for Csv {
    fn header(&self, events: &Events, out: &mut Vec<u8>) {
        out.extend_from_slice(b"time");
        if events.label.is_some() {
            out.extend_from_slice(b",event");
        }
        for col in &events.columns {
            out.push(b',');
            out.extend_from_slice(col.key.as_bytes());
        }
        out.push(b'\n');
    }

    fn event(&mut self, events: &Events, at: &Stamp, rec: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&at.hms);
        if let Some(label) = &events.label {
            out.push(b',');
            csv_cell(out, label.as_bytes());
        }
        for col in &events.columns {
            out.push(b',');
            self.cell.clear();
            col.node.visit(rec, 0, &mut TextSink(&mut self.cell));
            csv_cell(out, &self.cell);
        }
        out.push(b'\n');
    }

    fn map_table(&self, t: &MapTable, out: &mut Vec<u8>) {
        let header = [plan_headers(t.key, "KEY"), plan_headers(t.value, "VALUE")].concat();
        let rows = t
            .entries
            .iter()
            .map(|(k, v)| [plan_cells(t.key, k), plan_cells(t.value, v)].concat());
        for row in std::iter::once(header).chain(rows) {
            out.extend_from_slice(t.map.as_bytes());
            for cell in row {
                out.push(b',');
                csv_cell(out, cell.as_bytes());
            }
            out.push(b'\n');
        }
    }

    fn histograms(&self, h: &Histograms, out: &mut Vec<u8>) {
        text_histograms(h, out);
    }
}

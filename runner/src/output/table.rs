//! `-o table`: aligned columns for a person at a terminal. Events get one line each under
//! a header; map views print as a titled table, or as bcc-style star-bar histograms.

use std::io::Write as _;

use super::clock::Stamp;
use super::hist;
use super::model::{Events, Histograms, MapTable, Output};
use super::text::{pad, plan_cells, plan_headers, TextSink};

pub(super) struct Table;

impl Output for Table {
    fn header(&self, events: &Events, out: &mut Vec<u8>) {
        out.extend_from_slice(b"TIME         ");
        if events.label.is_some() {
            pad(out, b"EVENT", events.label_width());
        }
        let last = events.columns.len().saturating_sub(1);
        for (i, col) in events.columns.iter().enumerate() {
            if i == last {
                out.extend_from_slice(col.name.as_bytes());
            } else {
                pad(out, col.name.as_bytes(), col.width);
            }
        }
        out.push(b'\n');
    }

    fn event(&mut self, events: &Events, at: &Stamp, rec: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(&at.hms);
        out.push(b' ');
        if let Some(label) = &events.label {
            pad(out, label.as_bytes(), events.label_width());
        }
        let last = events.columns.len().saturating_sub(1);
        for (i, col) in events.columns.iter().enumerate() {
            let start = out.len();
            col.node.visit(rec, 0, &mut TextSink::new(out, &at.ktime));
            if i != last {
                let written = out.len() - start;
                out.resize(out.len() + col.width.saturating_sub(written) + 1, b' ');
            }
        }
        out.push(b'\n');
    }

    fn map_table(&self, t: &MapTable, out: &mut Vec<u8>) {
        let mut rows = vec![[plan_headers(t.key, "KEY"), plan_headers(t.value, "VALUE")].concat()];
        for (k, v) in t.entries {
            rows.push(
                [
                    plan_cells(t.key, k, &t.at.ktime),
                    plan_cells(t.value, v, &t.at.ktime),
                ]
                .concat(),
            );
        }
        let _ = writeln!(
            out,
            "\n{} map {}: {} entries",
            t.at.hms(),
            t.map,
            t.entries.len()
        );
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

    /// `<time> map <name>:`, then per histogram a line naming its key and labels (bcc's
    /// `pid = 42 bash`) and the histogram, unless every slot is zero.
    fn histograms(&self, h: &Histograms, out: &mut Vec<u8>) {
        let _ = writeln!(out, "\n{} map {}:", h.at.hms(), h.map);
        for one in h.hists {
            if let Some(label) = hist::label(h, one) {
                let _ = writeln!(out, "\n{label}");
            }
            hist::draw(h.scale, &one.slots, h.unit, out);
        }
    }
}

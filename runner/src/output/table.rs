//! `-o table`: aligned columns for a person at a terminal. Events get one line each under
//! a header; map views print as a titled table, or as bcc-style star-bar histograms.

use std::io::Write as _;

use super::clock::Stamp;
use super::model::{bounds, Events, Histograms, MapTable, Output};
use super::text::{pad, plan_cells, plan_headers, TextSink};

/// Width of the star bar of a histogram.
const BAR: usize = 40;

pub(super) struct Table;

impl Output for Table {
    fn header(&self, events: &Events, out: &mut Vec<u8>) {
        out.extend_from_slice(b"TIME     ");
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
            col.node.visit(rec, 0, &mut TextSink(out));
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
            rows.push([plan_cells(t.key, k), plan_cells(t.value, v)].concat());
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

    fn histograms(&self, h: &Histograms, out: &mut Vec<u8>) {
        text_histograms(h, out);
    }
}

/// Histograms as text, under a title: also what CSV prints for them.
pub(super) fn text_histograms(h: &Histograms, out: &mut Vec<u8>) {
    let _ = writeln!(out, "\n{} map {}:", h.at.hms(), h.map);
    for (key, slots) in h.hists {
        if let Some(key) = key {
            let _ = writeln!(
                out,
                "\n{} = {}",
                plan_headers(h.key, "key").join(","),
                plan_cells(h.key, key).join(",")
            );
        }
        draw_log2(slots, out);
    }
}

/// Draw slots as bcc does: `low -> high : count |*****     |`, up to the last used slot.
pub(crate) fn draw_log2(slots: &[u64], out: &mut Vec<u8>) {
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
}

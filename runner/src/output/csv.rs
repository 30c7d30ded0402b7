//! `-o csv`: a header row, then one row per event (RFC 4180 quoting): `@time` (and
//! `@event` when a package has several event structs), then one column per member. A map
//! view is a header row, `@time,@map,` then the key's and the value's columns (`key`, or
//! `key.<member>` for a struct; `value`, or `value.<member>`), and one row per entry;
//! histograms have one row per bucket (`@bucket_low,@bucket_high,@bucket_count` after the
//! key and the labels), and one row with empty buckets for a key whose slots are all zero.
//! The runner's own columns start with `@` and a struct's members come after `key.` or
//! `value.`, so no member name can repeat a column.

use super::clock::Stamp;
use super::model::{Events, Histograms, MapTable, Output};
use super::text::{cell, csv_cell, plan_cells, plan_names, TextSink};

#[derive(Default)]
pub(super) struct Csv {
    /// One cell, rendered before it is quoted.
    cell: Vec<u8>,
}

/// One row: the cells, quoted where they must be.
fn row<S: AsRef<[u8]>>(out: &mut Vec<u8>, cells: impl IntoIterator<Item = S>) {
    for (i, c) in cells.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_cell(out, c.as_ref());
    }
    out.push(b'\n');
}

impl Output for Csv {
    fn header(&self, events: &Events, out: &mut Vec<u8>) {
        out.extend_from_slice(b"@time");
        if events.label.is_some() {
            out.extend_from_slice(b",@event");
        }
        for col in &events.columns {
            out.push(b',');
            csv_cell(out, col.csv.as_bytes());
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
            col.node
                .visit(rec, 0, &mut TextSink::new(&mut self.cell, &at.ktime));
            csv_cell(out, &self.cell);
        }
        out.push(b'\n');
    }

    fn map_table(&self, t: &MapTable, out: &mut Vec<u8>) {
        let front = ["@time".to_string(), "@map".to_string()];
        let names = [plan_names(t.key, "key"), plan_names(t.value, "value")].concat();
        row(out, front.iter().chain(&names));
        for (k, v) in t.entries {
            let front = [t.at.hms().to_string(), t.map.to_string()];
            let cells = [
                plan_cells(t.key, k, &t.at.ktime),
                plan_cells(t.value, v, &t.at.ktime),
            ]
            .concat();
            row(out, front.iter().chain(&cells));
        }
    }

    fn histograms(&self, h: &Histograms, out: &mut Vec<u8>) {
        let keyed = h.hists.iter().any(|one| one.key.is_some());
        let mut names = vec!["@time".to_string(), "@map".to_string()];
        if keyed {
            names.extend(plan_names(h.key, "key"));
        }
        names.extend(h.labels.iter().map(|(n, _)| format!("value.{n}")));
        names.extend(["@bucket_low", "@bucket_high", "@bucket_count"].map(String::from));
        row(out, &names);
        for one in h.hists {
            let mut front = vec![h.at.hms().to_string(), h.map.to_string()];
            if let Some(key) = &one.key {
                front.extend(plan_cells(h.key, key, &h.at.ktime));
            }
            for (_, node) in h.labels {
                front.push(cell(&h.at.ktime, |s| node.visit(&one.value, 0, s)));
            }
            let used = one.used();
            if used.is_empty() {
                row(
                    out,
                    front
                        .iter()
                        .chain(&[String::new(), String::new(), String::new()]),
                );
            }
            for (i, count) in used.iter().enumerate() {
                let (low, high) = h.scale.bounds(i);
                let bucket = [low.to_string(), high.to_string(), count.to_string()];
                row(out, front.iter().chain(&bucket));
            }
        }
    }
}

//! `-o json`: one JSON object per line, for jq and log shippers. An event is an object
//! keyed by member name after `@time` (RFC 3339, microseconds) and, when a package has
//! several event structs, `@event`; a member shown in a format that loses its number has
//! that number after it as `<member>@raw`. The runner's own keys hold an `@`, which no C
//! identifier does, so no member can repeat one. A map view is an object with `@time`,
//! `@map` and its entries, or one object per histogram with its key, labels, unit and
//! buckets.

use std::io::Write as _;

use super::clock::Stamp;
use super::model::{Events, Histograms, MapTable, Output};
use super::text::{json_int, json_string, JsonSink};
use crate::spec::plan::Sink as _;

pub(super) struct JsonLines;

impl Output for JsonLines {
    fn header(&self, _: &Events, _: &mut Vec<u8>) {}

    fn event(&mut self, events: &Events, at: &Stamp, rec: &[u8], out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"@time\":\"");
        out.extend_from_slice(at.date_time.as_bytes());
        let _ = write!(out, ".{:06}", at.nsec / 1000);
        out.extend_from_slice(at.zone.as_bytes());
        out.push(b'"');
        let mut sink = JsonSink::new(out, &at.ktime);
        if let Some(label) = &events.label {
            sink.field("@event", false);
            sink.text(label.as_bytes());
        }
        for col in &events.columns {
            col.node.visit_field(&col.key, false, rec, 0, &mut sink);
        }
        out.extend_from_slice(b"}\n");
    }

    fn map_table(&self, t: &MapTable, out: &mut Vec<u8>) {
        head(out, t.at, t.map);
        out.extend_from_slice(b",\"entries\":[");
        for (i, (k, v)) in t.entries.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"key\":");
            t.key.visit(k, &mut JsonSink::new(out, &t.at.ktime));
            out.extend_from_slice(b",\"value\":");
            t.value.visit(v, &mut JsonSink::new(out, &t.at.ktime));
            out.push(b'}');
        }
        out.extend_from_slice(b"]}\n");
    }

    /// `{"time","map","key","value":{labels},"unit","buckets":[{"low","high","count"}]}`
    /// per histogram, buckets up to the last used one; `key`, `value` and `unit` only
    /// when there are some.
    fn histograms(&self, h: &Histograms, out: &mut Vec<u8>) {
        for one in h.hists {
            head(out, h.at, h.map);
            if let Some(key) = &one.key {
                out.extend_from_slice(b",\"key\":");
                h.key.visit(key, &mut JsonSink::new(out, &h.at.ktime));
            }
            if !h.labels.is_empty() {
                out.extend_from_slice(b",\"value\":");
                let mut sink = JsonSink::new(out, &h.at.ktime);
                sink.begin_record();
                for (i, (name, node)) in h.labels.iter().enumerate() {
                    node.visit_field(name, i == 0, &one.value, 0, &mut sink);
                }
                sink.end_record();
            }
            if let Some(unit) = h.unit {
                out.extend_from_slice(b",\"unit\":");
                json_string(out, unit.as_bytes());
            }
            out.extend_from_slice(b",\"buckets\":[");
            for (i, count) in one.used().iter().enumerate() {
                let (low, high) = h.scale.bounds(i);
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(b"{\"low\":");
                json_int(out, low);
                out.extend_from_slice(b",\"high\":");
                json_int(out, high);
                out.extend_from_slice(b",\"count\":");
                json_int(out, *count);
                out.push(b'}');
            }
            out.extend_from_slice(b"]}\n");
        }
    }
}

/// `{"@time":"…","@map":"name"`: the start of every map view object.
fn head(out: &mut Vec<u8>, at: &Stamp, map: &str) {
    out.extend_from_slice(b"{\"@time\":");
    json_string(out, at.rfc3339().as_bytes());
    out.extend_from_slice(b",\"@map\":");
    json_string(out, map.as_bytes());
}

//! `--labels`: the same keys at the front of every JSON line, events and map views alike
//! (`{"@host":"node1","@package":"sigsnoop","time":…}`), so a log shipper can forward the
//! lines of many hosts unchanged. The runner's own keys start with `@`, which no C
//! identifier (no member of an event) does, so they never collide with the event's.
//!
//! A wrapper around the JSON output: whatever it writes, each line that is an object gets
//! the keys after its `{`.

use super::clock::Stamp;
use super::model::{Events, Histograms, MapTable, Output};
use super::text::json_string;

pub(super) struct Labelled {
    inner: Box<dyn Output>,
    /// `"@host":"node1","@package":"sigsnoop",`
    keys: Vec<u8>,
}

impl Labelled {
    /// `labels` are (key without its `@`, value).
    pub fn new(inner: Box<dyn Output>, labels: &[(String, String)]) -> Labelled {
        let mut keys = Vec::new();
        for (key, value) in labels {
            json_string(&mut keys, format!("@{key}").as_bytes());
            keys.push(b':');
            json_string(&mut keys, value.as_bytes());
            keys.push(b',');
        }
        Labelled { inner, keys }
    }

    /// Put the keys into every object line written from `start` on.
    fn label(&self, start: usize, out: &mut Vec<u8>) {
        if self.keys.is_empty() || out.len() == start {
            return;
        }
        let written = out.split_off(start);
        out.reserve(written.len() + self.keys.len());
        for line in written.split_inclusive(|&b| b == b'\n') {
            match line.strip_prefix(b"{") {
                Some(rest) => {
                    out.push(b'{');
                    out.extend_from_slice(&self.keys);
                    if rest.starts_with(b"}") {
                        // An empty object: no comma before its end.
                        out.pop();
                    }
                    out.extend_from_slice(rest);
                }
                None => out.extend_from_slice(line),
            }
        }
    }
}

impl Output for Labelled {
    fn header(&self, events: &Events, out: &mut Vec<u8>) {
        let start = out.len();
        self.inner.header(events, out);
        self.label(start, out);
    }

    fn event(&mut self, events: &Events, at: &Stamp, rec: &[u8], out: &mut Vec<u8>) {
        let start = out.len();
        self.inner.event(events, at, rec, out);
        self.label(start, out);
    }

    fn map_table(&self, table: &MapTable, out: &mut Vec<u8>) {
        let start = out.len();
        self.inner.map_table(table, out);
        self.label(start, out);
    }

    fn histograms(&self, hists: &Histograms, out: &mut Vec<u8>) {
        let start = out.len();
        self.inner.histograms(hists, out);
        self.label(start, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes fixed lines, as a format would.
    struct Lines(&'static str);

    impl Output for Lines {
        fn header(&self, _: &Events, out: &mut Vec<u8>) {
            out.extend_from_slice(self.0.as_bytes());
        }
        fn event(&mut self, _: &Events, _: &Stamp, _: &[u8], _: &mut Vec<u8>) {}
        fn map_table(&self, _: &MapTable, _: &mut Vec<u8>) {}
        fn histograms(&self, _: &Histograms, _: &mut Vec<u8>) {}
    }

    fn labelled(lines: &'static str) -> String {
        let labels = [
            ("host".to_string(), "node\"1".to_string()),
            ("package".to_string(), "sigsnoop".to_string()),
        ];
        let out = Labelled::new(Box::new(Lines(lines)), &labels);
        let events = Events::new(
            crate::spec::plan::Plan::compile(&crate::spec::types::Type {
                c: "int".into(),
                kind: crate::spec::types::Kind::Int {
                    size: 4,
                    signed: true,
                },
            })
            .unwrap(),
        );
        let mut buf = b"before\n".to_vec();
        out.header(&events, &mut buf);
        String::from_utf8(buf).unwrap()
    }

    #[test]
    fn every_object_line_gets_the_keys_first() {
        assert_eq!(
            labelled("{\"time\":1,\"a\":2}\n{\"time\":3}\nnot json\n{}\n"),
            "before\n\
             {\"@host\":\"node\\\"1\",\"@package\":\"sigsnoop\",\"time\":1,\"a\":2}\n\
             {\"@host\":\"node\\\"1\",\"@package\":\"sigsnoop\",\"time\":3}\n\
             not json\n\
             {\"@host\":\"node\\\"1\",\"@package\":\"sigsnoop\"}\n"
        );
        assert_eq!(labelled(""), "before\n");
    }
}

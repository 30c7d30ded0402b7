//! What the exporter serves: the counts and samples the event loop last published, shared
//! with the HTTP thread, and their encoding on each scrape through `prometheus-client`
//! (OpenMetrics text), or the Prometheus text format 0.0.4 for a client that does not ask
//! for OpenMetrics.
//!
//! The event loop never waits on a scrape for longer than one encoding: it takes the lock
//! once per drained batch, per loss check and per view refresh.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use super::names::{Catalog, Family, Kind};
use crate::output::cell_now;
use crate::spec::plan::Node;

/// One sample of a view's family.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Sample {
    Gauge {
        labels: Vec<(String, String)>,
        value: f64,
    },
    /// `buckets`: (upper bound, count in that bucket alone), the last one +Inf.
    Histogram {
        labels: Vec<(String, String)>,
        buckets: Vec<(f64, u64)>,
        count: u64,
    },
}

/// The counts of one channel.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Counts {
    pub events: u64,
    pub lost: u64,
    pub full: u64,
}

/// The series of one of the package's counters: by the bytes of their label members.
#[derive(Debug)]
pub(crate) struct Series {
    /// Each label's name and its decoder, reading the key bytes.
    pub labels: Vec<(String, Node)>,
    pub counts: BTreeMap<Vec<u8>, u64>,
    pub max: usize,
    /// Events whose labels would have started a series beyond `max`.
    pub dropped: u64,
}

impl Series {
    /// Count `n` events of label bytes `key`, within the cap.
    pub fn add(&mut self, key: Vec<u8>, n: u64) {
        if let Some(count) = self.counts.get_mut(&key) {
            *count += n;
        } else if self.counts.len() < self.max {
            self.counts.insert(key, n);
        } else {
            self.dropped += n;
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct State {
    pub channels: Vec<Counts>,
    /// Per served counter of the package, in the catalogue's order.
    pub counters: Vec<Series>,
    /// Per view (the catalogue's), the samples of each of its families.
    pub views: Vec<Vec<Vec<Sample>>>,
}

/// The state and what it is served as.
#[derive(Debug)]
pub(crate) struct Shared {
    pub catalog: Catalog,
    package: String,
    /// Per channel, its map.
    maps: Vec<String>,
    /// Per served counter, its name in the package (for `runner_metric_dropped_total`) and
    /// its family.
    counter_names: Vec<(String, usize)>,
    /// The unit of each family that has one, by name, as the encoder takes it.
    units: BTreeMap<String, Unit>,
    state: Mutex<State>,
}

/// `\`, `"` and line breaks escaped, as label values need.
pub(super) fn escape_value(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// `\` and line breaks escaped, as help text needs.
fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), escape_value(v)))
        .collect()
}

impl Shared {
    pub fn new(
        catalog: Catalog,
        package: &str,
        maps: Vec<String>,
        counter_names: Vec<(String, usize)>,
        counters: Vec<Series>,
    ) -> Shared {
        let state = State {
            channels: vec![Counts::default(); maps.len()],
            counters,
            views: catalog
                .views
                .iter()
                .map(|v| vec![Vec::new(); v.families.len()])
                .collect(),
        };
        let units = catalog
            .all()
            .filter_map(|f| Some((f.name.clone(), Unit::Other(f.unit.clone()?))))
            .collect();
        Shared {
            catalog,
            package: package.to_string(),
            maps,
            counter_names,
            units,
            state: Mutex::new(state),
        }
    }

    /// The state, to update; a thread that panicked holding it left nothing half-done
    /// that matters more than serving.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The exposition: OpenMetrics text, or the Prometheus text format.
    pub fn encode(self: &std::sync::Arc<Self>, openmetrics: bool) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Scrape(self.clone())));
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        if openmetrics {
            text
        } else {
            to_text_format(&text)
        }
    }

    fn family(&self, name: &str) -> Option<&Family> {
        self.catalog.families.iter().find(|f| f.name == name)
    }
}

/// Which count of a channel a family serves.
type CountOf = fn(&Counts) -> u64;

/// The collector a scrape encodes.
#[derive(Debug)]
struct Scrape(std::sync::Arc<Shared>);

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let shared = &self.0;
        let state = shared.lock();
        let package = shared.package.as_str();
        let version = env!("CARGO_PKG_VERSION");
        if let Some(f) = shared.family("runner") {
            let mut m = shared.descriptor(&mut encoder, f)?;
            m.encode_info(&labels(&[("package", package), ("version", version)]))?;
        }
        let per_channel: [(&str, CountOf); 3] = [
            ("runner_events", |c| c.events),
            ("runner_events_lost", |c| c.lost),
            ("runner_ring_full", |c| c.full),
        ];
        for (name, value) in per_channel {
            let Some(f) = shared.family(name) else {
                continue;
            };
            let mut m = shared.descriptor(&mut encoder, f)?;
            for (i, (map, counts)) in shared.maps.iter().zip(&state.channels).enumerate() {
                if name == "runner_ring_full" && !shared.catalog.ring_full[i] {
                    continue;
                }
                let set = labels(&[("package", package), ("map", map)]);
                ConstCounter::new(value(counts)).encode(m.encode_family(&set)?)?;
            }
        }
        if let Some(f) = shared.family("runner_metric_dropped") {
            let mut m = shared.descriptor(&mut encoder, f)?;
            for ((name, _), series) in shared.counter_names.iter().zip(&state.counters) {
                let set = labels(&[("package", package), ("metric", name)]);
                ConstCounter::new(series.dropped).encode(m.encode_family(&set)?)?;
            }
        }
        for ((_, family), series) in shared.counter_names.iter().zip(&state.counters) {
            let mut m = shared.descriptor(&mut encoder, &shared.catalog.families[*family])?;
            for (key, count) in &series.counts {
                let set: Vec<(String, String)> = series
                    .labels
                    .iter()
                    .map(|(name, node)| {
                        (
                            name.clone(),
                            escape_value(&cell_now(|s| node.visit(key, 0, s))),
                        )
                    })
                    .collect();
                ConstCounter::new(*count).encode(m.encode_family(&set)?)?;
            }
        }
        for (layout, families) in shared.catalog.views.iter().zip(&state.views) {
            for (family, samples) in layout.families.iter().zip(families) {
                let mut m = shared.descriptor(&mut encoder, family)?;
                for sample in samples {
                    encode_sample(&mut m, sample)?;
                }
            }
        }
        Ok(())
    }
}

impl Shared {
    /// The HELP, TYPE (and UNIT) lines of `family`; its samples go through what it returns.
    fn descriptor<'a>(
        &'a self,
        encoder: &'a mut DescriptorEncoder,
        family: &'a Family,
    ) -> Result<prometheus_client::encoding::MetricEncoder<'a>, std::fmt::Error> {
        let kind = match family.kind {
            Kind::Counter => MetricType::Counter,
            Kind::Gauge => MetricType::Gauge,
            Kind::Histogram => MetricType::Histogram,
            Kind::Info => MetricType::Info,
        };
        let help = escape_help(&family.help);
        encoder.encode_descriptor(&family.name, &help, self.units.get(&family.name), kind)
    }
}

fn encode_sample(
    m: &mut prometheus_client::encoding::MetricEncoder,
    sample: &Sample,
) -> Result<(), std::fmt::Error> {
    match sample {
        Sample::Gauge { labels, value } => ConstGauge::new(*value).encode(m.encode_family(labels)?),
        Sample::Histogram {
            labels,
            buckets,
            count,
        } => m.encode_family(labels)?.encode_histogram::<Vec<(String, String)>>(
            // The map holds counts per bucket only: the sum of the values is unknown.
            f64::NAN,
            *count,
            buckets,
            None,
        ),
    }
}

/// OpenMetrics text as the Prometheus text format 0.0.4: a counter's HELP and TYPE name
/// its samples (`x_total`), an info family becomes a gauge (`x_info`), and the `# UNIT`
/// and `# EOF` lines go.
fn to_text_format(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help = rest.split_once(' ').or(Some((rest, "")));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "unknown"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "unknown" => (name.to_string(), "untyped"),
                other => (name.to_string(), other),
            };
            if let Some((_, text)) = help.take() {
                let _ = writeln!(out, "# HELP {name} {text}");
            }
            let _ = writeln!(out, "# TYPE {name} {kind}");
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_names_counters_by_their_samples() {
        let om = "# HELP a_events Events.\n# TYPE a_events counter\na_events_total{map=\"e\"} 3\n\
                  # HELP runner The version.\n# TYPE runner info\nrunner_info{version=\"1\"} 1\n\
                  # HELP h_usecs Lat.\n# TYPE h_usecs histogram\n# UNIT h_usecs usecs\nh_usecs_count 0\n# EOF\n";
        assert_eq!(
            to_text_format(om),
            "# HELP a_events_total Events.\n# TYPE a_events_total counter\na_events_total{map=\"e\"} 3\n\
             # HELP runner_info The version.\n# TYPE runner_info gauge\nrunner_info{version=\"1\"} 1\n\
             # HELP h_usecs Lat.\n# TYPE h_usecs histogram\nh_usecs_count 0\n"
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(escape_help("a\"b\\c\nd"), "a\"b\\\\c\\nd");
    }

    #[test]
    fn series_are_capped() {
        let mut series = Series {
            labels: Vec::new(),
            counts: BTreeMap::new(),
            max: 2,
            dropped: 0,
        };
        series.add(vec![1], 5);
        series.add(vec![2], 1);
        series.add(vec![3], 4);
        series.add(vec![1], 1);
        assert_eq!(
            series.counts.into_iter().collect::<Vec<_>>(),
            [(vec![1], 6), (vec![2], 1)]
        );
        assert_eq!(series.dropped, 4);
    }
}

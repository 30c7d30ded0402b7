//! What `--metrics` serves for a package, and under which names: the catalogue `runner
//! info` lists and the exporter fills. Pure: derived from the package and the views shown.
//!
//! - The runner's own, labelled `package` (and `map` or `metric`): `runner_info`,
//!   `runner_events_total`, `runner_events_lost_total`, `runner_ring_full_total` (rings
//!   without a lost-event counter), `runner_metric_dropped_total` (events a counter's
//!   `max_series` kept out).
//! - The package's counters of events: `<package>_<name>_total`, labelled by the members
//!   they declare.
//! - Each map view: a table's numeric value (or each numeric member of it) as the gauge
//!   `<package>_<map>` (`<package>_<map>_<member>`), labelled by the key's members (`key`
//!   for a key that is no struct) and the value's text members; a histogram view as the
//!   histogram `<package>_<map>[_<unit>]` with `le` buckets, its other numeric members as
//!   gauges beside it.
//!
//! A gauge whose name would end in `_total`, `_count`, `_sum`, `_bucket`, `_info` or
//! `_created` (the samples of other types) gets `_value` after it.
//!
//! Names are sanitised to `[a-zA-Z0-9_]` (anything else becomes `_`; a leading digit gets
//! one in front). A name that would repeat one already served is left out, with a note.

use crate::spec::mapview::{self, Slots};
use crate::spec::package::{Channel, Map, Package, View};
use crate::spec::plan::{Node, Plan};

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Counter,
    Gauge,
    Histogram,
    Info,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
            Kind::Info => "info",
        }
    }

    /// The suffixes of the samples a family of this kind writes after its name.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            Kind::Counter => &["_total"],
            Kind::Gauge => &[""],
            Kind::Histogram => &["_bucket", "_count", "_sum"],
            Kind::Info => &["_info"],
        }
    }
}

/// One metric family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Family {
    /// The name without the suffixes of its samples (nor its unit).
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub labels: Vec<String>,
    /// What a histogram counts (`usecs`), appended to its name.
    pub unit: Option<String>,
}

impl Family {
    /// The name served: with its unit, and `_total` for a counter (`sigsnoop_signals_total`).
    pub fn served(&self) -> String {
        let base = self.base();
        match self.kind {
            Kind::Counter => format!("{base}_total"),
            Kind::Info => format!("{base}_info"),
            _ => base,
        }
    }

    /// The name with its unit: what the samples' suffixes follow.
    fn base(&self) -> String {
        match &self.unit {
            Some(unit) => format!("{}_{unit}", self.name),
            None => self.name.clone(),
        }
    }

    /// Every sample name it writes.
    fn samples(&self) -> Vec<String> {
        let base = self.base();
        self.kind
            .suffixes()
            .iter()
            .map(|s| format!("{base}{s}"))
            .collect()
    }
}

/// `a-b.c` → `a_b_c`: a metric or label name.
pub(crate) fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The suffixes Prometheus and OpenMetrics give the samples of counters, histograms,
/// summaries and info metrics.
const RESERVED_SUFFIXES: [&str; 6] = ["_total", "_count", "_sum", "_bucket", "_info", "_created"];

/// A gauge's name that ends like the samples of another type (`hists_counts_total`, a
/// member `total`) gets `_value` after it, so no reader takes it for one of them and it
/// cannot clash with the `_count` of a histogram beside it.
fn gauge_name(name: &str) -> String {
    if RESERVED_SUFFIXES.iter().any(|s| name.ends_with(s)) {
        format!("{name}_value")
    } else {
        name.to_string()
    }
}

/// What a member of a map's value becomes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Role {
    /// A number: the gauge of this family (an index into the view's families).
    Gauge(usize),
    /// Text, an enum or bytes: a label of every series of the row.
    Label(String),
    /// The histogram's slots.
    Slots,
    /// Not served (an array, a nested struct, a pointer).
    Skip,
}

/// How one map view is served.
#[derive(Debug, Clone)]
pub(crate) struct ViewLayout {
    pub map: String,
    pub families: Vec<Family>,
    /// The labels of the key's members (`key` for a key that is no struct).
    pub key_labels: Vec<String>,
    /// The value's top-level members (or the value itself, as one), each with its role.
    pub value: Vec<(String, Role)>,
    /// The histogram family, for a histogram view.
    pub hist: Option<usize>,
}

fn is_number(node: &Node) -> bool {
    match node {
        Node::Int { .. } | Node::Bool { .. } | Node::Float { .. } => true,
        Node::Bits { names, .. } => names.is_empty(),
        _ => false,
    }
}

fn is_label(node: &Node) -> bool {
    matches!(
        node,
        Node::Text { .. } | Node::Enum { .. } | Node::Bytes { .. } | Node::Bits { .. }
    )
}

/// The top-level members of a map's key or value, or the whole as one called `whole`;
/// and whether it is a struct.
fn fields(ty: Option<&crate::spec::types::Type>, whole: &str) -> (Vec<(String, Node)>, bool) {
    let Some(plan) = ty.and_then(|t| Plan::compile(t).ok()) else {
        return (Vec::new(), false);
    };
    match plan.root {
        Node::Record { fields } => (fields, true),
        root => (vec![(whole.to_string(), root)], false),
    }
}

/// A label name not yet taken: `name`, else `<prefix>_<name>`.
fn label_name(name: &str, prefix: &str, taken: &[String], histogram: bool) -> String {
    let name = sanitize(name);
    let reserved = name.starts_with("__") || (histogram && name == "le");
    if reserved || taken.contains(&name) {
        format!("{prefix}_{name}")
    } else {
        name
    }
}

/// How `map`, shown as `view`, is served for package `package`.
pub(crate) fn view_layout(package: &str, map: &Map, view: View) -> ViewLayout {
    let base = format!("{}_{}", sanitize(package), sanitize(&map.name));
    let slots = match view {
        View::Table => None,
        _ => mapview::slots(map),
    };
    let histogram = slots.is_some();
    let mut key_labels: Vec<String> = Vec::new();
    if slots != Some(Slots::Key) {
        for (name, _) in fields(map.key.as_ref(), "key").0 {
            let label = label_name(&name, "key", &key_labels, histogram);
            key_labels.push(label);
        }
    }
    let mut families = Vec::new();
    let hist = histogram.then(|| {
        families.push(Family {
            name: base.clone(),
            kind: Kind::Histogram,
            help: format!("Map `{}` ({} view)", map.name, view.name()),
            labels: Vec::new(),
            unit: map.unit.as_deref().map(sanitize),
        });
        0
    });
    let mut value = Vec::new();
    let mut taken = key_labels.clone();
    let (whole, record) = match &slots {
        Some(Slots::Value | Slots::Key) => (Vec::new(), false),
        _ => fields(map.value.as_ref(), "value"),
    };
    let slot_member = match &slots {
        Some(Slots::Member(name)) => Some(name.as_str()),
        _ => None,
    };
    for (name, node) in whole {
        let role = if Some(name.as_str()) == slot_member {
            Role::Slots
        } else if is_number(&node) {
            let one = !record;
            families.push(Family {
                name: if one {
                    gauge_name(&base)
                } else {
                    gauge_name(&format!("{base}_{}", sanitize(&name)))
                },
                kind: Kind::Gauge,
                help: if one {
                    format!("Map `{}`: the value of each key", map.name)
                } else {
                    format!("Map `{}`: member `{name}` of each key's value", map.name)
                },
                labels: Vec::new(),
                unit: None,
            });
            Role::Gauge(families.len() - 1)
        } else if is_label(&node) {
            let label = label_name(&name, "value", &taken, histogram);
            taken.push(label.clone());
            Role::Label(label)
        } else {
            Role::Skip
        };
        value.push((name, role));
    }
    for family in &mut families {
        family.labels = taken.clone();
    }
    ViewLayout {
        map: map.name.clone(),
        families,
        key_labels,
        value,
        hist,
    }
}

/// Everything served for a package, in order, and what was left out.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// The runner's families, then the package's counters.
    pub families: Vec<Family>,
    /// Per channel (as `package.events`), whether it has `runner_ring_full_total`.
    pub ring_full: Vec<bool>,
    /// Per declared counter (in channel order), its family's index in `families`, or
    /// none when its name is taken.
    pub counters: Vec<Option<usize>>,
    pub views: Vec<ViewLayout>,
    /// What was left out and why, one line each.
    pub notes: Vec<String>,
}

fn runner_family(name: &str, kind: Kind, help: &str, labels: &[&str]) -> Family {
    Family {
        name: name.into(),
        kind,
        help: help.into(),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        unit: None,
    }
}

/// The catalogue of `pkg` with these views shown (indices into `pkg.maps`).
pub(crate) fn catalog(pkg: &Package, views: &[(usize, View)]) -> Catalog {
    let mut families = vec![
        runner_family(
            "runner",
            Kind::Info,
            "The runner's version and the package it runs",
            &["package", "version"],
        ),
        runner_family(
            "runner_events",
            Kind::Counter,
            "Events read from each event channel (map) of the package",
            &["package", "map"],
        ),
        runner_family(
            "runner_events_lost",
            Kind::Counter,
            "Events lost on each channel (buffer full), as the kernel or the program counts them",
            &["package", "map"],
        ),
    ];
    let ring_full: Vec<bool> = pkg
        .events
        .iter()
        .map(|e| e.channel == Channel::Ringbuf && e.lost_counter.is_none())
        .collect();
    if ring_full.contains(&true) {
        families.push(runner_family(
            "runner_ring_full",
            Kind::Counter,
            "Times a ring buffer without a lost-event counter was found full: events may have been lost",
            &["package", "map"],
        ));
    }
    let declared: Vec<_> = pkg.events.iter().flat_map(|e| &e.metrics).collect();
    if !declared.is_empty() {
        families.push(runner_family(
            "runner_metric_dropped",
            Kind::Counter,
            "Events a counter of the package did not count: their labels would have started a series beyond its max_series",
            &["package", "metric"],
        ));
    }
    let mut catalog = Catalog {
        families,
        ring_full,
        counters: Vec::new(),
        views: Vec::new(),
        notes: Vec::new(),
    };
    let mut served: Vec<String> = catalog.families.iter().flat_map(Family::samples).collect();
    for (event, metric) in pkg
        .events
        .iter()
        .flat_map(|e| e.metrics.iter().map(move |m| (e, m)))
    {
        let family = Family {
            name: format!("{}_{}", sanitize(&pkg.name), sanitize(&metric.name)),
            kind: Kind::Counter,
            help: if metric.help.is_empty() {
                format!("Events on map `{}`", event.map)
            } else {
                metric.help.clone()
            },
            labels: metric.labels.iter().map(|l| sanitize(l)).collect(),
            unit: None,
        };
        let kept = catalog.keep(family, &mut served, &format!("counter `{}`", metric.name));
        catalog.counters.push(kept);
    }
    for &(index, view) in views {
        let mut layout = view_layout(&pkg.name, &pkg.maps[index], view);
        let what = format!("map `{}`", layout.map);
        let mut kept_all = true;
        for family in &layout.families {
            kept_all &= !family.samples().iter().any(|s| served.contains(s));
        }
        if kept_all {
            served.extend(layout.families.iter().flat_map(Family::samples));
        } else {
            catalog.notes.push(format!(
                "{what} is not served: one of its metric names is taken"
            ));
            layout.families.clear();
        }
        catalog.views.push(layout);
    }
    catalog
}

impl Catalog {
    /// Add `family` unless a name it writes is taken; its index if added.
    fn keep(&mut self, family: Family, served: &mut Vec<String>, what: &str) -> Option<usize> {
        if let Some(taken) = family.samples().into_iter().find(|s| served.contains(s)) {
            self.notes
                .push(format!("{what} is not served: `{taken}` is taken"));
            return None;
        }
        served.extend(family.samples());
        self.families.push(family);
        Some(self.families.len() - 1)
    }

    /// Every family served, views' included, in order.
    pub fn all(&self) -> impl Iterator<Item = &Family> {
        self.families
            .iter()
            .chain(self.views.iter().flat_map(|v| &v.families))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize("sigsnoop"), "sigsnoop");
        assert_eq!(sanitize("my-tool.v2"), "my_tool_v2");
        assert_eq!(sanitize("2fast"), "_2fast");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("ünï"), "_n_");
    }

    #[test]
    fn gauges_never_end_like_other_types() {
        assert_eq!(gauge_name("p_counts_total"), "p_counts_total_value");
        assert_eq!(gauge_name("p_infos_count"), "p_infos_count_value");
        assert_eq!(gauge_name("p_counts_bytes"), "p_counts_bytes");
    }

    #[test]
    fn label_names_avoid_reserved_and_taken_ones() {
        let taken = vec!["pid".to_string()];
        assert_eq!(label_name("comm", "value", &taken, false), "comm");
        assert_eq!(label_name("pid", "value", &taken, false), "value_pid");
        assert_eq!(label_name("le", "key", &[], true), "key_le");
        assert_eq!(label_name("le", "key", &[], false), "le");
        assert_eq!(label_name("__x", "key", &[], false), "key___x");
    }

    #[test]
    fn samples_of_each_kind() {
        let family = |kind, unit: Option<&str>| Family {
            name: "p_m".into(),
            kind,
            help: String::new(),
            labels: Vec::new(),
            unit: unit.map(str::to_string),
        };
        assert_eq!(family(Kind::Counter, None).served(), "p_m_total");
        assert_eq!(
            family(Kind::Histogram, Some("usecs")).samples(),
            ["p_m_usecs_bucket", "p_m_usecs_count", "p_m_usecs_sum"]
        );
        assert_eq!(family(Kind::Info, None).served(), "p_m_info");
        assert_eq!(family(Kind::Gauge, None).served(), "p_m");
    }
}

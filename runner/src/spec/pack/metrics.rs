//! Counters of events for `runner run --metrics`: declared by a `runner:metric=` tag on an
//! event channel or by the sidecar's `metrics`, and checked here against the event struct.
//! A label is a top-level member of the struct that holds one value: a number, a bool, an
//! enum or a char array (text); the series a counter keeps are capped at `max_series`.

use std::collections::BTreeMap;

use super::error::PackError;
use crate::spec::package::{Event, EventMetric};
use crate::spec::plan::{Node, Plan};
use crate::spec::sidecar::MetricDecl;
use crate::spec::vocab::MetricTag;

/// Why `metric` cannot count the events of `event`, if it cannot.
pub(super) fn check(event: &Event, metric: &EventMetric) -> Result<(), String> {
    if !MetricTag::is_name(&metric.name) {
        return Err(format!(
            "`{}` is no metric name: letters, digits and `_`, not starting with a digit",
            metric.name
        ));
    }
    if !(1..=EventMetric::MAX_SERIES_LIMIT).contains(&metric.max_series) {
        return Err(format!(
            "max_series is from 1 to {}, not {}",
            EventMetric::MAX_SERIES_LIMIT,
            metric.max_series
        ));
    }
    let plan = Plan::record(&event.ty, event.channel.pads_records()).map_err(|e| e.to_string())?;
    let columns = plan.columns();
    for (i, label) in metric.labels.iter().enumerate() {
        if metric.labels[..i].contains(label) {
            return Err(format!("label `{label}` is given twice"));
        }
        if label.starts_with("__") {
            return Err(format!(
                "label `{label}`: names starting with `__` are Prometheus' own"
            ));
        }
        let Some((_, node)) = columns.iter().find(|(name, _)| name == label) else {
            let names: Vec<String> = columns.iter().map(|(n, _)| format!("`{n}`")).collect();
            return Err(format!(
                "struct {} has no member `{label}` (its members: {})",
                event.struct_name,
                names.join(", ")
            ));
        };
        if !labels_well(node.whole()) {
            return Err(format!(
                "member `{label}` of struct {} holds no single value (a number, bool, enum or char array), so it cannot label a series",
                event.struct_name
            ));
        }
    }
    Ok(())
}

/// Whether a member read by `node` can be a label: one value, within the fixed part.
fn labels_well(node: &Node) -> bool {
    matches!(
        node,
        Node::Int { .. }
            | Node::Bool { .. }
            | Node::Enum { .. }
            | Node::Bits { .. }
            | Node::Text { .. }
    )
}

/// The counters the `runner:metric=` tags of `map` declare on its events.
pub(super) fn from_tags<'a>(
    event: &Event,
    tags: impl Iterator<Item = &'a MetricTag>,
) -> Result<Vec<EventMetric>, PackError> {
    let mut out: Vec<EventMetric> = Vec::new();
    for tag in tags {
        let metric = EventMetric {
            name: tag.name.clone(),
            labels: tag.labels.clone(),
            max_series: tag.max_series.unwrap_or(EventMetric::DEFAULT_MAX_SERIES),
            help: String::new(),
        };
        let error = |what: String| PackError::BadMetric {
            map: event.map.clone(),
            name: tag.name.clone(),
            what,
        };
        if out.iter().any(|m| m.name == metric.name) {
            return Err(error("declared twice".into()));
        }
        check(event, &metric).map_err(error)?;
        out.push(metric);
    }
    Ok(out)
}

/// Apply the sidecar's `metrics` to `events`: each counts the events of the map it names
/// (or of the one channel), replacing a tag's counter of the same name.
pub(super) fn declare(
    events: &mut [Event],
    decls: &BTreeMap<String, MetricDecl>,
) -> Result<(), PackError> {
    for (name, decl) in decls {
        let at = format!("metrics.{name}");
        let error = |at: String, what: String| PackError::Declaration { at, what };
        let index = match (&decl.map, events.len()) {
            (Some(map), _) => events.iter().position(|e| &e.map == map).ok_or_else(|| {
                let names: Vec<String> = events.iter().map(|e| format!("`{}`", e.map)).collect();
                error(
                    format!("{at}.map"),
                    format!(
                        "no event channel `{map}` (channels: {})",
                        if names.is_empty() {
                            "none".into()
                        } else {
                            names.join(", ")
                        }
                    ),
                )
            })?,
            (None, 1) => 0,
            (None, 0) => return Err(error(at, "the object has no event channel".into())),
            (None, _) => {
                return Err(error(
                    at,
                    "the object has several event channels: say which with `map`".into(),
                ))
            }
        };
        let metric = EventMetric {
            name: name.clone(),
            labels: decl.labels.clone(),
            max_series: decl.max_series.unwrap_or(EventMetric::DEFAULT_MAX_SERIES),
            help: decl.help.clone().unwrap_or_default(),
        };
        check(&events[index], &metric).map_err(|what| error(at.clone(), what))?;
        for event in events.iter_mut() {
            event.metrics.retain(|m| &m.name != name);
        }
        events[index].metrics.push(metric);
    }
    Ok(())
}

/// No two channels declare counters of one name.
pub(super) fn unique(events: &[Event]) -> Result<(), PackError> {
    let mut seen: Vec<&str> = Vec::new();
    for event in events {
        for metric in &event.metrics {
            if seen.contains(&metric.name.as_str()) {
                return Err(PackError::BadMetric {
                    map: event.map.clone(),
                    name: metric.name.clone(),
                    what: "another channel has a counter of this name".into(),
                });
            }
            seen.push(&metric.name);
        }
    }
    Ok(())
}

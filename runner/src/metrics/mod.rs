//! `runner run --metrics ADDR`: Prometheus metrics of a run, served at `/metrics`.
//!
//! ```text
//!  event loop (run::stream)                         HTTP thread (http)
//!   record ─▶ EventTap::record (label bytes)          GET /metrics
//!   batch  ─▶ EventTap::publish ─┐                        │
//!   loss check ─▶ EventTap::losses ─▶ Shared (state) ◀────┘ encode: prometheus-client
//!   every second and at --interval:                       (OpenMetrics, or text 0.0.4)
//!   map view ─▶ ViewWriter ─▶ ViewOutput ─┘
//! ```
//!
//! What is served and under which names is the catalogue ([`names`]), which `runner
//! info` lists too. Nothing here runs without `--metrics`: the loop's hooks are `None`.

mod counter;
mod http;
mod names;
mod state;
mod view;

use std::net::SocketAddr;
use std::sync::Arc;

pub(crate) use counter::EventTap;
pub(crate) use names::{catalog, Kind};

use crate::output::{ViewWriter, ViewWriterError};
use crate::spec::package::{Map, Package, View};
use crate::spec::plan::{Plan, Shows};

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot serve metrics on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// The metrics of one run: the shared state, the endpoint serving it, and how the event
/// loop and the map views feed it.
pub(crate) struct Exporter {
    shared: Arc<Shared>,
    server: http::Server,
    /// Per channel: its counters' series and where their labels are.
    taps: Vec<Vec<(usize, Vec<counter::Part>)>>,
}

use state::Shared;

impl Exporter {
    /// Listen on `addr` and serve what `pkg` has, with `views` (indices into its maps)
    /// shown.
    pub fn start(
        addr: SocketAddr,
        pkg: &Package,
        views: &[(usize, View)],
    ) -> Result<Exporter, MetricsError> {
        let catalog = catalog(pkg, views);
        let mut kept = catalog.counters.iter();
        let mut series = Vec::new();
        let mut counter_names = Vec::new();
        let mut taps = Vec::new();
        for event in &pkg.events {
            let plan = Plan::record(&event.ty, event.channel.pads_records()).ok();
            let mut tap = Vec::new();
            for metric in &event.metrics {
                let (Some(Some(family)), Some(plan)) = (kept.next(), &plan) else {
                    continue;
                };
                if let Some((one, parts)) = counter::series(plan, metric) {
                    tap.push((series.len(), parts));
                    series.push(one);
                    counter_names.push((metric.name.clone(), *family));
                }
            }
            taps.push(tap);
        }
        let maps = pkg.events.iter().map(|e| e.map.clone()).collect();
        let shared = Arc::new(Shared::new(catalog, &pkg.name, maps, counter_names, series));
        let server = http::Server::start(addr, shared.clone())
            .map_err(|source| MetricsError::Listen { addr, source })?;
        Ok(Exporter {
            shared,
            server,
            taps,
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> Option<SocketAddr> {
        self.server.local_addr().ok()
    }

    /// What was left out of the catalogue, one line each.
    pub fn notes(&self) -> &[String] {
        &self.shared.catalog.notes
    }

    /// What the event loop calls for channel `index` (of the package's events).
    pub fn tap(&self, index: usize) -> EventTap {
        let counters = self.taps.get(index).cloned().unwrap_or_default();
        EventTap::new(self.shared.clone(), index, counters)
    }

    /// A writer of `map` as `view` whose output is the view's metrics, if the view is
    /// served.
    pub fn view(&self, map: &Map, view: View) -> Option<Result<ViewWriter, ViewWriterError>> {
        let index = self
            .shared
            .catalog
            .views
            .iter()
            .position(|v| v.map == map.name && !v.families.is_empty())?;
        let output = view::ViewOutput {
            shared: self.shared.clone(),
            index,
        };
        Some(ViewWriter::through(
            Box::new(output),
            map,
            view,
            Shows::default(),
        ))
    }
}

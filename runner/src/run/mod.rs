//! `runner run`: a package goes through typed phases, each owning what the next needs, so
//! no step can be skipped or done twice:
//!
//! ```text
//!  Verified (spec::verify)  read, checksum verified, matched against the object's BTF
//!  + Invocation             the command line: format, flag values, switches, map sizes,
//!                           programs its conditions and --no-program allow
//!  + Selection (choose)     of each group the best program this kernel supports, optional
//!                           programs whose hook is here (probe.rs)
//!  → Configured             opened from memory, globals written, maps sized, programs
//!                           enabled or not
//!  → Loaded                 in the kernel; event channels and map views opened
//!  → Attached               programs attached; dropping it detaches them
//!  → stream                 events and map views printed until stopped; then detached,
//!                           drained, unloaded
//! ```
//!
//! A program that fails to load or attach and may be left out (optional, or with an
//! alternative left) is: the selection decides again and the object is opened anew.
//! CO-RE relocations read a cached subset of the kernel's BTF when there is one
//! ([`kernel_btf`]); a load that fails with it is tried again without it.

mod attach;
mod choices;
mod choose;
mod configure;
mod error;
mod fleet;
mod invocation;
pub(crate) mod kernel_btf;
mod load;
mod poll;
mod priority;
mod signals;
mod stdout;
mod stream;
mod views;

use std::ffi::{OsStr, OsString};

use crate::kernel;
use crate::metrics::Exporter;
use crate::oci::{self, PullOptions};
use crate::probe::{self, Hooks};
use crate::spec::verify::Verified;
use attach::Attached;
use choose::Selection;
use configure::Configured;
use error::RunError;
use invocation::Invocation;
use load::Loaded;

/// `runner run [REGISTRY OPTIONS] <PACKAGE> [OPTIONS]`: the package is a file or an image
/// reference, verified per the trust policy before anything loads.
pub fn main(package: &OsStr, args: &[OsString], pull: &PullOptions) -> anyhow::Result<()> {
    // Keep libbpf quiet until we know whether --verbose was asked for.
    kernel::capture_libbpf_log(false);
    let resolved = oci::open_package(package, pull)?;
    let package = Verified::from_bytes(&resolved.bytes, &resolved.display)?;
    for warning in package.warnings() {
        crate::note!("runner: warning: {warning}");
    }
    let run = invocation::Invocation::parse(&package, args)?;
    kernel::capture_libbpf_log(run.verbose);
    kernel::check_privileges()?;
    let exporter = serve_metrics(&package, &run)?;
    let attached = start(package, run, &probe::Kernel)?;
    let stats = stream::stream(attached, exporter.as_ref())?;
    crate::note!("runner: {}", stats.summary());
    Ok(())
}

/// With `--metrics ADDR`: listen there now, serving what the package and its views have.
fn serve_metrics(package: &Verified, run: &Invocation) -> anyhow::Result<Option<Exporter>> {
    let Some(addr) = run.metrics else {
        return Ok(None);
    };
    let pkg = package.package();
    let views = crate::spec::mapview::chosen(&pkg.maps, !pkg.events.is_empty(), &run.views);
    let exporter = Exporter::start(addr, pkg, &views)?;
    for note in exporter.notes() {
        crate::note!("runner: metrics: {note}");
    }
    let at = exporter.addr().unwrap_or(addr);
    crate::note!("runner: serving metrics at http://{at}/metrics");
    Ok(Some(exporter))
}

/// Choose the programs this kernel can run, then configure, load and attach; a program
/// that fails and may be left out (optional, or with an alternative) is, and the object
/// is loaded again without it.
fn start(package: Verified, mut run: Invocation, hooks: &dyn Hooks) -> anyhow::Result<Attached> {
    let mut selection = Selection::new(run.enabled.clone());
    let notes = selection
        .choose(package.package(), hooks)
        .map_err(anyhow::Error::msg)?;
    for note in notes {
        crate::note!("runner: {note}");
    }
    let mut cached = kernel_btf::cached(&package);
    loop {
        let subset = match &cached {
            kernel_btf::Cached::Subset(subset) => Some(subset),
            _ => None,
        };
        run.enabled = selection.enabled().to_vec();
        let attempt = Configured::new(package.clone(), run.clone(), subset)
            .and_then(Loaded::new)
            .and_then(Attached::new);
        let error = match attempt {
            Ok(attached) => {
                match subset {
                    Some(s) if run.verbose => crate::note!(
                        "runner: CO-RE relocations read the cached subset of the kernel BTF ({} bytes)",
                        s.len()
                    ),
                    _ if matches!(cached, kernel_btf::Cached::Missing) => {
                        kernel_btf::remember(&package)
                    }
                    _ => {}
                }
                return Ok(attached);
            }
            Err(error) => error,
        };
        if subset.is_some() && kernel_btf::may_have_caused(&error) {
            cached = kernel_btf::Cached::NoSubset;
            kernel_btf::forget(&package);
            crate::note!(
                "runner: loading with the cached subset of the kernel BTF failed ({error:#}); \
                 trying with the full kernel BTF"
            );
            continue;
        }
        let Some(program) = error
            .downcast_ref::<RunError>()
            .and_then(RunError::program)
            .map(str::to_string)
        else {
            return Err(error);
        };
        let text = match error.downcast_ref::<RunError>() {
            Some(RunError::Verifier { log, .. }) => {
                // The reason is the last line before the verifier's statistics.
                let reason = log
                    .lines()
                    .rev()
                    .find(|l| !(l.starts_with("processed ") || l.starts_with("verification time")));
                format!("the verifier rejected it: {}", reason.unwrap_or_default())
            }
            _ => error.to_string(),
        };
        match selection.after_failure(package.package(), hooks, &program, &text) {
            None => return Err(error),
            Some(Err(why)) => return Err(error.context(why)),
            Some(Ok(notes)) => {
                for note in notes {
                    crate::note!("runner: {note}");
                }
            }
        }
    }
}

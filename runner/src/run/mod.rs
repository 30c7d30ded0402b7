//! `runner run`: a package goes through typed phases, each owning what the next needs, so
//! no step can be skipped or done twice:
//!
//! ```text
//!  Verified (spec::verify)  read, checksum verified, matched against the object's BTF
//!  + Invocation             the command line: format, flag values, enabled programs
//!  → Configured             opened from memory, globals written, programs enabled or not
//!  → Loaded                 in the kernel; event channels and map views opened
//!  → Attached               programs attached; dropping it detaches them
//!  → stream                 events and map views printed until stopped; then detached,
//!                           drained, unloaded
//! ```

mod attach;
mod configure;
mod error;
mod invocation;
mod load;
mod poll;
mod signals;
mod stdout;
mod stream;
mod views;

use std::ffi::OsString;
use std::path::Path;

use crate::kernel;
use crate::spec::verify::Verified;
use attach::Attached;
use configure::Configured;
use load::Loaded;

/// `runner run <PACKAGE> [OPTIONS]`.
pub fn main(path: &Path, args: &[OsString]) -> anyhow::Result<()> {
    // Keep libbpf quiet until we know whether --verbose was asked for.
    kernel::capture_libbpf_log(false);
    let package = Verified::read(path)?;
    for warning in package.warnings() {
        crate::note!("runner: warning: {warning}");
    }
    let run = invocation::Invocation::parse(&package, args)?;
    kernel::capture_libbpf_log(run.verbose);
    kernel::check_privileges()?;
    let configured = Configured::new(package, run)?;
    let loaded = Loaded::new(configured)?;
    let attached = Attached::new(loaded)?;
    let stats = stream::stream(attached)?;
    crate::note!("runner: {}", stats.summary());
    Ok(())
}

//! The packer: a BPF object (plus, when there is one, its C source) in, a [`Package`] out.
//! It reads the ELF with `object` and the BTF through [`ObjectBtf`], never needs root, and
//! gives the same package for the same inputs, byte for byte.
//!
//! Each part of the description has its own file: [`globals`], [`events`], [`maps`],
//! [`programs`]; [`annotations`] reads the `runner:` tags they all consult; [`declare`]
//! applies a sidecar's declarations and [`alternatives`] groups programs of which one
//! loads.

mod alternatives;
mod annotations;
mod declare;
mod description;
mod error;
mod events;
mod globals;
mod maps;
mod metrics;
mod programs;
mod shown;

use crate::spec::btf::ObjectBtf;
use crate::spec::elf::ElfInfo;
use crate::spec::package::{Embedded, Package, FORMAT_VERSION};
use crate::spec::sidecar::Sidecar;
use crate::spec::source;

pub use description::Description;
pub use error::PackError;

/// What the packer is told besides the object.
#[derive(Debug, Default, Clone)]
pub struct PackOptions {
    pub name: String,
    /// The C source, for comments (help of globals, description).
    pub source: Option<String>,
    pub description: Option<String>,
    /// `map=struct` overrides of the event struct lookup.
    pub events: Vec<(String, String)>,
    /// The sidecar's declarations, read but not yet checked against the object.
    pub sidecar: Option<Sidecar>,
}

/// Describe `object`; `source` (the C text) only adds the help of globals. `declarations`
/// (a sidecar) are checked against the object and applied; `events` (`--event`) win over
/// the event choices they make.
pub fn describe(
    object: &[u8],
    source: Option<&str>,
    events: &[(String, String)],
    declarations: Option<&Sidecar>,
) -> Result<Description, PackError> {
    let elf = ElfInfo::parse(object)?;
    let btf = ObjectBtf::parse(&elf.btf)?;
    let tags = annotations::Annotations::collect(&btf)?;
    let maps = maps::maps(&btf, &tags)?;
    let globals = globals::globals(&elf, &btf, &tags, source)?;
    let mut choices: Vec<(String, String)> = declarations
        .map(|d| d.events.clone().into_iter().collect())
        .unwrap_or_default();
    choices.retain(|(map, _)| !events.iter().any(|(m, _)| m == map));
    choices.extend(events.iter().cloned());
    let events = events::events(&btf, &tags, &maps, &globals, &choices)?;
    let programs = programs::programs(&elf, &btf, &tags, &globals)?;
    let mut d = Description {
        license: elf.license.clone().unwrap_or_default(),
        globals,
        events,
        maps: maps.into_iter().map(|(_, m)| m).collect(),
        programs,
        switches: Vec::new(),
        groups: Vec::new(),
    };
    if let Some(declarations) = declarations {
        declare::apply(&mut d, declarations)?;
    }
    metrics::unique(&d.events)?;
    let declared = declarations.map_or(&[][..], |s| &s.programs.groups[..]);
    d.groups = alternatives::groups(&d.programs, declared);
    Ok(d)
}

/// The event channels (ring buffers, perf event arrays) of `object`, by map name.
pub fn channel_maps(object: &[u8]) -> Result<Vec<String>, PackError> {
    let elf = ElfInfo::parse(object)?;
    let btf = ObjectBtf::parse(&elf.btf)?;
    let tags = annotations::Annotations::collect(&btf)?;
    Ok(maps::maps(&btf, &tags)?
        .into_iter()
        .filter(|(_, m)| m.kind.channel().is_some())
        .map(|(_, m)| m.name)
        .collect())
}

/// Describe `object` completely, as a package.
pub fn pack(object: &[u8], opts: &PackOptions) -> Result<Package, PackError> {
    let sidecar = opts.sidecar.as_ref().filter(|s| !s.is_empty());
    let d = describe(object, opts.source.as_deref(), &opts.events, sidecar)?;
    let description = opts
        .description
        .clone()
        .or_else(|| sidecar.and_then(|s| s.description.clone()))
        .or_else(|| opts.source.as_deref().and_then(source::description))
        .map(|d| match d.strip_prefix(&format!("{}:", opts.name)) {
            Some(rest) => rest.trim_start().to_string(),
            None => d,
        })
        .unwrap_or_default();
    Ok(Package {
        format_version: FORMAT_VERSION,
        requires: d.requires(),
        name: opts.name.clone(),
        description,
        license: d.license,
        globals: d.globals,
        switches: d.switches,
        events: d.events,
        maps: d.maps,
        programs: d.programs,
        groups: d.groups,
        declarations: sidecar.map(|s| serde_json::to_value(s).expect("a sidecar serializes")),
        object: Embedded::new(object),
    })
}

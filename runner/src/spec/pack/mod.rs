//! The packer: a BPF object (plus, when there is one, its C source) in, a [`Package`] out.
//! It reads the ELF with `object` and the BTF through [`ObjectBtf`], never needs root, and
//! gives the same package for the same inputs, byte for byte.
//!
//! Each part of the description has its own file: [`globals`], [`events`], [`maps`],
//! [`programs`]; [`annotations`] reads the `runner:` tags they all consult.

mod annotations;
mod error;
mod events;
mod globals;
mod maps;
mod programs;

use crate::spec::btf::ObjectBtf;
use crate::spec::elf::ElfInfo;
use crate::spec::package::{Embedded, Event, Global, Map, Package, Program, FORMAT_VERSION};
use crate::spec::source;

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
}

/// What the object itself says about its globals, events, maps and programs. The runner
/// recomputes this from the embedded object to check a package before trusting it.
#[derive(Debug, Clone, PartialEq)]
pub struct Description {
    pub license: String,
    pub globals: Vec<Global>,
    pub events: Vec<Event>,
    pub maps: Vec<Map>,
    pub programs: Vec<Program>,
}

/// Describe `object`; `source` (the C text) only adds the help of globals.
pub fn describe(
    object: &[u8],
    source: Option<&str>,
    events: &[(String, String)],
) -> Result<Description, PackError> {
    let elf = ElfInfo::parse(object)?;
    let btf = ObjectBtf::parse(&elf.btf)?;
    let tags = annotations::Annotations::collect(&btf)?;
    let maps = maps::maps(&btf, &tags)?;
    let globals = globals::globals(&elf, &btf, &tags, source)?;
    let events = events::events(&btf, &tags, &maps, &globals, events)?;
    let programs = programs::programs(&elf, &btf, &tags, &globals)?;
    Ok(Description {
        license: elf.license.clone().unwrap_or_default(),
        globals,
        events,
        maps: maps.into_iter().map(|(_, m)| m).collect(),
        programs,
    })
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
    let d = describe(object, opts.source.as_deref(), &opts.events)?;
    let description = opts
        .description
        .clone()
        .or_else(|| opts.source.as_deref().and_then(source::description))
        .map(|d| match d.strip_prefix(&format!("{}:", opts.name)) {
            Some(rest) => rest.trim_start().to_string(),
            None => d,
        })
        .unwrap_or_default();
    Ok(Package {
        format_version: FORMAT_VERSION,
        requires: Vec::new(),
        name: opts.name.clone(),
        description,
        license: d.license,
        globals: d.globals,
        events: d.events,
        maps: d.maps,
        programs: d.programs,
        object: Embedded::new(object),
    })
}

//! Phase 1 of `runner run` (and what `runner info` shows): a package read from disk (ours,
//! or one eunomia-bpf wrote), whose embedded object is intact, described again from the
//! object itself.
//!
//! The package's description is a manifest. The runner runs from what it derives from the
//! object (with the package's choices of event structs), so a package written by another
//! runner version keeps working. Where the manifest disagrees on what matters for safety
//! (the globals' sections, offsets and sizes; the layout of each event) the package is
//! refused; where it disagrees on presentation (help, C spellings, which globals get a
//! flag, defaults, maps, programs) the runner warns and goes on with what it derived. Only
//! what the object cannot say (the name, the description, the help of globals) is taken
//! from the manifest.

use std::path::{Path, PathBuf};

use crate::spec::eunomia;
use crate::spec::pack::{self, Description};
use crate::spec::package::{Global, Package};

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error("package `{path}`: the embedded object does not match the package's description ({what}); rebuild the package")]
    Mismatch { path: PathBuf, what: String },
    #[error("package `{path}`: the embedded object is not usable")]
    BadObject {
        path: PathBuf,
        #[source]
        source: pack::PackError,
    },
}

/// A package whose object is intact, described as the object says.
pub struct Verified {
    path: PathBuf,
    pkg: Package,
    object: Vec<u8>,
    warnings: Vec<String>,
}

impl Verified {
    /// Read `path`, check the object's size and checksum, describe the object again from
    /// its own BTF and hold the package's description against that.
    pub fn read(path: &Path) -> anyhow::Result<Verified> {
        let text = Package::read_bytes(path)?;
        let (manifest, object) = match eunomia::read(&text, path) {
            Some(eunomia) => eunomia?,
            None => Package::from_slice(&text, path)?,
        };
        Ok(Self::check(path, manifest, object)?)
    }

    fn check(path: &Path, manifest: Package, object: Vec<u8>) -> Result<Verified, VerifyError> {
        let overrides: Vec<(String, String)> = manifest
            .events
            .iter()
            .map(|e| (e.map.clone(), e.struct_name.clone()))
            .collect();
        let desc =
            pack::describe(&object, None, &overrides).map_err(|source| VerifyError::BadObject {
                path: path.into(),
                source,
            })?;
        if let Some(what) = unsafe_difference(&manifest, &desc) {
            return Err(VerifyError::Mismatch {
                path: path.into(),
                what,
            });
        }
        let warnings = presentation_differences(&manifest, &desc)
            .into_iter()
            .map(|what| {
                format!(
                    "package `{}`: {what} differs from what the object says; using the object's",
                    path.display()
                )
            })
            .collect();
        let globals = desc
            .globals
            .into_iter()
            .map(|g| Global {
                help: help_of(&manifest, &g.name),
                ..g
            })
            .collect();
        let pkg = Package {
            license: desc.license,
            globals,
            events: desc.events,
            maps: desc.maps,
            programs: desc.programs,
            ..manifest
        };
        Ok(Verified {
            path: path.into(),
            pkg,
            object,
            warnings,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The package as this runner runs it.
    pub fn package(&self) -> &Package {
        &self.pkg
    }

    /// The BPF ELF object.
    pub fn object(&self) -> &[u8] {
        &self.object
    }

    /// Where the manifest disagrees with the object on presentation, one line each.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

fn help_of(manifest: &Package, global: &str) -> String {
    manifest
        .globals
        .iter()
        .find(|g| g.name == global)
        .map(|g| g.help.clone())
        .unwrap_or_default()
}

/// The first difference that would make the runner write or read the wrong bytes: a
/// global placed elsewhere, or an event laid out differently.
fn unsafe_difference(manifest: &Package, desc: &Description) -> Option<String> {
    let place = |g: &Global| (g.name.clone(), g.section.clone(), g.offset, g.size);
    for derived in &desc.globals {
        match manifest.globals.iter().find(|g| g.name == derived.name) {
            Some(g) if place(g) == place(derived) => {}
            _ => return Some(format!("global `{}`", derived.name)),
        }
    }
    if let Some(extra) = manifest
        .globals
        .iter()
        .find(|g| !desc.globals.iter().any(|d| d.name == g.name))
    {
        return Some(format!("global `{}`", extra.name));
    }
    let same_event = |a: &crate::spec::package::Event, b: &crate::spec::package::Event| {
        a.map == b.map && a.channel == b.channel && a.ty.same_layout(&b.ty)
    };
    if manifest.events.len() != desc.events.len()
        || !manifest
            .events
            .iter()
            .zip(&desc.events)
            .all(|(a, b)| same_event(a, b))
    {
        return Some("event layout".into());
    }
    None
}

/// What differs but changes only how things are shown or offered, by name.
fn presentation_differences(manifest: &Package, desc: &Description) -> Vec<String> {
    let mut out = Vec::new();
    for derived in &desc.globals {
        let Some(g) = manifest.globals.iter().find(|g| g.name == derived.name) else {
            continue;
        };
        if g.ty != derived.ty {
            out.push(format!("the type of global `{}`", g.name));
        }
        if g.flag != derived.flag {
            out.push(format!("the flag of global `{}`", g.name));
        }
        if g.default != derived.default {
            out.push(format!("the default of global `{}`", g.name));
        }
    }
    if manifest.events != desc.events {
        out.push("the spelling of the event types".into());
    }
    if manifest.maps != desc.maps {
        out.push("the list of maps".into());
    }
    if manifest.programs != desc.programs {
        out.push("the list of programs".into());
    }
    if manifest.license != desc.license {
        out.push("the license".into());
    }
    out
}

//! Packages written by eunomia-bpf's compiler (`ecc`), read as if they were ours. Such a
//! package has no `format_version`; it holds the BPF object as base64 of its zlib stream
//! (`bpf_object`, `bpf_object_size`) and a `meta` block naming the struct each event channel
//! carries (`export_types`) and documenting globals (`cmdarg.help`, `description`).
//!
//! The object is unpacked (with the declared size as the cap) and packed the way
//! `runner pack` packs any object, with eunomia's choice of event struct and its help texts;
//! from there on it is a package like any other, checked and run from what its object says.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::Deserialize;

use crate::spec::pack::{self, PackError, PackOptions};
use crate::spec::package::Package;

/// The largest object this reader unpacks.
const MAX_OBJECT: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum EunomiaError {
    #[error("eunomia package `{path}` is malformed: {cause}")]
    Structure {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("eunomia package `{path}`: bpf_object is not valid base64 ({reason})")]
    Base64 { path: PathBuf, reason: String },
    #[error("eunomia package `{path}`: bpf_object_size {size} is more than this runner unpacks ({MAX_OBJECT} bytes)")]
    TooLarge { path: PathBuf, size: u64 },
    #[error(
        "eunomia package `{path}`: bpf_object is not a zlib stream of {size} bytes ({reason})"
    )]
    Inflate {
        path: PathBuf,
        size: u64,
        reason: String,
    },
    #[error("eunomia package `{path}`: cannot pack its object")]
    Pack {
        path: PathBuf,
        #[source]
        source: PackError,
    },
}

/// Just enough to tell an eunomia package from ours.
#[derive(Deserialize)]
struct Probe {
    format_version: Option<serde::de::IgnoredAny>,
    bpf_object: Option<serde::de::IgnoredAny>,
    meta: Option<serde::de::IgnoredAny>,
}

#[derive(Deserialize)]
struct Eunomia {
    bpf_object: String,
    bpf_object_size: u64,
    meta: Meta,
}

#[derive(Deserialize)]
struct Meta {
    bpf_skel: Skel,
    #[serde(default)]
    export_types: Vec<ExportType>,
}

#[derive(Deserialize)]
struct Skel {
    obj_name: String,
    #[serde(default)]
    doc: Option<Doc>,
    #[serde(default)]
    data_sections: Vec<DataSection>,
}

#[derive(Deserialize)]
struct Doc {
    #[serde(default)]
    brief: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

#[derive(Deserialize)]
struct DataSection {
    #[serde(default)]
    variables: Vec<Variable>,
}

#[derive(Deserialize)]
struct Variable {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    cmdarg: Option<CmdArg>,
}

#[derive(Deserialize)]
struct CmdArg {
    #[serde(default)]
    help: Option<String>,
}

#[derive(Deserialize)]
struct ExportType {
    name: String,
}

/// `text` as a package with its object, when it is an eunomia package; `None` when it is
/// not one (it may be ours, or not a package at all: the caller says which).
pub fn read(text: &[u8], path: &Path) -> Option<Result<(Package, Vec<u8>), EunomiaError>> {
    let probe: Probe = serde_json::from_slice(text).ok()?;
    if probe.format_version.is_some() || probe.bpf_object.is_none() || probe.meta.is_none() {
        return None;
    }
    Some(import(text, path))
}

fn import(text: &[u8], path: &Path) -> Result<(Package, Vec<u8>), EunomiaError> {
    let e: Eunomia = serde_json::from_slice(text).map_err(|cause| EunomiaError::Structure {
        path: path.into(),
        cause,
    })?;
    let object = unpack(&e, path)?;
    let pack_err = |source| EunomiaError::Pack {
        path: path.into(),
        source,
    };
    let channels = pack::channel_maps(&object).map_err(pack_err)?;
    // export_types names the struct of each channel, in order; one type serves them all.
    let events = channels
        .iter()
        .enumerate()
        .filter_map(|(i, map)| {
            let ty = e.meta.export_types.get(i).or(e.meta.export_types.first())?;
            Some((map.clone(), ty.name.clone()))
        })
        .collect();
    let skel = &e.meta.bpf_skel;
    let doc = skel.doc.as_ref();
    let opts = PackOptions {
        name: skel
            .obj_name
            .strip_suffix("_bpf")
            .unwrap_or(&skel.obj_name)
            .to_string(),
        source: None,
        description: doc.and_then(|d| d.brief.clone().or_else(|| d.description.clone())),
        events,
    };
    let mut package = pack::pack(&object, &opts).map_err(pack_err)?;
    for global in &mut package.globals {
        let var = skel
            .data_sections
            .iter()
            .flat_map(|s| &s.variables)
            .find(|v| v.name == global.name);
        if let Some(help) = var.and_then(|v| {
            (v.cmdarg.as_ref().and_then(|c| c.help.clone())).or_else(|| v.description.clone())
        }) {
            global.help = help;
        }
    }
    Ok((package, object))
}

/// The ELF object: base64, then zlib, exactly `bpf_object_size` bytes.
fn unpack(e: &Eunomia, path: &Path) -> Result<Vec<u8>, EunomiaError> {
    let compressed = base64::engine::general_purpose::STANDARD
        .decode(&e.bpf_object)
        .map_err(|err| EunomiaError::Base64 {
            path: path.into(),
            reason: err.to_string(),
        })?;
    let size = e.bpf_object_size;
    let limit = usize::try_from(size)
        .ok()
        .filter(|&s| s <= MAX_OBJECT)
        .ok_or(EunomiaError::TooLarge {
            path: path.into(),
            size,
        })?;
    let inflate_err = |reason: String| EunomiaError::Inflate {
        path: path.into(),
        size,
        reason,
    };
    let object = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(&compressed, limit)
        .map_err(|err| inflate_err(format!("{:?}", err.status)))?;
    if object.len() != limit {
        return Err(inflate_err(format!("it holds {} bytes", object.len())));
    }
    Ok(object)
}

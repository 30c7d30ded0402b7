//! Phase 1 of `runner run` (and what `runner info` shows): a package read from disk whose
//! embedded object is intact and says what the package's description says.

use std::path::{Path, PathBuf};

use crate::spec::pack::{self, Description};
use crate::spec::package::Package;

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

/// A package whose object is intact and matches its description.
pub struct Verified {
    path: PathBuf,
    pkg: Package,
    object: Vec<u8>,
}

impl Verified {
    /// Read `path`, check the object's size and checksum, and describe the object again
    /// from its own BTF: the description must match.
    pub fn read(path: &Path) -> anyhow::Result<Verified> {
        let (pkg, object) = Package::read(path)?;
        let overrides: Vec<(String, String)> = pkg
            .events
            .iter()
            .map(|e| (e.map.clone(), e.struct_name.clone()))
            .collect();
        let desc =
            pack::describe(&object, None, &overrides).map_err(|source| VerifyError::BadObject {
                path: path.into(),
                source,
            })?;
        if let Some(what) = mismatch(&pkg, &desc) {
            return Err(VerifyError::Mismatch {
                path: path.into(),
                what,
            }
            .into());
        }
        Ok(Verified {
            path: path.into(),
            pkg,
            object,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn package(&self) -> &Package {
        &self.pkg
    }

    /// The BPF ELF object.
    pub fn object(&self) -> &[u8] {
        &self.object
    }
}

/// Compare what the package says with what the object says, ignoring the help texts
/// (which come from the source, not the object).
fn mismatch(pkg: &Package, desc: &Description) -> Option<String> {
    if pkg.globals.len() != desc.globals.len() {
        return Some("number of globals".into());
    }
    for (a, b) in pkg.globals.iter().zip(&desc.globals) {
        let mut a = a.clone();
        a.help.clone_from(&b.help);
        if &a != b {
            return Some(format!("global `{}`", b.name));
        }
    }
    if pkg.events != desc.events {
        return Some("event layout".into());
    }
    if pkg.maps != desc.maps {
        return Some("maps".into());
    }
    if pkg.programs != desc.programs {
        return Some("programs".into());
    }
    None
}

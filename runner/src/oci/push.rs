//! The registry commands that write: `runner push` (packages → one index), `runner sign`
//! (a cosign signature for the digest a tag names now), and the store's `image export` /
//! `image import` for carrying images and their signatures across an air gap.

use std::path::{Path, PathBuf};

use crate::oci::client::Transport;
use crate::oci::client::{ClientError, Registry};
use crate::oci::error::OciError;
use crate::oci::media::{self, Manifest};
use crate::oci::reference::Reference;
use crate::oci::store::{self, Store};
use crate::sign::cosign;
use crate::spec::package::{Package, PackageError};

/// One package to push and the architecture it is for.
pub struct Item {
    pub path: PathBuf,
    pub arch: String,
}

/// `PKG[@ARCH]`: an existing file wins; else a known architecture after the last `@`.
pub fn parse_item(arg: &str) -> Result<Item, OciError> {
    if !Path::new(arg).exists() {
        if let Some((path, arch)) = arg.rsplit_once('@') {
            if !media::ARCHES.contains(&arch) {
                return Err(OciError::Usage {
                    what: format!(
                        "`{arg}`: unknown architecture `{arch}` (one of {})",
                        media::ARCHES.join(", ")
                    ),
                });
            }
            return Ok(Item {
                path: path.into(),
                arch: arch.into(),
            });
        }
    }
    Ok(Item {
        path: arg.into(),
        arch: media::host_arch().into(),
    })
}

/// Push packages as one image: a manifest per architecture under one index at `r`.
/// Returns the index digest.
pub fn push(items: &[Item], r: &Reference, transport: &Transport) -> Result<String, OciError> {
    let mut images = Vec::new();
    for item in items {
        if images.iter().any(|(arch, _)| *arch == item.arch) {
            return Err(OciError::Usage {
                what: format!("two packages for {}: one per architecture", item.arch),
            });
        }
        let text = std::fs::read(&item.path).map_err(|source| PackageError::Read {
            path: item.path.clone(),
            source,
        })?;
        let (pkg, object) = Package::from_slice(&text, &item.path)?;
        let order = media::elf_endianness(&object).unwrap_or("unknown");
        if order != media::arch_endianness(&item.arch) {
            return Err(OciError::Endianness {
                reference: item.path.display().to_string(),
                object: order.into(),
                target: item.arch.clone(),
                order: media::arch_endianness(&item.arch).into(),
            });
        }
        images.push((
            item.arch.clone(),
            media::package_manifest(&pkg, &text, &object, &item.arch),
        ));
    }
    let title = r.repository.rsplit('/').next().unwrap_or_default();
    let index = media::index(
        images
            .iter()
            .map(|(_, [m, ..])| m.descriptor.clone())
            .collect(),
        title,
    );
    let registry = Registry::connect(transport, r)?;
    registry.login_push(r)?;
    for (_, [manifest, config, layer]) in &images {
        registry.push_blob(r, config)?;
        registry.push_blob(r, layer)?;
        registry.push_manifest(&r.at_digest(&manifest.descriptor.digest), manifest)?;
    }
    registry.push_manifest(r, &index)?;
    Ok(index.descriptor.digest)
}

/// Sign what `r` names now with a cosign key; the signature joins any already stored
/// under `sha256-<hex>.sig`. Returns the signed digest.
pub fn sign(r: &Reference, key: &Path, transport: &Transport) -> Result<String, OciError> {
    let signing_key = cosign::read_private_key(key)?;
    let registry = Registry::connect(transport, r)?;
    // The one resolution of the tag; everything after names the digest.
    let (_, digest) = registry.manifest(r)?;
    let payload = cosign::payload(&r.name(), &digest);
    let signature = cosign::sign(&signing_key, &payload);
    let layer = cosign::signature_layer(payload, &signature);
    let sig_ref = r.at_tag(&Reference::signature_tag(&digest));
    let mut layers = match registry.manifest(&sig_ref) {
        Ok((bytes, _)) => {
            let m: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| OciError::NotRunnerImage {
                    reference: sig_ref.to_string(),
                    what: format!("malformed signature manifest: {e}"),
                })?;
            m.layers
        }
        Err(ClientError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    layers.push(layer.descriptor.clone());
    let [manifest, config] = cosign::signature_manifest(&layers);
    registry.login_push(r)?;
    registry.push_blob(r, &layer)?;
    registry.push_blob(r, &config)?;
    registry.push_manifest(&sig_ref, &manifest)?;
    Ok(digest)
}

/// `runner image export REF FILE.tar`: the image as the store has it, with its
/// signatures. Returns the number of blobs written.
pub fn export(r: &Reference, out: &Path, store_dir: Option<&Path>) -> Result<usize, OciError> {
    let dir = store_dir.map_or_else(store::default_dir, Path::to_path_buf);
    let store = Store::open(&dir)?;
    let name = r.to_string();
    let entry = store.lookup(&name)?.ok_or_else(|| OciError::NotInStore {
        reference: name.clone(),
        store: dir.clone(),
    })?;
    let mut names = vec![name];
    let sig = r
        .at_tag(&Reference::signature_tag(&entry.digest))
        .to_string();
    if store.lookup(&sig)?.is_some() {
        names.push(sig);
    }
    Ok(store.export(&names, out)?)
}

/// `runner image import FILE.tar`: returns the names added to the store.
pub fn import(archive: &Path, store_dir: Option<&Path>) -> Result<Vec<String>, OciError> {
    let dir = store_dir.map_or_else(store::default_dir, Path::to_path_buf);
    Ok(Store::open(&dir)?.import(archive)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_name_their_architecture() {
        let i = parse_item("pkg.json@arm64").unwrap();
        assert_eq!(
            (i.path.to_str(), i.arch.as_str()),
            (Some("pkg.json"), "arm64")
        );
        let i = parse_item("pkg.json").unwrap();
        assert_eq!(i.arch, media::host_arch());
        assert!(parse_item("pkg.json@vax").is_err());
    }
}

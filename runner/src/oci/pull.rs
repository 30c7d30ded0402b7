//! Opening a package: a file (its minisign signature checked per the policy) or an image
//! (the tag resolved once, everything else fetched by digest into the store, every blob
//! hashed, the signatures of that digest checked per the policy, the package's object
//! checked against the config and this machine's byte order).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use crate::oci::client::{ClientError, Registry};
use crate::oci::error::OciError;
use crate::oci::media::{self, Descriptor, Index, Manifest, PackageConfig};
use crate::oci::options::{PullOptions, PullPolicy, Resolved};
use crate::oci::reference::{self, Reference};
use crate::oci::store::{self, Store};
use crate::policy::{self, Policy, Requirement};
use crate::sign::{cosign, minisign};
use crate::spec::package::Package;

/// A package file, checked against the policy's `files` entries (no policy: no check).
pub fn open_file(path: &Path, opts: &PullOptions) -> Result<Resolved, OciError> {
    // Read no further than a package may be (spec::json's cap).
    let bytes = Package::read_bytes(path)?;
    let name = path.display().to_string();
    let signature = minisign::read_signature(path)?;
    let policy = Policy::load(opts.policy.as_deref())?;
    let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.into());
    // Without any trust policy a local file runs quietly, as it always has: the warning
    // for unsigned packages is about what comes from a registry.
    let requirement = match &policy {
        Some(p) => p.for_file(&absolute)?,
        None => Requirement::AcceptUnsigned,
    };
    let policy_path = || policy.as_ref().map_or(PathBuf::new(), |p| p.path().into());
    match requirement {
        Requirement::Signed { scope, keys } => {
            let key_names = policy::names(keys.iter().map(|k| k.name.as_str()));
            let Some(signature) = signature else {
                return Err(OciError::Unsigned {
                    reference: name,
                    policy: policy_path(),
                    scope,
                    keys: key_names,
                });
            };
            match minisign::verify(&bytes, &signature, &keys) {
                Some(k) => crate::note!("runner: {name}: signature verified with {}", k.name),
                None => {
                    return Err(OciError::BadSignature {
                        reference: name,
                        policy: policy_path(),
                        keys: key_names,
                        why: format!(
                            "{} does not verify",
                            minisign::signature_path(path).display()
                        ),
                    })
                }
            }
        }
        Requirement::AcceptUnsigned => {}
        Requirement::Warn => warn_unchecked(&name, signature.is_some(), policy.is_some()),
        Requirement::Reject => {
            return Err(OciError::NotCovered {
                reference: name,
                policy: policy_path(),
            })
        }
    }
    Ok(Resolved {
        bytes,
        digest: None,
        display: path.into(),
    })
}

fn warn_unchecked(name: &str, signed: bool, have_policy: bool) {
    let why = if have_policy {
        "no entry of the trust policy covers it"
    } else {
        "no trust policy"
    };
    if signed {
        crate::note!("runner: warning: {name}: signature not checked ({why})");
    } else {
        crate::note!("runner: warning: {name} is not signed ({why})");
    }
}

/// Fetches what the store lacks, connecting to the registry at most once.
struct Fetcher<'a> {
    reference: &'a Reference,
    opts: &'a PullOptions,
    store: Store,
    registry: Option<Registry>,
    /// The registry was found unreachable: use the store only from now on.
    offline: bool,
}

impl Fetcher<'_> {
    fn registry(&mut self) -> Result<&Registry, OciError> {
        if self.registry.is_none() {
            self.registry = Some(Registry::connect(&self.opts.transport, self.reference)?);
        }
        Ok(self.registry.as_ref().expect("just connected"))
    }

    fn may_fetch(&self) -> bool {
        self.opts.pull != PullPolicy::Never && !self.offline
    }

    fn not_in_store(&self, what: String) -> OciError {
        OciError::NotInStore {
            reference: what,
            store: self.store.root().into(),
        }
    }

    /// A manifest or index by digest, from the store or the registry.
    fn document(&mut self, digest: &str) -> Result<Vec<u8>, OciError> {
        if self.store.has(digest) {
            return Ok(self.store.get(digest, media::MAX_DOCUMENT)?);
        }
        if !self.may_fetch() {
            return Err(self.not_in_store(format!("{}@{digest}", self.reference.name())));
        }
        let at = self.reference.at_digest(digest);
        let (bytes, _) = self.registry()?.manifest(&at)?;
        self.store.put_expected(digest, &bytes)?;
        Ok(bytes)
    }

    /// A blob by descriptor, from the store or the registry.
    fn blob(&mut self, d: &Descriptor, limit: u64) -> Result<Vec<u8>, OciError> {
        if self.store.has(&d.digest) {
            return Ok(self.store.get(&d.digest, limit)?);
        }
        if !self.may_fetch() {
            return Err(self.not_in_store(format!("{}@{}", self.reference.name(), d.digest)));
        }
        let reference = self.reference;
        let bytes = self.registry()?.blob(reference, d, limit)?;
        self.store.put_expected(&d.digest, &bytes)?;
        Ok(bytes)
    }

    /// The digest the reference names now: the one moment a tag is resolved.
    fn resolve(&mut self) -> Result<String, OciError> {
        let r = self.reference;
        if let Some(d) = &r.digest {
            return Ok(d.clone());
        }
        let name = r.to_string();
        let stored = self.store.lookup(&name)?;
        match (self.opts.pull, stored) {
            (PullPolicy::Never, Some(d)) | (PullPolicy::Missing, Some(d)) => return Ok(d.digest),
            (PullPolicy::Never, None) => return Err(self.not_in_store(name)),
            _ => {}
        }
        let remote = self.registry().and_then(|reg| Ok(reg.manifest(r)?));
        match remote {
            Ok((bytes, digest)) => {
                self.store.put_expected(&digest, &bytes)?;
                Ok(digest)
            }
            Err(OciError::Client(ClientError::Unreachable { registry, detail })) => {
                let Some(d) = self.store.lookup(&name)? else {
                    return Err(ClientError::Unreachable {
                        registry,
                        detail: format!("{detail}; {name} is not in the local store either"),
                    }
                    .into());
                };
                crate::note!(
                    "runner: registry {registry} is unreachable; using {name} from the local store ({})",
                    d.digest
                );
                self.offline = true;
                Ok(d.digest)
            }
            Err(e) => Err(e),
        }
    }

    /// Refresh the signatures of `digest` from the registry when it is being asked
    /// anyway; otherwise use what the store has. Returns the signature layers.
    fn signatures(&mut self, digest: &str) -> Result<Vec<(Descriptor, Vec<u8>)>, OciError> {
        let tag = Reference::signature_tag(digest);
        let name = self.reference.at_tag(&tag).to_string();
        let stored = self.store.lookup(&name)?.is_some();
        let ask = (self.registry.is_some() || !stored) && self.may_fetch();
        if ask {
            let at = self.reference.at_tag(&tag);
            let remote = self.registry().and_then(|reg| Ok(reg.manifest(&at)?));
            match remote {
                Ok((bytes, d)) => {
                    self.store.put_expected(&d, &bytes)?;
                    let m: Manifest = parse(&name, &bytes)?;
                    self.blob(&m.config, media::MAX_DOCUMENT)?;
                    for l in &m.layers {
                        self.blob(l, media::MAX_DOCUMENT)?;
                    }
                    self.store
                        .tag(&name, &descriptor(media::MANIFEST, &d, &bytes))?;
                }
                Err(OciError::Client(ClientError::NotFound { .. })) => {}
                // Checking for newer signatures is best effort when the store has some.
                Err(OciError::Client(ClientError::Unreachable { .. })) if stored => {}
                Err(e) => return Err(e),
            }
        }
        let Some(entry) = self.store.lookup(&name)? else {
            return Ok(Vec::new());
        };
        let bytes = self.store.get(&entry.digest, media::MAX_DOCUMENT)?;
        let m: Manifest = parse(&name, &bytes)?;
        let mut out = Vec::new();
        for l in m.layers {
            let payload = self.blob(&l, media::MAX_DOCUMENT)?;
            out.push((l, payload));
        }
        Ok(out)
    }
}

fn descriptor(media_type: &str, digest: &str, bytes: &[u8]) -> Descriptor {
    Descriptor {
        media_type: media_type.into(),
        digest: digest.into(),
        size: bytes.len() as u64,
        artifact_type: None,
        platform: None,
        annotations: Default::default(),
    }
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, bytes: &[u8]) -> Result<T, OciError> {
    serde_json::from_slice(bytes).map_err(|e| OciError::NotRunnerImage {
        reference: name.into(),
        what: format!("malformed OCI document: {e}"),
    })
}

/// The package manifest for this machine: from an index, the host's architecture.
fn pick_manifest(name: &str, top: &[u8], digest: &str) -> Result<(Descriptor, String), OciError> {
    let value: serde_json::Value = parse(name, top)?;
    if value.get("manifests").is_none() {
        // A single manifest pushed on its own, not an index.
        return Ok((
            descriptor(media::MANIFEST, digest, top),
            media::host_arch().into(),
        ));
    }
    let index: Index = parse(name, top)?;
    let arch = media::host_arch();
    let chosen = index.manifests.iter().find(|m| {
        m.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == arch)
    });
    match chosen {
        Some(m) => Ok((m.clone(), arch.into())),
        None => Err(OciError::NoPlatform {
            reference: name.into(),
            arch: arch.into(),
            available: index
                .manifests
                .iter()
                .filter_map(|m| m.platform.as_ref())
                .map(|p| format!("{}/{}", p.os, p.architecture))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// Check the signatures of `digest` against what the policy requires.
fn check_signatures(
    name: &str,
    digest: &str,
    signatures: &[(Descriptor, Vec<u8>)],
    policy: Option<&Policy>,
    image_name: &str,
) -> Result<(), OciError> {
    let requirement = match policy {
        Some(p) => p.for_image(image_name)?,
        None => Requirement::Warn,
    };
    let policy_path = || policy.map_or(PathBuf::new(), |p| p.path().into());
    match requirement {
        Requirement::Signed { scope, keys } => {
            let key_names = policy::names(keys.iter().map(|k| k.name.as_str()));
            if signatures.is_empty() {
                return Err(OciError::Unsigned {
                    reference: name.into(),
                    policy: policy_path(),
                    scope,
                    keys: key_names,
                });
            }
            let mut why = Vec::new();
            for (layer, payload) in signatures {
                match cosign::verify_layer(layer, payload, digest, &keys) {
                    Ok(k) => {
                        crate::note!(
                            "runner: {name}: {digest} signature verified with {}",
                            k.name
                        );
                        return Ok(());
                    }
                    Err(r) => why.push(match r {
                        cosign::Rejected::NoKeyMatches => "signed by another key".to_string(),
                        cosign::Rejected::OtherDigest(d) => format!("a signature for {d}"),
                        other => format!("{other:?}").to_lowercase(),
                    }),
                }
            }
            why.dedup();
            Err(OciError::BadSignature {
                reference: name.into(),
                policy: policy_path(),
                keys: key_names,
                why: format!("{} signature(s): {}", signatures.len(), why.join("; ")),
            })
        }
        Requirement::AcceptUnsigned => Ok(()),
        Requirement::Warn => {
            warn_unchecked(name, !signatures.is_empty(), policy.is_some());
            Ok(())
        }
        Requirement::Reject => Err(OciError::NotCovered {
            reference: name.into(),
            policy: policy_path(),
        }),
    }
}

/// An image reference: resolve, fetch, verify; the package bytes.
pub fn open_image(r: &Reference, opts: &PullOptions) -> Result<Resolved, OciError> {
    let store_dir = opts.store.clone().unwrap_or_else(store::default_dir);
    let policy = Policy::load(opts.policy.as_deref())?;
    let mut f = Fetcher {
        reference: r,
        opts,
        store: Store::open(&store_dir)?,
        registry: None,
        offline: false,
    };
    let name = r.to_string();
    let digest = f.resolve()?;
    let top = f.document(&digest)?;
    let (manifest_desc, arch) = pick_manifest(&name, &top, &digest)?;
    let manifest_bytes = f.document(&manifest_desc.digest)?;
    let manifest: Manifest = parse(&name, &manifest_bytes)?;
    let not_ours = |what: String| OciError::NotRunnerImage {
        reference: name.clone(),
        what,
    };
    if manifest.config.media_type != media::CONFIG {
        return Err(not_ours(format!(
            "its config is {}, not {}",
            manifest.config.media_type,
            media::CONFIG
        )));
    }
    let [layer] = manifest.layers.as_slice() else {
        return Err(not_ours(format!(
            "it has {} layers, not one",
            manifest.layers.len()
        )));
    };
    if layer.media_type != media::LAYER {
        return Err(not_ours(format!(
            "its layer is {}, not {}",
            layer.media_type,
            media::LAYER
        )));
    }
    let config_bytes = f.blob(&manifest.config, media::MAX_DOCUMENT)?;
    let bytes = f.blob(layer, media::MAX_PACKAGE)?;
    let signatures = f.signatures(&digest)?;
    // Remember what the reference named, for --pull never and export.
    let top_type = if serde_json::from_slice::<Index>(&top).is_ok() {
        media::INDEX
    } else {
        media::MANIFEST
    };
    f.store.tag(&name, &descriptor(top_type, &digest, &top))?;

    check_signatures(&name, &digest, &signatures, policy.as_ref(), &r.name())?;

    let config: PackageConfig = parse(&name, &config_bytes)?;
    let (pkg, object) = Package::from_slice(&bytes, Path::new(&name))?;
    let mismatch = |what: String| OciError::ConfigMismatch {
        reference: name.clone(),
        what,
    };
    if config.object_sha256 != pkg.object.sha256 {
        return Err(mismatch(format!(
            "object sha256 {} in the config, {} in the package",
            config.object_sha256, pkg.object.sha256
        )));
    }
    if config.architecture != arch {
        return Err(mismatch(format!(
            "config says {}, the index says {arch}",
            config.architecture
        )));
    }
    let object_order = media::elf_endianness(&object).unwrap_or("unknown");
    let host_order = if cfg!(target_endian = "little") {
        "little"
    } else {
        "big"
    };
    if object_order != host_order {
        return Err(OciError::Endianness {
            reference: name,
            object: object_order.into(),
            target: "this machine".into(),
            order: host_order.into(),
        });
    }
    Ok(Resolved {
        bytes,
        digest: Some(digest),
        display: name.into(),
    })
}

/// The seam: open what the user named, a package file or an image reference (see
/// [`reference::classify`] for the rule), verify it against the trust policy, and
/// return its bytes. Nothing here touches the kernel; a plain file never starts an
/// async runtime or the network.
pub fn open_package(arg: &OsStr, opts: &PullOptions) -> Result<Resolved, OciError> {
    let text = arg.to_str();
    match text.map(reference::classify) {
        Some(reference::Target::Image(r)) => open_image(&r, opts),
        _ => open_file(std::path::Path::new(arg), opts),
    }
}

//! What a runner image looks like in a registry: the media types, the OCI documents
//! (descriptor, manifest, index) as the runner writes and reads them, the small config
//! that summarises a package for a registry browser, and the platform and byte-order
//! checks. See `schemas/oci-media-types.md` for the same in prose.
//!
//! ```text
//! index (application/vnd.oci.image.index.v1+json)
//!  └─ manifest per architecture (platform linux/amd64, artifactType below)
//!      ├─ config: application/vnd.runner.package.config.v1+json  (PackageConfig)
//!      └─ layer:  application/vnd.runner.package.layer.v1+json   (the package JSON, byte for byte)
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::spec::package::{serde_name, sha256_hex, Package};

pub const INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// The `artifactType` of every per-architecture manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.runner.package.v1+json";
pub const CONFIG: &str = "application/vnd.runner.package.config.v1+json";
pub const LAYER: &str = "application/vnd.runner.package.layer.v1+json";
/// cosign's signature layer and the annotation holding the base64 signature.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";
/// The config of a signature manifest, as cosign writes it.
pub const IMAGE_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const TITLE: &str = "org.opencontainers.image.title";
pub const DESCRIPTION: &str = "org.opencontainers.image.description";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// A package layer is at most this big (a package is a few hundred KiB; the biggest
/// objects are a few MiB). Every download is cut off here, before it is hashed or stored.
pub const MAX_PACKAGE: u64 = 64 << 20;
/// Manifests, indexes, configs and signature payloads are small JSON documents.
pub const MAX_DOCUMENT: u64 = 4 << 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default)]
    pub media_type: String,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The config blob: what a registry browser can show without fetching the package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageConfig {
    pub format_version: u32,
    pub name: String,
    pub description: String,
    pub architecture: String,
    /// `little` or `big`: the byte order of the BPF object (ELF EI_DATA).
    pub endianness: String,
    pub object_sha256: String,
    pub object_size: u64,
    /// `name (attach kind target)` per program.
    pub programs: Vec<String>,
}

/// A blob to store or upload, with its descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    pub descriptor: Descriptor,
    pub bytes: Vec<u8>,
}

impl Blob {
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        Blob {
            descriptor: Descriptor {
                media_type: media_type.into(),
                digest: digest_of(&bytes),
                size: bytes.len() as u64,
                artifact_type: None,
                platform: None,
                annotations: BTreeMap::new(),
            },
            bytes,
        }
    }
}

/// The hex part of a well-formed `sha256:<64 hex>` digest.
pub fn valid_digest_hex(digest: &str) -> Option<&str> {
    crate::oci::reference::valid_digest(digest).then(|| &digest[7..])
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// The OCI name of the architecture this runner was built for.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" if cfg!(target_endian = "little") => "ppc64le",
        "loongarch64" => "loong64",
        other => other,
    }
}

/// Architectures a package can be pushed for (OCI/Go names).
pub const ARCHES: [&str; 10] = [
    "amd64", "arm64", "arm", "386", "riscv64", "ppc64le", "ppc64", "s390x", "loong64", "mips64le",
];

/// The byte order of an architecture's kernel, and so of the BPF objects it loads.
pub fn arch_endianness(arch: &str) -> &'static str {
    match arch {
        "s390x" | "ppc64" | "mips64" | "mips" => "big",
        _ => "little",
    }
}

/// The byte order an ELF object declares (EI_DATA), if it is an ELF object.
pub fn elf_endianness(object: &[u8]) -> Option<&'static str> {
    match object {
        [0x7f, b'E', b'L', b'F', _, 1, ..] => Some("little"),
        [0x7f, b'E', b'L', b'F', _, 2, ..] => Some("big"),
        _ => None,
    }
}

impl PackageConfig {
    pub fn new(pkg: &Package, object: &[u8], arch: &str) -> PackageConfig {
        PackageConfig {
            format_version: pkg.format_version,
            name: pkg.name.clone(),
            description: pkg.description.clone(),
            architecture: arch.into(),
            endianness: elf_endianness(object).unwrap_or("unknown").into(),
            object_sha256: pkg.object.sha256.clone(),
            object_size: pkg.object.size,
            programs: pkg
                .programs
                .iter()
                .map(|p| {
                    let kind = serde_name(&p.attach.kind);
                    match p.attach.target.as_str() {
                        "" => format!("{} ({kind})", p.name),
                        t => format!("{} ({kind} {t})", p.name),
                    }
                })
                .collect(),
        }
    }
}

/// Serialize a document the same way every time (struct field order, no spaces).
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    serde_json::to_vec(doc).expect("OCI documents always serialize")
}

/// The manifest of one architecture's package: its config and its one layer.
pub fn package_manifest(pkg: &Package, text: &[u8], object: &[u8], arch: &str) -> [Blob; 3] {
    let config = Blob::new(CONFIG, to_bytes(&PackageConfig::new(pkg, object, arch)));
    let mut layer = Blob::new(LAYER, text.to_vec());
    layer
        .descriptor
        .annotations
        .insert(TITLE.into(), format!("{}.json", pkg.name));
    let mut annotations = BTreeMap::new();
    annotations.insert(TITLE.into(), pkg.name.clone());
    if !pkg.description.is_empty() {
        annotations.insert(DESCRIPTION.into(), pkg.description.clone());
    }
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST.into(),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        config: config.descriptor.clone(),
        layers: vec![layer.descriptor.clone()],
        annotations,
    };
    let mut manifest = Blob::new(MANIFEST, to_bytes(&manifest));
    manifest.descriptor.artifact_type = Some(ARTIFACT_TYPE.into());
    manifest.descriptor.platform = Some(Platform {
        os: "linux".into(),
        architecture: arch.into(),
    });
    [manifest, config, layer]
}

/// The index over per-architecture manifests.
pub fn index(manifests: Vec<Descriptor>, title: &str) -> Blob {
    let mut annotations = BTreeMap::new();
    annotations.insert(TITLE.into(), title.into());
    Blob::new(
        INDEX,
        to_bytes(&Index {
            schema_version: 2,
            media_type: INDEX.into(),
            manifests,
            annotations,
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_byte_order() {
        assert_eq!(elf_endianness(b"\x7fELF\x02\x01\x01"), Some("little"));
        assert_eq!(elf_endianness(b"\x7fELF\x02\x02\x01"), Some("big"));
        assert_eq!(elf_endianness(b"{}"), None);
        assert_eq!(arch_endianness("s390x"), "big");
        assert_eq!(arch_endianness(host_arch()), {
            if cfg!(target_endian = "little") {
                "little"
            } else {
                "big"
            }
        });
    }

    #[test]
    fn sigsnoop_image() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../programs/sigsnoop/package.json");
        let text = std::fs::read(&path).unwrap();
        let (pkg, object) = Package::from_slice(&text, &path).unwrap();
        let [manifest, config, layer] = package_manifest(&pkg, &text, &object, "amd64");
        assert_eq!(layer.bytes, text, "the layer is the package, byte for byte");
        let m: Manifest = serde_json::from_slice(&manifest.bytes).unwrap();
        assert_eq!(m.artifact_type.as_deref(), Some(ARTIFACT_TYPE));
        assert_eq!(m.config.digest, digest_of(&config.bytes));
        assert_eq!(m.layers[0].media_type, LAYER);
        let c: PackageConfig = serde_json::from_slice(&config.bytes).unwrap();
        assert_eq!(c.endianness, "little");
        assert_eq!(c.object_sha256, pkg.object.sha256);
        assert_eq!(c.programs.len(), pkg.programs.len());
        let idx = index(vec![manifest.descriptor.clone()], "sigsnoop");
        let i: Index = serde_json::from_slice(&idx.bytes).unwrap();
        assert_eq!(i.media_type, INDEX);
        assert_eq!(
            i.manifests[0].platform.as_ref().unwrap().architecture,
            "amd64"
        );
    }
}

//! cosign-compatible keyed signatures (cosign's `specs/SIGNATURE_SPEC.md`): ECDSA P-256
//! with SHA-256 over a "simple signing" JSON payload that names the signed digest in
//! `critical.image.docker-manifest-digest`. The payload is a layer of type
//! `application/vnd.dev.cosign.simplesigning.v1+json` in a manifest stored under the tag
//! `sha256-<hex>.sig`, the base64 DER signature in the layer's
//! `dev.cosignproject.cosign/signature` annotation; one layer per signature.
//!
//! Keys: the private key is a PEM `PRIVATE KEY` (PKCS#8, unencrypted; cosign reads it with
//! `cosign import-key-pair`), the public key a PEM `PUBLIC KEY` (SubjectPublicKeyInfo),
//! which is what `cosign verify --key` takes.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use p256::ecdsa::signature::{Signer as _, Verifier as _};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};

use crate::oci::media::{self, Blob, Descriptor, Manifest};

/// `critical.type` of a cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

#[derive(Debug, thiserror::Error)]
pub enum CosignError {
    #[error("cannot read key `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write key `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not an ECDSA P-256 {what} in PEM ({detail})")]
    BadKey {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("`{path}` exists already; remove it or choose another name")]
    Exists { path: PathBuf },
}

/// A public key and where it came from (for messages).
#[derive(Clone, Debug)]
pub struct PublicKey {
    pub name: String,
    pub key: VerifyingKey,
}

impl PublicKey {
    pub fn from_pem(pem: &str, name: &str) -> Result<PublicKey, CosignError> {
        let key =
            VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| CosignError::BadKey {
                path: name.into(),
                what: "public key",
                detail: e.to_string(),
            })?;
        Ok(PublicKey {
            name: name.into(),
            key,
        })
    }

    #[cfg(test)]
    pub fn read(path: &Path) -> Result<PublicKey, CosignError> {
        let text = std::fs::read_to_string(path).map_err(|source| CosignError::Read {
            path: path.into(),
            source,
        })?;
        Self::from_pem(&text, &path.display().to_string())
    }
}

/// Read a private key: PKCS#8 (`PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`) PEM.
pub fn read_private_key(path: &Path) -> Result<SigningKey, CosignError> {
    let text = std::fs::read_to_string(path).map_err(|source| CosignError::Read {
        path: path.into(),
        source,
    })?;
    let bad = |detail: String| CosignError::BadKey {
        path: path.into(),
        what: "private key",
        detail,
    };
    if text.contains("ENCRYPTED") {
        return Err(bad(
            "encrypted keys are not supported; export it unencrypted as PKCS#8 PEM".into(),
        ));
    }
    if text.contains("BEGIN EC PRIVATE KEY") {
        use p256::elliptic_curve::SecretKey;
        let sk: SecretKey<p256::NistP256> =
            SecretKey::from_sec1_pem(text.trim()).map_err(|e| bad(e.to_string()))?;
        return Ok(SigningKey::from(sk));
    }
    SigningKey::from_pkcs8_pem(text.trim()).map_err(|e| bad(e.to_string()))
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<(), CosignError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => CosignError::Exists { path: path.into() },
            _ => CosignError::Write {
                path: path.into(),
                source,
            },
        })?;
    f.write_all(text.as_bytes())
        .map_err(|source| CosignError::Write {
            path: path.into(),
            source,
        })
}

/// Write a new key pair: `<prefix>.key` (mode 0600) and `<prefix>.pub`.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), CosignError> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("a P-256 key encodes as PKCS#8");
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("a P-256 key encodes as SPKI");
    let key_path = prefix.with_extension("key");
    let pub_path = prefix.with_extension("pub");
    write_new(&key_path, &private, 0o600)?;
    write_new(&pub_path, &public, 0o644)?;
    Ok((key_path, pub_path))
}

/// The simple signing payload for `digest`, as cosign writes it.
pub fn payload(docker_reference: &str, digest: &str) -> Vec<u8> {
    let value = serde_json::json!({
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": null,
    });
    serde_json::to_vec(&value).expect("a payload serializes")
}

/// Sign a payload: the base64 of the DER-encoded ECDSA signature over SHA-256(payload).
pub fn sign(key: &SigningKey, payload: &[u8]) -> String {
    let signature: Signature = key.sign(payload);
    base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes())
}

/// A signature layer: the payload blob with the signature annotation.
pub fn signature_layer(payload: Vec<u8>, signature: &str) -> Blob {
    let mut blob = Blob::new(media::SIMPLE_SIGNING, payload);
    blob.descriptor
        .annotations
        .insert(media::SIGNATURE_ANNOTATION.into(), signature.into());
    blob
}

/// The signature manifest over `layers`, with a config like cosign's.
pub fn signature_manifest(layers: &[Descriptor]) -> [Blob; 2] {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.digest.as_str()).collect();
    let config = serde_json::json!({
        "architecture": "",
        "created": "0001-01-01T00:00:00Z",
        "history": [{"created": "0001-01-01T00:00:00Z"}],
        "os": "",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "config": {},
    });
    let config = Blob::new(media::IMAGE_CONFIG, media::to_bytes(&config));
    let manifest = Manifest {
        schema_version: 2,
        media_type: media::MANIFEST.into(),
        artifact_type: None,
        config: config.descriptor.clone(),
        layers: layers.to_vec(),
        annotations: Default::default(),
    };
    [
        Blob::new(media::MANIFEST, media::to_bytes(&manifest)),
        config,
    ]
}

/// Why one signature layer does not vouch for a digest.
#[derive(Debug, PartialEq, Eq)]
pub enum Rejected {
    NotSimpleSigning,
    NoSignature,
    NotBase64,
    BadPayload,
    OtherDigest(String),
    NoKeyMatches,
}

/// Check one signature layer (its payload already fetched and digest-checked) for
/// `digest` against `keys`; returns the key that verified it.
pub fn verify_layer<'k>(
    layer: &Descriptor,
    payload: &[u8],
    digest: &str,
    keys: &'k [PublicKey],
) -> Result<&'k PublicKey, Rejected> {
    if layer.media_type != media::SIMPLE_SIGNING {
        return Err(Rejected::NotSimpleSigning);
    }
    let encoded = layer
        .annotations
        .get(media::SIGNATURE_ANNOTATION)
        .ok_or(Rejected::NoSignature)?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| Rejected::NotBase64)?;
    let signature = Signature::from_der(&raw)
        .or_else(|_| Signature::from_slice(&raw))
        .map_err(|_| Rejected::NotBase64)?;
    // The signature is over the payload bytes; only then is the payload read.
    let key = keys
        .iter()
        .find(|k| k.key.verify(payload, &signature).is_ok())
        .ok_or(Rejected::NoKeyMatches)?;
    let value: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| Rejected::BadPayload)?;
    let critical = value.get("critical").ok_or(Rejected::BadPayload)?;
    if critical.get("type").and_then(|t| t.as_str()) != Some(SIGNATURE_TYPE) {
        return Err(Rejected::BadPayload);
    }
    let signed = critical
        .get("image")
        .and_then(|i| i.as_object())
        .and_then(|i| {
            i.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("docker-manifest-digest"))
        })
        .and_then(|(_, v)| v.as_str())
        .ok_or(Rejected::BadPayload)?;
    if signed != digest {
        return Err(Rejected::OtherDigest(signed.into()));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A signature made by cosign itself (taken from sigstore-rs's test suite, where it
    /// verifies a layer cosign wrote): the independent implementation's output verifies.
    #[test]
    fn verifies_a_signature_made_by_cosign() {
        let key = PublicKey::from_pem(
            "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAENptdY/l3nB0yqkXLBWkZWQwo6+cu
OSWS1X9vPavpiQOoTTGC0xX57OojUadxF1cdQmrsiReWg2Wn4FneJfa8xw==
-----END PUBLIC KEY-----",
            "cosign test key",
        )
        .unwrap();
        let digest = "sha256:f3cfc9d0dbf931d3db4685ec659b7ac68e2a578219da4aae65427886e649b06b";
        let payload = payload("registry-testing.svc.lan/busybox", digest);
        let layer = signature_layer(
            payload.clone(),
            "MEUCIQD6q/COgzOyW0YH1Dk+CCYSt4uAhm3FDHUwvPI55zwnlwIgE0ZK58ZOWpZw8YVmBapJhBqCfdPekIknimuO0xH8Jh8=",
        );
        let keys = [key];
        assert!(verify_layer(&layer.descriptor, &payload, digest, &keys).is_ok());
        // One byte of the payload changed: no key matches.
        let mut tampered = payload.clone();
        tampered[10] ^= 1;
        assert_eq!(
            verify_layer(&layer.descriptor, &tampered, digest, &keys).unwrap_err(),
            Rejected::NoKeyMatches
        );
        // A valid signature over another digest does not vouch for this one.
        let other = format!("sha256:{}", "0".repeat(64));
        assert_eq!(
            verify_layer(&layer.descriptor, &payload, &other, &keys).unwrap_err(),
            Rejected::OtherDigest(digest.into())
        );
    }

    #[test]
    fn sign_verify_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let (k, p) = keygen(&dir.path().join("test")).unwrap();
        assert!(
            keygen(&dir.path().join("test")).is_err(),
            "never overwrites"
        );
        let key = read_private_key(&k).unwrap();
        let public = PublicKey::read(&p).unwrap();
        let digest = format!("sha256:{}", "ab".repeat(32));
        let payload = payload("localhost:5000/a", &digest);
        let layer = signature_layer(payload.clone(), &sign(&key, &payload));
        let wrong = PublicKey {
            name: "other".into(),
            key: *SigningKey::random(&mut rand_core::OsRng).verifying_key(),
        };
        assert_eq!(
            verify_layer(
                &layer.descriptor,
                &payload,
                &digest,
                &[wrong.clone(), public]
            )
            .unwrap()
            .name,
            p.display().to_string()
        );
        assert_eq!(
            verify_layer(&layer.descriptor, &payload, &digest, &[wrong]).unwrap_err(),
            Rejected::NoKeyMatches
        );
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&k).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

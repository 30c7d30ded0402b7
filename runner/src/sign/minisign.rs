//! Detached minisign signatures for package files: `pkg.json.minisig` beside `pkg.json`,
//! made with the `minisign` tool or `runner sign pkg.json --key KEY`, checked with
//! `minisign-verify` against keys the trust policy pins (minisign's base64 public key, or
//! a `minisign.pub` file).

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum MinisignError {
    #[error("cannot read `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`{path}` is not a minisign {what}: {detail}")]
    Bad {
        path: PathBuf,
        what: &'static str,
        detail: String,
    },
    #[error("`{path}` exists already; remove it or choose another name")]
    Exists { path: PathBuf },
}

/// A trusted minisign public key and where it came from.
#[derive(Clone)]
pub struct PublicKey {
    pub name: String,
    pub key: minisign_verify::PublicKey,
}

impl PublicKey {
    /// A base64 key (`RW…`) or the text of a `minisign.pub` file.
    pub fn parse(text: &str, name: &str) -> Result<PublicKey, MinisignError> {
        let text = text.trim();
        let key = if text.contains('\n') {
            minisign_verify::PublicKey::decode(text)
        } else {
            minisign_verify::PublicKey::from_base64(text)
        }
        .map_err(|e| MinisignError::Bad {
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
    pub fn read(path: &Path) -> Result<PublicKey, MinisignError> {
        let text = std::fs::read_to_string(path).map_err(|source| MinisignError::Read {
            path: path.into(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }
}

/// Where a file's detached signature lives.
pub fn signature_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".minisig");
    name.into()
}

/// The signature beside `file`, if there is one.
pub fn read_signature(file: &Path) -> Result<Option<minisign_verify::Signature>, MinisignError> {
    let path = signature_path(file);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(MinisignError::Read { path, source }),
    };
    minisign_verify::Signature::decode(&text)
        .map(Some)
        .map_err(|e| MinisignError::Bad {
            path,
            what: "signature",
            detail: e.to_string(),
        })
}

/// The key among `keys` that signed `bytes`, if any.
pub fn verify<'k>(
    bytes: &[u8],
    signature: &minisign_verify::Signature,
    keys: &'k [PublicKey],
) -> Option<&'k PublicKey> {
    keys.iter()
        .find(|k| k.key.verify(bytes, signature, false).is_ok())
}

/// Write a new unencrypted key pair: `<prefix>.key` (mode 0600) and `<prefix>.pub`.
pub fn keygen(prefix: &Path) -> Result<(PathBuf, PathBuf), MinisignError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let pair =
        minisign::KeyPair::generate_unencrypted_keypair().map_err(|e| MinisignError::Bad {
            path: prefix.into(),
            what: "key pair",
            detail: e.to_string(),
        })?;
    let key_path = prefix.with_extension("key");
    let pub_path = prefix.with_extension("pub");
    let sk = pair
        .sk
        .to_box(None)
        .map(|b| b.to_string())
        .map_err(|e| MinisignError::Bad {
            path: key_path.clone(),
            what: "secret key",
            detail: e.to_string(),
        })?;
    let pk = pair
        .pk
        .to_box()
        .map(|b| b.to_string())
        .map_err(|e| MinisignError::Bad {
            path: pub_path.clone(),
            what: "public key",
            detail: e.to_string(),
        })?;
    for (path, text, mode) in [(&key_path, sk, 0o600), (&pub_path, pk, 0o644)] {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(path)
            .map_err(|source| match source.kind() {
                std::io::ErrorKind::AlreadyExists => MinisignError::Exists { path: path.clone() },
                _ => MinisignError::Write {
                    path: path.clone(),
                    source,
                },
            })?;
        f.write_all(text.as_bytes())
            .map_err(|source| MinisignError::Write {
                path: path.clone(),
                source,
            })?;
    }
    Ok((key_path, pub_path))
}

/// Is this file a minisign secret key (rather than a cosign PEM key)?
#[cfg(test)]
pub fn is_secret_key(text: &str) -> bool {
    text.starts_with("untrusted comment:") && !text.contains("-----BEGIN")
}

/// Sign `file` with an unencrypted minisign secret key; writes `<file>.minisig`.
pub fn sign_file(file: &Path, key: &Path) -> Result<PathBuf, MinisignError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| MinisignError::Read {
            path: path.into(),
            source,
        })
    };
    let key_text = String::from_utf8_lossy(&read(key)?).into_owned();
    let bad = |detail: String| MinisignError::Bad {
        path: key.into(),
        what: "secret key",
        detail,
    };
    let sk = minisign::SecretKeyBox::from_string(&key_text)
        .and_then(|b| b.into_unencrypted_secret_key())
        .map_err(|e| {
            bad(format!(
                "{e} (encrypted keys are not supported: create one with `minisign -G -W`)"
            ))
        })?;
    let bytes = read(file)?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let trusted = format!("file:{name}");
    let signature = minisign::sign(None, &sk, std::io::Cursor::new(bytes), Some(&trusted), None)
        .map_err(|e| bad(e.to_string()))?;
    let out = signature_path(file);
    std::fs::write(&out, signature.into_string()).map_err(|source| MinisignError::Write {
        path: out.clone(),
        source,
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let (sk, pk) = keygen(&dir.path().join("m")).unwrap();
        let file = dir.path().join("pkg.json");
        std::fs::write(&file, b"{\"a\": 1}\n").unwrap();
        assert!(read_signature(&file).unwrap().is_none());
        sign_file(&file, &sk).unwrap();
        let sig = read_signature(&file).unwrap().unwrap();
        let keys = [PublicKey::read(&pk).unwrap()];
        assert!(verify(b"{\"a\": 1}\n", &sig, &keys).is_some());
        assert!(verify(b"{\"a\": 2}\n", &sig, &keys).is_none());
        assert!(is_secret_key(&std::fs::read_to_string(&sk).unwrap()));
    }
}

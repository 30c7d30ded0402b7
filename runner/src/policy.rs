//! The trust policy: which keys must have signed which packages. Read from
//! `/etc/runner/policy.json`, or the file `--policy FILE` names (see
//! `schemas/policy.schema.json` and the README):
//!
//! ```json
//! {
//!   "default": "reject",
//!   "images": [
//!     {"scope": "registry.example.com/tools", "keys": ["keys/tools.pub"]},
//!     {"scope": "localhost:5000", "insecure_accept_unsigned": true}
//!   ],
//!   "files": [{"scope": "/opt/runner/packages", "keys": ["RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3"]}]
//! }
//! ```
//!
//! The entry with the longest scope that contains the package decides: with `keys`, a
//! valid signature by one of them is required; with `insecure_accept_unsigned`, anything
//! runs. No entry: `default`, `reject` (the default) or `warn` (run, with a warning).
//! Without any policy file, everything runs; an unsigned package with a warning.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::sign::{cosign, minisign};

/// Where the policy is read from when `--policy` does not say.
pub const DEFAULT_PATH: &str = "/etc/runner/policy.json";

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read trust policy `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("trust policy `{path}` is malformed: {cause}")]
    Malformed {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("trust policy `{path}`: entry `{scope}`: {what}")]
    Entry {
        path: PathBuf,
        scope: String,
        what: String,
    },
    #[error("trust policy `{path}`: key of `{scope}`")]
    Cosign {
        path: PathBuf,
        scope: String,
        #[source]
        source: cosign::CosignError,
    },
    #[error("trust policy `{path}`: key of `{scope}`")]
    Minisign {
        path: PathBuf,
        scope: String,
        #[source]
        source: minisign::MinisignError,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Default_ {
    #[default]
    Reject,
    Warn,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    scope: String,
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    insecure_accept_unsigned: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: Default_,
    #[serde(default)]
    images: Vec<Entry>,
    #[serde(default)]
    files: Vec<Entry>,
}

/// A loaded policy.
pub struct Policy {
    path: PathBuf,
    file: File,
}

/// What the policy says about one package.
pub enum Requirement<K> {
    /// A valid signature by one of these keys, else refuse. `scope` names the entry.
    Signed { scope: String, keys: Vec<K> },
    /// Run it; no signature is needed and none is checked.
    AcceptUnsigned,
    /// Nothing covers it: check nothing, run it, say so on stderr.
    Warn,
    /// Nothing covers it and the default is to refuse.
    Reject,
}

/// Does `scope` contain `name`, on `/` boundaries?
fn contains(scope: &str, name: &str) -> bool {
    let scope = scope.trim_end_matches('/');
    name == scope
        || name
            .strip_prefix(scope)
            .is_some_and(|rest| rest.starts_with('/') || scope.is_empty())
}

impl Policy {
    /// The policy at `explicit`, else at [`DEFAULT_PATH`] if it exists, else none.
    pub fn load(explicit: Option<&Path>) -> Result<Option<Policy>, PolicyError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_PATH).exists() => DEFAULT_PATH.into(),
            None => return Ok(None),
        };
        let text = std::fs::read(&path).map_err(|source| PolicyError::Read {
            path: path.clone(),
            source,
        })?;
        let file: File = serde_json::from_slice(&text).map_err(|cause| PolicyError::Malformed {
            path: path.clone(),
            cause,
        })?;
        for e in file.images.iter().chain(&file.files) {
            let what = match (e.keys.is_empty(), e.insecure_accept_unsigned) {
                (true, false) => "list `keys`, or set `insecure_accept_unsigned`",
                (false, true) => "`keys` and `insecure_accept_unsigned` contradict each other",
                _ => continue,
            };
            return Err(PolicyError::Entry {
                path: path.clone(),
                scope: e.scope.clone(),
                what: what.into(),
            });
        }
        Ok(Some(Policy { path, file }))
    }

    fn entry<'a>(entries: &'a [Entry], name: &str) -> Option<&'a Entry> {
        entries
            .iter()
            .filter(|e| contains(&e.scope, name))
            .max_by_key(|e| e.scope.trim_end_matches('/').len())
    }

    fn fallback<K>(&self) -> Requirement<K> {
        match self.file.default {
            Default_::Reject => Requirement::Reject,
            Default_::Warn => Requirement::Warn,
        }
    }

    /// A key string: inline, or a path relative to the policy file.
    fn key_text(&self, key: &str, inline: bool) -> Result<(String, String), std::io::Error> {
        if inline {
            return Ok((key.to_string(), format!("inline key {}", short(key))));
        }
        let base = self.path.parent().unwrap_or(Path::new("."));
        let path = base.join(key);
        Ok((std::fs::read_to_string(&path)?, path.display().to_string()))
    }

    /// What it takes to run the image `name` (`host[:port]/repository`).
    pub fn for_image(&self, name: &str) -> Result<Requirement<cosign::PublicKey>, PolicyError> {
        let Some(entry) = Self::entry(&self.file.images, name) else {
            return Ok(self.fallback());
        };
        if entry.insecure_accept_unsigned {
            return Ok(Requirement::AcceptUnsigned);
        }
        let err = |source| PolicyError::Cosign {
            path: self.path.clone(),
            scope: entry.scope.clone(),
            source,
        };
        let mut keys = Vec::new();
        for k in &entry.keys {
            let (text, label) = self
                .key_text(k, k.trim_start().starts_with("-----BEGIN"))
                .map_err(|source| {
                    err(cosign::CosignError::Read {
                        path: k.into(),
                        source,
                    })
                })?;
            keys.push(cosign::PublicKey::from_pem(&text, &label).map_err(err)?);
        }
        Ok(Requirement::Signed {
            scope: entry.scope.clone(),
            keys,
        })
    }

    /// What it takes to run the package file at `path` (made absolute by the caller).
    pub fn for_file(&self, path: &Path) -> Result<Requirement<minisign::PublicKey>, PolicyError> {
        let name = path.to_string_lossy();
        let Some(entry) = Self::entry(&self.file.files, &name) else {
            return Ok(self.fallback());
        };
        if entry.insecure_accept_unsigned {
            return Ok(Requirement::AcceptUnsigned);
        }
        let err = |source| PolicyError::Minisign {
            path: self.path.clone(),
            scope: entry.scope.clone(),
            source,
        };
        let mut keys = Vec::new();
        for k in &entry.keys {
            // A minisign public key in base64 is 56 characters starting with `RW`.
            let inline = k.len() == 56
                && k.starts_with("RW")
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
            let (text, label) = self.key_text(k, inline).map_err(|source| {
                err(minisign::MinisignError::Read {
                    path: k.into(),
                    source,
                })
            })?;
            keys.push(minisign::PublicKey::parse(&text, &label).map_err(err)?);
        }
        Ok(Requirement::Signed {
            scope: entry.scope.clone(),
            keys,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The first characters of an inline key, enough to recognise it.
fn short(key: &str) -> String {
    let body: String = key
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let body = if body.is_empty() { key } else { &body };
    format!("{}…", body.chars().take(16).collect::<String>())
}

/// Key names for a message: `a.pub, b.pub`.
pub fn names<'a>(names: impl Iterator<Item = &'a str>) -> String {
    names.collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert!(contains("localhost:5000", "localhost:5000/a/b"));
        assert!(contains("localhost:5000/a", "localhost:5000/a"));
        assert!(contains("localhost:5000/a/", "localhost:5000/a/b"));
        assert!(!contains("localhost:5000/a", "localhost:5000/ab"));
        assert!(!contains("localhost:500", "localhost:5000/a"));
        assert!(contains("/opt/pkgs", "/opt/pkgs/x.json"));
    }

    #[test]
    fn longest_scope_decides() {
        let dir = tempfile::tempdir().unwrap();
        let (_, public) = cosign::keygen(&dir.path().join("k")).unwrap();
        let policy = dir.path().join("policy.json");
        std::fs::write(
            &policy,
            format!(
                r#"{{"default": "warn", "images": [
                    {{"scope": "localhost:5000", "insecure_accept_unsigned": true}},
                    {{"scope": "localhost:5000/signed", "keys": ["{}"]}}]}}"#,
                public.file_name().unwrap().to_string_lossy()
            ),
        )
        .unwrap();
        let p = Policy::load(Some(&policy)).unwrap().unwrap();
        assert!(matches!(
            p.for_image("localhost:5000/signed/x").unwrap(),
            Requirement::Signed { keys, .. } if keys.len() == 1
        ));
        assert!(matches!(
            p.for_image("localhost:5000/other").unwrap(),
            Requirement::AcceptUnsigned
        ));
        assert!(matches!(
            p.for_image("example.com/x").unwrap(),
            Requirement::Warn
        ));
        assert!(matches!(
            p.for_file(Path::new("/x.json")).unwrap(),
            Requirement::Warn
        ));
        std::fs::write(&policy, r#"{"images": [{"scope": "a.example"}]}"#).unwrap();
        let err = Policy::load(Some(&policy)).err().unwrap().to_string();
        assert!(err.contains("list `keys`"), "{err}");
        std::fs::write(&policy, r#"{"imagez": []}"#).unwrap();
        assert!(Policy::load(Some(&policy)).is_err());
    }
}

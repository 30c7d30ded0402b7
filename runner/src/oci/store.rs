//! The local store: an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/<hex>`)
//! that holds every image and signature the runner pulled, so a tag keeps resolving and a
//! package keeps running without the registry. Every blob is written under its digest
//! after the bytes were hashed, and hashed again when read. `index.json` names what the
//! store holds with `org.opencontainers.image.ref.name` = the full reference
//! (`localhost:5000/tools/sigsnoop:1.0`, or `…:sha256-<hex>.sig` for signatures).
//!
//! Where it lives: `--store DIR`, else `$RUNNER_STORE`, else `/var/lib/runner/store` for
//! root and `$XDG_DATA_HOME/runner/store` (`~/.local/share/runner/store`) for others.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::oci::media::{self, Descriptor, Index, Manifest, MAX_PACKAGE, REF_NAME};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("local store `{path}`: {what}")]
    Io {
        path: PathBuf,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("local store `{path}`: `index.json` is not a valid OCI index: {cause}")]
    BadIndex {
        path: PathBuf,
        cause: serde_json::Error,
    },
    #[error("local store: blob {digest} is missing")]
    Missing { digest: String },
    #[error("local store: blob {digest} is corrupt (its content hashes to {actual})")]
    Corrupt { digest: String, actual: String },
    #[error("local store: blob {digest} is {size} bytes, more than the limit of {limit}")]
    TooBig {
        digest: String,
        size: u64,
        limit: u64,
    },
    #[error("image archive `{path}`: {what}")]
    Archive { path: PathBuf, what: String },
}

/// An open local store.
pub struct Store {
    root: PathBuf,
}

/// The directory the store lives in when neither `--store` nor `$RUNNER_STORE` says.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("RUNNER_STORE").filter(|d| !d.is_empty()) {
        return dir.into();
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return "/var/lib/runner/store".into();
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("runner/store")
}

fn hex_of(digest: &str) -> Option<&str> {
    media::valid_digest_hex(digest)
}

/// An exclusive lock on the store while `index.json` is read, changed and written.
struct Lock(fs::File);

impl Drop for Lock {
    fn drop(&mut self) {
        // SAFETY: a valid open file descriptor.
        unsafe { libc::flock(self.0.as_raw_fd(), libc::LOCK_UN) };
    }
}

impl Store {
    /// Open the store, creating an empty layout if the directory has none.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        let store = Store { root: root.into() };
        let blobs = root.join("blobs/sha256");
        fs::create_dir_all(&blobs).map_err(|e| store.io("cannot create it", e))?;
        let layout = root.join("oci-layout");
        if !layout.exists() {
            store.write_atomic(&layout, br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        }
        if !root.join("index.json").exists() {
            store.save_index(&[])?;
        }
        Ok(store)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn io(&self, what: &str, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.root.clone(),
            what: what.into(),
            source,
        }
    }

    fn lock(&self) -> Result<Lock, StoreError> {
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join(".lock"))
            .map_err(|e| self.io("cannot open its lock file", e))?;
        // SAFETY: a valid open file descriptor.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(self.io("cannot lock it", std::io::Error::last_os_error()));
        }
        Ok(Lock(file))
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
        let dir = path.parent().unwrap_or(&self.root);
        let mut tmp = tempfile::NamedTempFile::new_in(dir)
            .map_err(|e| self.io("cannot create a file in it", e))?;
        tmp.write_all(bytes)
            .map_err(|e| self.io("cannot write to it", e))?;
        tmp.persist(path)
            .map_err(|e| self.io("cannot write to it", e.error))?;
        Ok(())
    }

    fn blob_path(&self, hex: &str) -> PathBuf {
        self.root.join("blobs/sha256").join(hex)
    }

    pub fn has(&self, digest: &str) -> bool {
        hex_of(digest).is_some_and(|h| self.blob_path(h).is_file())
    }

    /// Store bytes under their digest; returns the digest.
    pub fn put(&self, bytes: &[u8]) -> Result<String, StoreError> {
        let digest = media::digest_of(bytes);
        if !self.has(&digest) {
            let hex = hex_of(&digest).expect("a computed digest is valid");
            self.write_atomic(&self.blob_path(hex), bytes)?;
        }
        Ok(digest)
    }

    /// Store bytes that must hash to `digest`.
    pub fn put_expected(&self, digest: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let actual = media::digest_of(bytes);
        if actual != digest {
            return Err(StoreError::Corrupt {
                digest: digest.into(),
                actual,
            });
        }
        self.put(bytes).map(drop)
    }

    /// Read a blob, at most `limit` bytes, and check it still hashes to its digest.
    pub fn get(&self, digest: &str, limit: u64) -> Result<Vec<u8>, StoreError> {
        let missing = || StoreError::Missing {
            digest: digest.into(),
        };
        let hex = hex_of(digest).ok_or_else(missing)?;
        let file = match fs::File::open(self.blob_path(hex)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(self.io(&format!("cannot read blob {digest}"), e)),
        };
        let mut bytes = Vec::new();
        file.take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| self.io(&format!("cannot read blob {digest}"), e))?;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooBig {
                digest: digest.into(),
                size: bytes.len() as u64,
                limit,
            });
        }
        let actual = media::digest_of(&bytes);
        if actual != digest {
            return Err(StoreError::Corrupt {
                digest: digest.into(),
                actual,
            });
        }
        Ok(bytes)
    }

    fn load_index(&self) -> Result<Vec<Descriptor>, StoreError> {
        let path = self.root.join("index.json");
        let text = fs::read(&path).map_err(|e| self.io("cannot read index.json", e))?;
        let index: Index = serde_json::from_slice(&text).map_err(|cause| StoreError::BadIndex {
            path: self.root.clone(),
            cause,
        })?;
        Ok(index.manifests)
    }

    fn save_index(&self, manifests: &[Descriptor]) -> Result<(), StoreError> {
        let index = Index {
            schema_version: 2,
            media_type: media::INDEX.into(),
            manifests: manifests.to_vec(),
            annotations: Default::default(),
        };
        let mut text = serde_json::to_vec_pretty(&index).expect("an index serializes");
        text.push(b'\n');
        self.write_atomic(&self.root.join("index.json"), &text)
    }

    /// Point the name `name` at `descriptor`, replacing what it named before.
    pub fn tag(&self, name: &str, descriptor: &Descriptor) -> Result<(), StoreError> {
        let _lock = self.lock()?;
        let mut manifests = self.load_index()?;
        manifests.retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(name));
        let mut entry = descriptor.clone();
        entry.annotations.insert(REF_NAME.into(), name.into());
        manifests.push(entry);
        self.save_index(&manifests)
    }

    /// What `name` points at in the store.
    pub fn lookup(&self, name: &str) -> Result<Option<Descriptor>, StoreError> {
        Ok(self
            .load_index()?
            .into_iter()
            .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(name)))
    }

    /// Every digest reachable from `digest`: itself, and for an index or a manifest
    /// what it refers to. Missing blobs are an error.
    pub fn closure(&self, digest: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut todo = vec![digest.to_string()];
        while let Some(d) = todo.pop() {
            if out.contains(&d) {
                continue;
            }
            if !self.has(&d) {
                return Err(StoreError::Missing { digest: d });
            }
            // Documents are small; a package layer is not a document and is not parsed.
            if let Ok(bytes) = self.get(&d, media::MAX_DOCUMENT) {
                if let Ok(index) = serde_json::from_slice::<Index>(&bytes) {
                    todo.extend(index.manifests.into_iter().map(|m| m.digest));
                } else if let Ok(m) = serde_json::from_slice::<Manifest>(&bytes) {
                    todo.push(m.config.digest);
                    todo.extend(m.layers.into_iter().map(|l| l.digest));
                }
            }
            out.push(d);
        }
        Ok(out)
    }

    /// Write the named entries and every blob they reach as an OCI layout tar.
    pub fn export(&self, names: &[String], out: &Path) -> Result<usize, StoreError> {
        let all = self.load_index()?;
        let entries: Vec<Descriptor> = all
            .into_iter()
            .filter(|d| {
                d.annotations
                    .get(REF_NAME)
                    .is_some_and(|n| names.contains(n))
            })
            .collect();
        let mut digests: Vec<String> = Vec::new();
        for e in &entries {
            for d in self.closure(&e.digest)? {
                if !digests.contains(&d) {
                    digests.push(d);
                }
            }
        }
        let archive_err = |what: String| StoreError::Archive {
            path: out.into(),
            what,
        };
        let file = fs::File::create(out).map_err(|e| archive_err(format!("cannot create: {e}")))?;
        let mut tar = tar::Builder::new(file);
        let mut add = |name: &str, bytes: &[u8]| {
            let mut header = tar::Header::new_ustar();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_mtime(0);
            header.set_cksum();
            tar.append_data(&mut header, name, bytes)
                .map_err(|e| archive_err(format!("cannot write: {e}")))
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
        let index = media::to_bytes(&Index {
            schema_version: 2,
            media_type: media::INDEX.into(),
            manifests: entries,
            annotations: Default::default(),
        });
        add("index.json", &index)?;
        for d in &digests {
            let bytes = self.get(d, MAX_PACKAGE)?;
            add(&format!("blobs/sha256/{}", hex_of(d).unwrap()), &bytes)?;
        }
        tar.into_inner()
            .and_then(|mut f| f.flush())
            .map_err(|e| archive_err(format!("cannot write: {e}")))?;
        Ok(digests.len())
    }

    /// Read an OCI layout tar: every blob is checked against its name, then the names in
    /// its `index.json` whose content arrived whole are added. Returns those names.
    pub fn import(&self, path: &Path) -> Result<Vec<String>, StoreError> {
        let archive_err = |what: String| StoreError::Archive {
            path: path.into(),
            what,
        };
        let file = fs::File::open(path).map_err(|e| archive_err(format!("cannot open: {e}")))?;
        let mut tar = tar::Archive::new(file);
        let mut index = None;
        let entries = tar
            .entries()
            .map_err(|e| archive_err(format!("not a tar archive: {e}")))?;
        for entry in entries {
            let entry = entry.map_err(|e| archive_err(format!("not a tar archive: {e}")))?;
            let name = entry
                .path()
                .map_err(|e| archive_err(format!("bad entry name: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if entry.header().entry_type().is_dir() || name == "oci-layout" {
                continue;
            }
            let size = entry.header().size().unwrap_or(u64::MAX);
            if size > MAX_PACKAGE {
                return Err(archive_err(format!(
                    "`{name}` is {size} bytes, more than the limit of {MAX_PACKAGE}"
                )));
            }
            let mut bytes = Vec::new();
            entry
                .take(MAX_PACKAGE + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| archive_err(format!("cannot read `{name}`: {e}")))?;
            if name == "index.json" {
                let parsed: Index = serde_json::from_slice(&bytes)
                    .map_err(|e| archive_err(format!("index.json is not an OCI index: {e}")))?;
                index = Some(parsed);
            } else if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let digest = format!("sha256:{hex}");
                if hex_of(&digest).is_none() {
                    return Err(archive_err(format!("`{name}` is not a sha256 blob name")));
                }
                self.put_expected(&digest, &bytes)?;
            } else {
                return Err(archive_err(format!(
                    "unexpected entry `{name}` (an OCI layout has oci-layout, index.json and blobs/sha256/)"
                )));
            }
        }
        let index = index.ok_or_else(|| archive_err("it has no index.json".into()))?;
        let mut names = Vec::new();
        for d in index.manifests {
            let Some(name) = d.annotations.get(REF_NAME).cloned() else {
                continue;
            };
            self.closure(&d.digest)?;
            self.tag(&name, &d)?;
            names.push(name);
        }
        Ok(names)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blobs_are_checked_both_ways() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = store.put(b"hello").unwrap();
        assert_eq!(store.get(&d, 100).unwrap(), b"hello");
        assert!(matches!(store.get(&d, 3), Err(StoreError::TooBig { .. })));
        let hex = d.strip_prefix("sha256:").unwrap();
        fs::write(dir.path().join("blobs/sha256").join(hex), b"jello").unwrap();
        let err = store.get(&d, 100).unwrap_err();
        assert!(err.to_string().contains("is corrupt"), "{err}");
        assert!(store.put_expected(&d, b"other").is_err());
        let missing = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(
            store.get(&missing, 100),
            Err(StoreError::Missing { .. })
        ));
    }

    #[test]
    fn names_export_and_import() {
        let a = tempfile::tempdir().unwrap();
        let store = Store::open(a.path()).unwrap();
        let layer = media::Blob::new(media::LAYER, b"{}".to_vec());
        let config = media::Blob::new(media::CONFIG, b"{\"c\":1}".to_vec());
        let manifest = Manifest {
            schema_version: 2,
            media_type: media::MANIFEST.into(),
            artifact_type: None,
            config: config.descriptor.clone(),
            layers: vec![layer.descriptor.clone()],
            annotations: Default::default(),
        };
        let manifest = media::Blob::new(media::MANIFEST, media::to_bytes(&manifest));
        for b in [&layer, &config, &manifest] {
            store.put(&b.bytes).unwrap();
        }
        store.tag("localhost:1/a:1", &manifest.descriptor).unwrap();
        store.tag("localhost:1/a:2", &manifest.descriptor).unwrap();
        assert_eq!(
            store.lookup("localhost:1/a:1").unwrap().unwrap().digest,
            manifest.descriptor.digest
        );
        assert_eq!(store.closure(&manifest.descriptor.digest).unwrap().len(), 3);
        let tar = a.path().join("x.tar");
        assert_eq!(store.export(&["localhost:1/a:1".into()], &tar).unwrap(), 3);
        let b = tempfile::tempdir().unwrap();
        let other = Store::open(b.path()).unwrap();
        assert_eq!(other.import(&tar).unwrap(), vec!["localhost:1/a:1"]);
        assert!(other.lookup("localhost:1/a:2").unwrap().is_none());
        assert_eq!(other.get(&layer.descriptor.digest, 10).unwrap(), b"{}");
    }
}

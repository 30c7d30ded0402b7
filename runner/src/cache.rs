//! The runner's cache: the headers `runner build` generates (`vmlinux.h` per kernel BTF) and
//! the kernel BTF subsets `runner run` makes ([`crate::run::kernel_btf`]), kept
//! trusting nothing it did not write itself: the directory is private (created 0700, owned
//! by this user, its parent not writable by others; never a shared `/tmp` path), files are
//! created under unpredictable names (`tempfile`, `O_EXCL`) and renamed into place, and
//! each starts with a line holding the sha256 of the rest, checked with the file's owner
//! and mode on every read. Anything that fails a check is not used; the cache is only ever
//! a shortcut, so a build or a run without one still works.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use crate::spec::package::sha256_hex;

const HEADER: &str = "/* runner cache: sha256 ";

/// This process's effective uid.
fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// The home directory of the effective user, from the password database.
fn home_of_euid() -> Option<PathBuf> {
    let mut buf = vec![0u8; 4096];
    // SAFETY: all-zero is a valid passwd to be filled in.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call; `buf` outlives the use of `pw`.
    let rc = unsafe {
        libc::getpwuid_r(
            euid(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 || found.is_null() || pw.pw_dir.is_null() {
        return None;
    }
    // SAFETY: pw_dir points into `buf`, a NUL-terminated string.
    let dir = unsafe { std::ffi::CStr::from_ptr(pw.pw_dir) };
    use std::os::unix::ffi::OsStrExt as _;
    Some(PathBuf::from(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

/// Where the cache would be: `$RUNNER_CACHE_DIR`, `$XDG_CACHE_HOME/runner`, or
/// `~/.cache/runner` (HOME, else the user's home in the password database).
fn location() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("RUNNER_CACHE_DIR") {
        return Some(dir.into());
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir).join("runner"));
    }
    let home = std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
        .or_else(home_of_euid)?;
    Some(home.join(".cache/runner"))
}

/// Why `dir` cannot be trusted as a private directory, if it cannot.
fn distrust(dir: &Path) -> Option<String> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) => return Some(e.to_string()),
    };
    if !meta.file_type().is_dir() {
        return Some("not a directory (or a symbolic link)".into());
    }
    if meta.uid() != euid() {
        return Some(format!("owned by uid {}, not {}", meta.uid(), euid()));
    }
    if meta.mode() & 0o077 != 0
        && std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).is_err()
    {
        return Some(format!(
            "mode {:o} and cannot be made 0700",
            meta.mode() & 0o777
        ));
    }
    let parent = dir.parent()?;
    let meta = std::fs::metadata(parent).ok()?;
    let others_write = meta.mode() & 0o022 != 0 && meta.mode() & libc::S_ISVTX == 0;
    if others_write || (meta.uid() != euid() && meta.uid() != 0) {
        return Some(format!(
            "its parent {} can be changed by others",
            parent.display()
        ));
    }
    None
}

/// The private cache directory, created if needed; `None` (said once) when there is none
/// to trust.
fn dir() -> Option<PathBuf> {
    trusted_dir(true)
}

/// The same, saying nothing: for shortcuts a run takes on its own, where a cache that cannot
/// be used (say a `HOME` this user may not write) is no news.
fn trusted_dir(say_why: bool) -> Option<PathBuf> {
    static WARNED: std::sync::Once = std::sync::Once::new();
    let dir = location()?;
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    match distrust(&dir) {
        None => Some(dir),
        Some(_) if !say_why => None,
        Some(why) => {
            WARNED
                .call_once(|| crate::note!("runner: not using the cache {}: {why}", dir.display()));
            None
        }
    }
}

/// The cached content under `name`, if it is there, ours, not writable by others and
/// intact.
pub fn load(name: &str) -> Option<Vec<u8>> {
    load_from(dir()?, name)
}

/// [`load`], saying nothing when there is no cache to trust.
pub fn load_quietly(name: &str) -> Option<Vec<u8>> {
    load_from(trusted_dir(false)?, name)
}

fn load_from(dir: PathBuf, name: &str) -> Option<Vec<u8>> {
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.file_type().is_file() || meta.uid() != euid() || meta.mode() & 0o022 != 0 {
        return None;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes).ok()?;
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let first = std::str::from_utf8(&bytes[..newline]).ok()?;
    let hash = first.strip_prefix(HEADER)?.strip_suffix(" */")?.to_string();
    let content = bytes.split_off(newline + 1);
    (sha256_hex(&content) == hash).then_some(content)
}

/// Keep `content` under `name`, if there is a cache; failures only cost the shortcut.
pub fn store(name: &str, content: &[u8]) {
    if let Some(dir) = dir() {
        store_in(&dir, name, content);
    }
}

/// [`store`], saying nothing when there is no cache to trust.
pub fn store_quietly(name: &str, content: &[u8]) {
    if let Some(dir) = trusted_dir(false) {
        store_in(&dir, name, content);
    }
}

fn store_in(dir: &Path, name: &str, content: &[u8]) {
    let write = || -> std::io::Result<()> {
        let mut tmp = tempfile::Builder::new()
            .prefix(".runner-")
            .tempfile_in(dir)?;
        writeln!(tmp, "{HEADER}{} */", sha256_hex(content))?;
        tmp.write_all(content)?;
        tmp.as_file().sync_all()?;
        tmp.persist(dir.join(name))?;
        Ok(())
    };
    let _ = write();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_in_the_cache_reads_back_only_while_it_is_intact() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache");
        // No other unit test reads RUNNER_CACHE_DIR.
        std::env::set_var("RUNNER_CACHE_DIR", &dir);
        store("a.h", b"struct a { int x; };\n");
        let meta = std::fs::metadata(&dir).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o700);
        assert_eq!(load("a.h").unwrap(), b"struct a { int x; };\n");
        // Changed behind our back: not used.
        let path = dir.join("a.h");
        let mut text = std::fs::read(&path).unwrap();
        let last = text.len() - 3;
        text[last] ^= 1;
        std::fs::write(&path, &text).unwrap();
        assert_eq!(load("a.h"), None);
        // A symbolic link in place of a file: not followed.
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", &path).unwrap();
        assert_eq!(load("a.h"), None);
        // Others may write the directory: it is made private again.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        store("b.h", b"b");
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        assert_eq!(load("b.h").unwrap(), b"b");
        std::env::remove_var("RUNNER_CACHE_DIR");
    }
}

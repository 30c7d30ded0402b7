//! Confining the compiler. A source given to `runner build` may come from anyone, and C
//! can read files at compile time (`#include "/etc/shadow"`, `#embed`): run as root,
//! clang would put any file root can read into the package. So clang runs under a Landlock
//! ruleset (Linux 5.13 and later; the kernel enforces it for root too) that lets it read
//! only what a build needs: the toolchain (`/usr`, `/lib*`, the dynamic loader's cache),
//! the source's directory (and files anyone may read that links in it point to), the `-I`
//! directories of `--cflag`, and the runner's own work
//! directory, which is also the one place it may write. Where the kernel has no Landlock
//! the compile runs unconfined, and a build as root says so.

use std::ffi::CString;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What `runner build` says once when run as root.
pub const ROOT_NOTE: &str = "runner: building as root: clang may read only the toolchain, the source's directory (and files anyone may read that its links point to) and the -I directories (Landlock)";

// From linux/landlock.h (ABI 1).
const ACCESS_EXECUTE: u64 = 1 << 0;
const ACCESS_WRITE_FILE: u64 = 1 << 1;
const ACCESS_READ_FILE: u64 = 1 << 2;
const ACCESS_READ_DIR: u64 = 1 << 3;
const ACCESS_REMOVE_FILE: u64 = 1 << 5;
const ACCESS_MAKE_REG: u64 = 1 << 8;
/// Every file system access ABI 1 knows: all of them are refused unless a rule allows.
const HANDLED: u64 = (1 << 13) - 1;
const READ: u64 = ACCESS_EXECUTE | ACCESS_READ_FILE | ACCESS_READ_DIR;
const READ_WRITE: u64 = READ | ACCESS_WRITE_FILE | ACCESS_MAKE_REG | ACCESS_REMOVE_FILE;
const RULE_PATH_BENEATH: libc::c_int = 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
}

#[repr(C, packed)]
struct PathBeneath {
    allowed_access: u64,
    parent_fd: i32,
}

/// What a confined build may read, and where it may write.
pub struct Confinement {
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
}

impl Confinement {
    /// The toolchain's directories, `extra` readable, `work` read-write.
    pub fn for_compiler(extra: Vec<PathBuf>, work: &Path) -> Confinement {
        let mut read: Vec<PathBuf> = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/opt"]
            .iter()
            .chain(&["/etc/ld.so.cache", "/dev/urandom", "/proc/self"])
            .map(PathBuf::from)
            .collect();
        read.extend(extra);
        Confinement {
            read,
            write: vec![work.to_path_buf(), PathBuf::from("/dev/null")],
        }
    }
}

/// Make `cmd` run under `confinement`. Returns the ruleset, which must stay open until
/// the command has started, or `None` when this kernel offers no Landlock (the command
/// then runs unconfined).
pub fn confine(cmd: &mut Command, confinement: &Confinement) -> std::io::Result<Option<OwnedFd>> {
    let Some(ruleset) = ruleset(confinement)? else {
        return Ok(None);
    };
    let fd = ruleset.as_raw_fd();
    // SAFETY: the closure calls only prctl and a raw syscall, both async-signal-safe, on a
    // descriptor the child inherits (the caller keeps it open until the spawn returns).
    unsafe {
        cmd.pre_exec(move || restrict_self(fd));
    }
    Ok(Some(ruleset))
}

/// In the child: no new privileges (Landlock requires it of a process without
/// CAP_SYS_ADMIN), then the ruleset.
fn restrict_self(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: landlock_restrict_self takes a ruleset descriptor and flags.
    if unsafe { libc::syscall(libc::SYS_landlock_restrict_self, fd, 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The ruleset for `confinement`, or `None` without Landlock.
fn ruleset(confinement: &Confinement) -> std::io::Result<Option<OwnedFd>> {
    let attr = RulesetAttr {
        handled_access_fs: HANDLED,
    };
    // SAFETY: `attr` is valid for its size; the kernel copies it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            std::mem::size_of::<RulesetAttr>(),
            0,
        )
    };
    if fd < 0 {
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOSYS | libc::EOPNOTSUPP) => Ok(None),
            _ => Err(e),
        };
    }
    // SAFETY: `fd` was just created and is owned by nothing else.
    let ruleset = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    for (paths, access) in [(&confinement.read, READ), (&confinement.write, READ_WRITE)] {
        for path in paths {
            allow(&ruleset, path, access)?;
        }
    }
    Ok(Some(ruleset))
}

/// Allow `access` beneath `path` (only the file accesses when it is a file); a path that
/// does not exist is skipped.
fn allow(ruleset: &OwnedFd, path: &Path, access: u64) -> std::io::Result<()> {
    let Ok(c_path) = CString::new(path.as_os_str().as_bytes()) else {
        return Ok(());
    };
    // SAFETY: `c_path` is a valid C string.
    let fd = unsafe { libc::open(c_path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
    if fd < 0 {
        return Ok(());
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let parent = unsafe { OwnedFd::from_raw_fd(fd) };
    let file_only = ACCESS_EXECUTE | ACCESS_READ_FILE | ACCESS_WRITE_FILE;
    let access = if path.is_dir() {
        access
    } else {
        access & file_only
    };
    let rule = PathBeneath {
        allowed_access: access,
        parent_fd: parent.as_raw_fd(),
    };
    // SAFETY: `rule` is valid for the call; both descriptors are open.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset.as_raw_fd(),
            RULE_PATH_BENEATH,
            &rule as *const PathBeneath,
            0,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The files that symbolic links directly in `dir` point to, where anyone may read them
/// (a link to a shared header, `vmlinux.h -> ../vmlinux.h`): a source may use those, and a
/// link planted to a secret (mode 0600, 0640) still leads nowhere.
pub fn linked_public_files(dir: &Path) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| std::fs::canonicalize(e.path()).ok())
        .filter(|target| {
            std::fs::metadata(target)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o004 != 0)
        })
        .collect()
}

/// Whether `file`, included by the source `source`, lies in the source's directory or
/// may be read by anyone.
pub fn may_read_beside(source: &Path, file: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    let Ok(file) = std::fs::canonicalize(file) else {
        return false;
    };
    let beside = source
        .parent()
        .and_then(|d| std::fs::canonicalize(d).ok())
        .is_some_and(|dir| file.starts_with(dir));
    beside || std::fs::metadata(&file).is_ok_and(|m| m.permissions().mode() & 0o004 != 0)
}

/// The `-I`, `-isystem`, `-iquote` and `-idirafter` directories of clang flags.
pub fn include_dirs(cflags: &[String]) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut flags = cflags.iter();
    while let Some(flag) = flags.next() {
        for prefix in ["-I", "-isystem", "-iquote", "-idirafter"] {
            if let Some(rest) = flag.strip_prefix(prefix) {
                let dir = if rest.is_empty() {
                    flags.next().cloned()
                } else {
                    Some(rest.to_string())
                };
                dirs.extend(dir.map(PathBuf::from));
                break;
            }
        }
    }
    dirs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_dirs_of_cflags() {
        let flags: Vec<String> = ["-I/a", "-I", "/b", "-DX", "-isystem/c", "-O2"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            include_dirs(&flags),
            vec![
                PathBuf::from("/a"),
                PathBuf::from("/b"),
                PathBuf::from("/c")
            ]
        );
    }
}

//! The subset of this kernel's BTF that a package's CO-RE relocations need
//! ([`crate::spec::core_btf`]), kept in the runner's private cache and handed to libbpf in
//! place of `/sys/kernel/btf/vmlinux`. Without it libbpf parses all 5 MiB of the kernel's
//! BTF on every start; with it, a few KiB: starting is faster and the peak RSS smaller.
//!
//! A subset is made once per package and boot, after a run that loaded without one, in a
//! thread of low priority that does not hold up tracing; where none can be made (or libbpf
//! could not use it), the entry says so, and later runs on that boot do not try again. It is keyed by the object's
//! sha256 and stamped with the boot id (the kernel's BTF cannot change without a reboot);
//! it is read through the cache's checks (ours, private, checksum intact) into a memfd
//! that libbpf opens by path. A subset that libbpf cannot use is forgotten and the load
//! retried with the full BTF, so the cache is only ever a shortcut.

use std::io::Write as _;
use std::os::fd::{AsRawFd as _, FromRawFd as _};
use std::path::PathBuf;

use crate::cache;
use crate::spec::core_btf;
use crate::spec::verify::Verified;

const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// A subset ready for libbpf: in a memfd, open as long as this lives.
pub(crate) struct Subset {
    _file: std::fs::File,
    path: PathBuf,
    len: usize,
}

impl Subset {
    /// What to give libbpf as `btf_custom_path`.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string(BOOT_ID).ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// The cache entry of a package's object (the subset's format has a version of its own).
fn entry(package: &Verified) -> String {
    let sha = &package.package().object.sha256;
    format!("core-btf-v1-{}", &sha[..sha.len().min(32)])
}

/// What the cache holds for a package on this boot.
pub(crate) enum Cached {
    Subset(Subset),
    /// None can be used: the runs use the full kernel BTF.
    NoSubset,
    /// Nothing yet: the next run that loads makes it ([`remember`]).
    Missing,
}

/// What the cache holds for this package and boot.
pub fn cached(package: &Verified) -> Cached {
    let Some(content) = cache::load_quietly(&entry(package)) else {
        return Cached::Missing;
    };
    let Some(newline) = content.iter().position(|&b| b == b'\n') else {
        return Cached::Missing;
    };
    let (stamp, btf) = (&content[..newline], &content[newline + 1..]);
    if boot_id().is_none_or(|boot| stamp != boot.as_bytes()) {
        return Cached::Missing;
    }
    if btf.is_empty() {
        return Cached::NoSubset;
    }
    subset(btf).map_or(Cached::NoSubset, Cached::Subset)
}

/// `btf` in a memfd.
fn subset(btf: &[u8]) -> Option<Subset> {
    // SAFETY: the name is a NUL-terminated literal; the flags are valid.
    let fd = unsafe { libc::memfd_create(c"runner-core-btf".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return None;
    }
    // SAFETY: `fd` was just created and nothing else owns it.
    let mut file = unsafe { std::fs::File::from_raw_fd(fd) };
    file.write_all(btf).ok()?;
    Some(Subset {
        path: PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd())),
        _file: file,
        len: btf.len(),
    })
}

/// Make and keep the subset for this package, in the background, if it has CO-RE
/// relocations ([`Cached::Missing`]). Failures only cost the shortcut.
pub fn remember(package: &Verified) {
    let object = package.object();
    if !core_btf::relocates(object) {
        return;
    }
    let (name, object) = (entry(package), object.to_vec());
    // The thread starts with every signal blocked, so that SIGINT and the others reach the
    // reader's signalfd and never this thread's default action.
    // SAFETY: all-zero is a valid sigset_t to fill; the masks live across the calls.
    let mut all: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    let mut before: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to sigset_t values owned here.
    unsafe {
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut before);
    }
    let spawned = std::thread::Builder::new()
        .name("core-btf".into())
        .spawn(move || {
            // SAFETY: plain syscalls on this thread; a failure leaves the priority as it was.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 19) };
            if let Some(boot) = boot_id() {
                let subset = std::fs::read(KERNEL_BTF)
                    .ok()
                    .and_then(|kernel| core_btf::minimal(&object, &kernel).ok());
                store(&name, &boot, subset.as_deref().unwrap_or_default());
            }
        });
    // SAFETY: restores this thread's mask as it was.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &before, std::ptr::null_mut()) };
    drop(spawned);
}

/// Keep the entry `name`: the boot id, a newline, the subset (empty: none to use).
fn store(name: &str, boot: &str, subset: &[u8]) {
    let mut content = Vec::with_capacity(boot.len() + 1 + subset.len());
    content.extend_from_slice(boot.as_bytes());
    content.push(b'\n');
    content.extend_from_slice(subset);
    cache::store_quietly(name, &content);
}

/// Whether a failed load could come from the subset: libbpf failed its CO-RE relocations,
/// or a relocation found no candidate and left an instruction the verifier refuses (libbpf
/// poisons it with a call to function 0xbad2310, 195896080). Other failures (a missing
/// tracepoint, a program the kernel lacks) have nothing to do with it.
pub fn may_have_caused(error: &anyhow::Error) -> bool {
    let text = format!("{error:#}");
    text.contains("CO-RE") || text.contains("195896080")
}

/// Mark this package as having no usable subset on this boot (libbpf could not use it).
pub fn forget(package: &Verified) {
    if let Some(boot) = boot_id() {
        store(&entry(package), &boot, &[]);
    }
}

//! The names of the numbers the kernel hands a tracer: errno codes, signals, syscalls and
//! open(2) flags, for the value formats `errno`, `signal`, `syscall` and `flags:open`.
//! The errno and syscall tables are generated from the Linux UAPI headers by
//! `scripts/gen-names` and committed; signals and open flags are short enough to list here.
//!
//! Syscall numbers and some open flags differ between architectures: the tables of the
//! machine the runner runs on are used, since that is where the traced syscalls happen
//! (x86_64, or arm64's asm-generic numbering; on other architectures syscalls and open
//! flags are shown as numbers).

mod errno;
mod syscalls_generic;
mod syscalls_x86_64;

use std::fmt::Write as _;

/// The name of errno code `n` (`ENOENT` for 2), kernel-internal codes included
/// (`ERESTARTSYS` for 512).
pub fn errno(n: u64) -> Option<&'static str> {
    lookup(errno::ERRNO, n)
}

/// The number of errno name `name` (for parsing).
pub fn errno_number(name: &str) -> Option<u32> {
    errno::ERRNO
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(v, _)| *v)
}

/// The standard signals, 1 to 31 (the numbering x86_64 and arm64 share).
const SIGNALS: [&str; 31] = [
    "SIGHUP",
    "SIGINT",
    "SIGQUIT",
    "SIGILL",
    "SIGTRAP",
    "SIGABRT",
    "SIGBUS",
    "SIGFPE",
    "SIGKILL",
    "SIGUSR1",
    "SIGSEGV",
    "SIGUSR2",
    "SIGPIPE",
    "SIGALRM",
    "SIGTERM",
    "SIGSTKFLT",
    "SIGCHLD",
    "SIGCONT",
    "SIGSTOP",
    "SIGTSTP",
    "SIGTTIN",
    "SIGTTOU",
    "SIGURG",
    "SIGXCPU",
    "SIGXFSZ",
    "SIGVTALRM",
    "SIGPROF",
    "SIGWINCH",
    "SIGIO",
    "SIGPWR",
    "SIGSYS",
];

/// The highest real-time signal (`SIGRTMAX` of the kernel).
const SIGRTMAX: u64 = 64;

/// Signal `n` as bcc's `sigsnoop -n` names it: `SIGKILL`; `N/A` for 0 (no signal: a
/// kill(2) that only checks the target exists); `SIGNAL-34` for a real-time signal (the
/// kernel's 32 to 64; C libraries keep the first few for themselves, so `SIGRTMIN+n`
/// would depend on the library). `None` above 64.
pub fn signal(n: u64, out: &mut String) -> bool {
    match n {
        0 => out.push_str("N/A"),
        1..=31 => out.push_str(SIGNALS[n as usize - 1]),
        32..=SIGRTMAX => {
            let _ = write!(out, "SIGNAL-{n}");
        }
        _ => return false,
    }
    true
}

/// The number of signal name `name` (`SIGKILL`, or `KILL`).
pub fn signal_number(name: &str) -> Option<u32> {
    let name = name.strip_prefix("SIG").unwrap_or(name);
    SIGNALS
        .iter()
        .position(|s| s[3..] == *name)
        .map(|i| i as u32 + 1)
}

/// The syscall table of the machine the runner runs on.
fn syscalls() -> &'static [(u32, &'static str)] {
    if cfg!(target_arch = "x86_64") {
        syscalls_x86_64::SYSCALLS
    } else if cfg!(target_arch = "aarch64") {
        syscalls_generic::SYSCALLS
    } else {
        &[]
    }
}

/// The name of syscall `nr` on this machine (`openat` for 257 on x86_64).
pub fn syscall(nr: u64) -> Option<&'static str> {
    lookup(syscalls(), nr)
}

fn lookup(table: &'static [(u32, &'static str)], n: u64) -> Option<&'static str> {
    let n = u32::try_from(n).ok()?;
    table
        .binary_search_by_key(&n, |(v, _)| *v)
        .ok()
        .map(|i| table[i].1)
}

/// open(2) flags that are one bit each, in the order they are shown (octal values; the
/// four that arm64 places elsewhere are in [`open_arch`]).
const OPEN_BITS: &[(u64, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o20000, "FASYNC"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o10000000, "O_PATH"),
];

/// `O_DIRECT`, `O_LARGEFILE`, `O_DIRECTORY` and `O_NOFOLLOW` of this machine.
fn open_arch() -> [(u64, &'static str); 4] {
    if cfg!(target_arch = "aarch64") {
        [
            (0o200000, "O_DIRECT"),
            (0o400000, "O_LARGEFILE"),
            (0o40000, "O_DIRECTORY"),
            (0o100000, "O_NOFOLLOW"),
        ]
    } else {
        [
            (0o40000, "O_DIRECT"),
            (0o100000, "O_LARGEFILE"),
            (0o200000, "O_DIRECTORY"),
            (0o400000, "O_NOFOLLOW"),
        ]
    }
}

/// `__O_SYNC` (with `O_DSYNC` it is `O_SYNC`) and `__O_TMPFILE` (with `O_DIRECTORY` it is
/// `O_TMPFILE`).
const O_SYNC_BIT: u64 = 0o4000000;
const O_TMPFILE_BIT: u64 = 0o20000000;
const O_DSYNC: u64 = 0o10000;

/// open(2) flags as `O_RDONLY|O_CLOEXEC`: the access mode (`O_RDONLY`, `O_WRONLY`,
/// `O_RDWR`; `O_ACCMODE` for 3), then each flag set, `O_SYNC` and `O_TMPFILE` as the
/// pairs of bits they are, and any bit left over as an octal number (`0100000000`).
pub fn open_flags(v: u64, out: &mut String) {
    out.push_str(match v & 3 {
        0 => "O_RDONLY",
        1 => "O_WRONLY",
        2 => "O_RDWR",
        _ => "O_ACCMODE",
    });
    let mut rest = v & !3;
    let arch = open_arch();
    let directory = arch[2].0;
    let mut put = |bits: u64, name: &str, rest: &mut u64| {
        if bits != 0 && *rest & bits == bits {
            out.push('|');
            out.push_str(name);
            *rest &= !bits;
        }
    };
    put(O_SYNC_BIT | O_DSYNC, "O_SYNC", &mut rest);
    put(O_TMPFILE_BIT | directory, "O_TMPFILE", &mut rest);
    for (bits, name) in OPEN_BITS.iter().chain(arch.iter()) {
        put(*bits, name, &mut rest);
    }
    put(O_SYNC_BIT, "__O_SYNC", &mut rest);
    put(O_TMPFILE_BIT, "__O_TMPFILE", &mut rest);
    if rest != 0 {
        let _ = write!(out, "|0{rest:o}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(v: u64) -> String {
        let mut s = String::new();
        open_flags(v, &mut s);
        s
    }

    fn sig(n: u64) -> Option<String> {
        let mut s = String::new();
        signal(n, &mut s).then_some(s)
    }

    #[test]
    fn errno_names_include_the_kernel_internal_ones() {
        assert_eq!(errno(2), Some("ENOENT"));
        assert_eq!(errno(11), Some("EAGAIN"), "not its alias EWOULDBLOCK");
        assert_eq!(errno(133), Some("EHWPOISON"));
        assert_eq!(errno(512), Some("ERESTARTSYS"));
        assert_eq!(errno(524), Some("ENOTSUPP"));
        assert_eq!(errno(520), None);
        assert_eq!(errno(0), None);
        assert_eq!(errno(1 << 40), None);
        assert_eq!(errno_number("ESRCH"), Some(3));
    }

    #[test]
    fn signals_as_bcc_names_them() {
        assert_eq!(sig(0).as_deref(), Some("N/A"));
        assert_eq!(sig(9).as_deref(), Some("SIGKILL"));
        assert_eq!(sig(17).as_deref(), Some("SIGCHLD"));
        assert_eq!(sig(31).as_deref(), Some("SIGSYS"));
        assert_eq!(sig(32).as_deref(), Some("SIGNAL-32"));
        assert_eq!(sig(64).as_deref(), Some("SIGNAL-64"));
        assert_eq!(sig(65), None);
        assert_eq!(signal_number("SIGTERM"), Some(15));
        assert_eq!(signal_number("USR1"), Some(10));
        assert_eq!(signal_number("SIGFOO"), None);
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        for table in [
            errno::ERRNO,
            syscalls_x86_64::SYSCALLS,
            syscalls_generic::SYSCALLS,
        ] {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0));
        }
        // Both tables are complete enough to be the real ones.
        assert_eq!(lookup(syscalls_x86_64::SYSCALLS, 257), Some("openat"));
        assert_eq!(lookup(syscalls_x86_64::SYSCALLS, 62), Some("kill"));
        assert_eq!(lookup(syscalls_generic::SYSCALLS, 56), Some("openat"));
        assert_eq!(lookup(syscalls_generic::SYSCALLS, 129), Some("kill"));
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn open_flags_as_the_kernel_defines_them_on_x86_64() {
        assert_eq!(flags(0), "O_RDONLY");
        assert_eq!(flags(524288), "O_RDONLY|O_CLOEXEC");
        assert_eq!(flags(577), "O_WRONLY|O_CREAT|O_TRUNC");
        assert_eq!(flags(0o2 | 0o4010000), "O_RDWR|O_SYNC");
        assert_eq!(flags(0o10000), "O_RDONLY|O_DSYNC");
        assert_eq!(flags(0o20200002), "O_RDWR|O_TMPFILE");
        assert_eq!(
            flags(0o200000 | 0o400000),
            "O_RDONLY|O_DIRECTORY|O_NOFOLLOW"
        );
        assert_eq!(flags(0o4000000), "O_RDONLY|__O_SYNC");
        assert_eq!(flags(3 | 0o100000000), "O_ACCMODE|0100000000");
        assert_eq!(syscall(0), Some("read"));
        assert_eq!(syscall(100000), None);
    }
}

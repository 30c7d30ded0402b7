//! Which hooks this kernel can attach a program to, probed as libbpf-tools' front ends do
//! (`probe_tp_btf`, `fentry_can_attach`, `kprobe_exists`, `tracepoint_exists`): a BTF
//! tracepoint or an fentry/fexit hook by loading a two-instruction program for it and
//! attaching it for a moment; a raw tracepoint the same way; a tracepoint by its tracefs
//! directory; a kprobe by the kprobe PMU (or `kprobe_events`) and the symbol in kallsyms.
//! Other hooks are not probed: their load or attach says.

use std::ffi::CString;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::Path;

use libbpf_rs::libbpf_sys as sys;

use crate::kernel;
use crate::spec::package::{AttachKind, Program};

/// What a probe found out about a program's hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hook {
    Available,
    /// Missing, or it cannot be used here; why, in a few words.
    Missing(String),
}

/// Probes hooks; the kernel's implementation is [`Kernel`], tests use their own.
pub trait Hooks {
    fn probe(&self, program: &Program) -> Hook;
}

/// The running kernel.
pub struct Kernel;

impl Hooks for Kernel {
    fn probe(&self, program: &Program) -> Hook {
        let target = program.attach.target.as_str();
        let found = match program.attach.kind {
            AttachKind::Tracepoint => tracepoint(target),
            AttachKind::RawTracepoint => raw_tracepoint(target),
            AttachKind::TpBtf => tracing(target, sys::BPF_TRACE_RAW_TP),
            AttachKind::Fentry => tracing(target, sys::BPF_TRACE_FENTRY),
            AttachKind::Fexit => tracing(target, sys::BPF_TRACE_FEXIT),
            AttachKind::Kprobe
            | AttachKind::Kretprobe
            | AttachKind::Ksyscall
            | AttachKind::Kretsyscall => kprobe(program.attach.kind, target),
            _ => Ok(()),
        };
        match found {
            Ok(()) => Hook::Available,
            Err(why) => Hook::Missing(why),
        }
    }
}

fn tracepoint(target: &str) -> Result<(), String> {
    let tracefs = kernel::ensure_tracefs().map_err(|e| e.to_string())?;
    if tracefs.join("events").join(target).is_dir() {
        Ok(())
    } else {
        Err(format!("no tracepoint {target} on this kernel"))
    }
}

/// `r0 = 0; exit`.
fn trivial_program() -> [sys::bpf_insn; 2] {
    // SAFETY: bpf_insn is plain data; all zero is `r0 = 0` with the opcode set below.
    let mut insns: [sys::bpf_insn; 2] = unsafe { std::mem::zeroed() };
    insns[0].code = 0xb7; // BPF_ALU64 | BPF_MOV | BPF_K
    insns[1].code = 0x95; // BPF_JMP | BPF_EXIT
    insns
}

/// Load the trivial program as `prog_type`, with `opts` filled in by `configure`.
fn load(
    prog_type: sys::bpf_prog_type,
    configure: impl FnOnce(&mut sys::bpf_prog_load_opts),
) -> Result<OwnedFd, std::io::Error> {
    let insns = trivial_program();
    // SAFETY: an all-zero bpf_prog_load_opts is valid (libbpf's own initializer); `sz`
    // says which version of the struct this is.
    let mut opts: sys::bpf_prog_load_opts = unsafe { std::mem::zeroed() };
    opts.sz = std::mem::size_of::<sys::bpf_prog_load_opts>() as _;
    configure(&mut opts);
    // SAFETY: the name and license are NUL-terminated, `insns` holds `insn_cnt`
    // instructions and `opts` is valid for the call, which copies them.
    let fd = unsafe {
        sys::bpf_prog_load(
            prog_type,
            c"runner_probe".as_ptr(),
            c"GPL".as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            &mut opts,
        )
    };
    owned(fd)
}

fn owned(fd: i32) -> Result<OwnedFd, std::io::Error> {
    if fd < 0 {
        return Err(std::io::Error::from_raw_os_error(-fd));
    }
    // SAFETY: libbpf returned a new file descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Attach `prog` through BPF_RAW_TRACEPOINT_OPEN (to `name`, or where its BTF id says
/// when `None`) and detach it again.
fn attach_raw(name: Option<&CString>, prog: &OwnedFd) -> Result<(), std::io::Error> {
    use std::os::fd::AsRawFd as _;
    let name_ptr = name.map_or(std::ptr::null(), |n| n.as_ptr());
    // SAFETY: `name_ptr` is null or a NUL-terminated string alive for the call; the
    // returned link fd is owned (and closed) right away.
    let link = unsafe { sys::bpf_raw_tracepoint_open(name_ptr, prog.as_raw_fd()) };
    owned(link).map(drop)
}

fn raw_tracepoint(target: &str) -> Result<(), String> {
    let name = CString::new(target).map_err(|_| format!("bad tracepoint name {target:?}"))?;
    let prog = load(sys::BPF_PROG_TYPE_RAW_TRACEPOINT, |_| {})
        .map_err(|e| format!("cannot load a raw tracepoint program: {e}"))?;
    attach_raw(Some(&name), &prog).map_err(|e| format!("no raw tracepoint {target}: {e}"))
}

/// A BTF-typed hook: `tp_btf` (`BPF_TRACE_RAW_TP`), `fentry` or `fexit`.
fn tracing(target: &str, attach_type: sys::bpf_attach_type) -> Result<(), String> {
    let what = match attach_type {
        sys::BPF_TRACE_RAW_TP => "BTF tracepoint",
        sys::BPF_TRACE_FENTRY => "fentry hook",
        _ => "fexit hook",
    };
    let name = CString::new(target).map_err(|_| format!("bad name {target:?}"))?;
    // SAFETY: `name` is NUL-terminated; libbpf reads the kernel's BTF and returns an id.
    let id = unsafe { sys::libbpf_find_vmlinux_btf_id(name.as_ptr(), attach_type) };
    if id < 0 {
        return Err(format!("no {what} {target} in the kernel's BTF"));
    }
    let prog = load(sys::BPF_PROG_TYPE_TRACING, |opts| {
        opts.expected_attach_type = attach_type;
        opts.attach_btf_id = id as u32;
    })
    .map_err(|e| format!("this kernel cannot load a {what} program ({e})"))?;
    attach_raw(None, &prog).map_err(|e| format!("cannot attach to {what} {target} ({e})"))
}

fn kprobe(kind: AttachKind, target: &str) -> Result<(), String> {
    let pmu = Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
    let events = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"]
        .iter()
        .any(|dir| Path::new(dir).join("kprobe_events").exists());
    if !pmu && !events {
        return Err("this kernel has no kprobes (no kprobe PMU, no kprobe_events)".into());
    }
    if matches!(kind, AttachKind::Ksyscall | AttachKind::Kretsyscall) {
        return Ok(());
    }
    let symbol = target.split(['+', ':']).next().unwrap_or(target);
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").unwrap_or_default();
    let known = kallsyms
        .lines()
        .any(|l| l.split_whitespace().nth(2) == Some(symbol));
    if known {
        Ok(())
    } else {
        Err(format!("no kernel symbol {symbol}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trivial_program_is_r0_0_exit() {
        let insns = trivial_program();
        assert_eq!((insns[0].code, insns[0].imm), (0xb7, 0));
        assert_eq!(insns[1].code, 0x95);
    }
}

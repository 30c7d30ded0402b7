//! Phase 4 of `runner run`: attaching every loaded program. Most go through libbpf's
//! generic attach (the section names the target); uprobes may take their target from
//! `--attach`, and perf_event programs are attached to a software cpu-clock event on every
//! online CPU.

use libbpf_rs::{Link, ProgramMut, UprobeOpts};

use super::error::RunError;
use super::invocation::sample_hz;
use super::load::Loaded;
use crate::kernel;
use crate::spec::package::{AttachKind, Program};

/// Attached. Dropping it detaches every program; [`Attached::detach`] keeps them loaded.
pub(crate) struct Attached {
    // Links go before the object their programs belong to.
    links: Vec<Link>,
    /// How many programs are attached (a perf_event program counts once, on every CPU).
    programs: usize,
    loaded: Loaded,
}

impl Attached {
    /// Attach every program that was loaded.
    pub fn new(loaded: Loaded) -> anyhow::Result<Attached> {
        let pkg = loaded.package().package();
        let mut links = Vec::new();
        let mut programs = 0;
        for prog in loaded.object().progs_mut() {
            if !prog.autoload() {
                continue;
            }
            programs += 1;
            let name = prog.name().to_string_lossy().into_owned();
            let Some(spec) = pkg.programs.iter().find(|p| p.name == name) else {
                continue;
            };
            kernel::clear_log();
            attach(
                &prog,
                spec,
                loaded.invocation().target_of(&name),
                &mut links,
            )?;
        }
        if programs == 0 {
            return Err(RunError::NothingToAttach {
                name: pkg.name.clone(),
            }
            .into());
        }
        Ok(Attached {
            links,
            programs,
            loaded,
        })
    }

    pub fn programs(&self) -> usize {
        self.programs
    }

    pub fn loaded(&mut self) -> &mut Loaded {
        &mut self.loaded
    }

    /// Detach every program, keeping the object and its readers.
    pub fn detach(self) -> Loaded {
        close_links(self.links);
        self.loaded
    }
}

/// At most this many threads close links at once.
const CLOSERS: usize = 16;

/// Close `links` side by side. Closing the last perf event of a tracepoint waits for RCU
/// grace periods (about 70 ms here), one link after another when closed in turn: 0.3 s to
/// stop sigsnoop, 0.4 s for opensnoop's six. Closed from threads of their own, the waits
/// overlap. A batch whose thread cannot be started is closed here, when `spawn` drops it.
fn close_links(mut links: Vec<Link>) {
    if links.len() < 2 {
        return;
    }
    let per_thread = links.len().div_ceil(CLOSERS);
    std::thread::scope(|scope| {
        while !links.is_empty() {
            let batch: Vec<Link> = links.drain(..per_thread.min(links.len())).collect();
            let _ = std::thread::Builder::new()
                .name("runner-detach".into())
                .spawn_scoped(scope, move || drop(batch));
        }
    });
}

/// Attach `prog` as `spec` says, with the `--attach` target given for it if any.
fn attach(
    prog: &ProgramMut,
    spec: &Program,
    runtime_target: Option<&str>,
    links: &mut Vec<Link>,
) -> Result<(), RunError> {
    let attach_err = |target: &str, e: libbpf_rs::Error| {
        let mut error = kernel::last_libbpf_message().unwrap_or_else(|| e.to_string());
        if matches!(
            spec.attach.kind,
            AttachKind::Kprobe
                | AttachKind::Kretprobe
                | AttachKind::Ksyscall
                | AttachKind::Kretsyscall
        ) {
            error.push_str(
                " (this kernel may have no kprobe support: no kprobe PMU or kprobe_events)",
            );
        }
        RunError::Attach {
            program: spec.name.clone(),
            kind: spec.attach.kind,
            target: target.to_string(),
            error,
        }
    };
    let uprobe = |target: &str| {
        let (binary, func) = target.rsplit_once(':').unwrap_or((target, ""));
        let opts = UprobeOpts {
            func_name: (!func.is_empty()).then(|| func.to_string()),
            retprobe: spec.attach.kind == AttachKind::Uretprobe,
            ..Default::default()
        };
        kernel::clear_log();
        prog.attach_uprobe_with_opts(-1, binary, 0, opts)
            .map_err(|e| attach_err(target, e))
    };
    let link = match (spec.attach.kind, runtime_target) {
        (AttachKind::Uprobe | AttachKind::Uretprobe, Some(target)) => uprobe(target)?,
        // The package's targets, in order: the first that attaches.
        (AttachKind::Uprobe | AttachKind::Uretprobe, None) if !spec.targets.is_empty() => {
            let mut last = None;
            for target in &spec.targets {
                match uprobe(target) {
                    Ok(link) => {
                        links.push(link);
                        return Ok(());
                    }
                    Err(e) => last = Some(e),
                }
            }
            return Err(last.expect("at least one target"));
        }
        (AttachKind::PerfEvent, target) => {
            // Checked when the command line was parsed.
            let hz = target.and_then(sample_hz).unwrap_or(DEFAULT_SAMPLE_HZ);
            for cpu in online_cpus() {
                let where_ = format!("cpu-clock on CPU {cpu}");
                let fd = open_cpu_clock(cpu, hz).map_err(|e| RunError::Attach {
                    program: spec.name.clone(),
                    kind: spec.attach.kind,
                    target: where_.clone(),
                    error: e.to_string(),
                })?;
                links.push(
                    prog.attach_perf_event(fd)
                        .map_err(|e| attach_err(&where_, e))?,
                );
            }
            return Ok(());
        }
        _ => prog
            .attach()
            .map_err(|e| attach_err(&spec.attach.target, e))?,
    };
    links.push(link);
    Ok(())
}

/// `PERF_FLAG_FD_CLOEXEC` from linux/perf_event.h.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;

/// Sampling frequency of perf_event programs when `--attach` does not give one.
const DEFAULT_SAMPLE_HZ: u64 = 99;

/// Online CPUs, from /sys/devices/system/cpu/online ("0-3,5").
fn online_cpus() -> Vec<i32> {
    let text =
        std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_else(|_| "0".into());
    let mut cpus = Vec::new();
    for part in text.trim().split(',') {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        if let (Ok(a), Ok(b)) = (a.parse::<i32>(), b.parse::<i32>()) {
            cpus.extend(a..=b);
        }
    }
    cpus
}

/// A software cpu-clock perf event sampling at `hz` on `cpu`, for every process.
fn open_cpu_clock(cpu: i32, hz: u64) -> std::io::Result<i32> {
    use libbpf_rs::libbpf_sys as sys;
    // SAFETY: an all-zero perf_event_attr is valid; fields are set below.
    let mut attr: sys::perf_event_attr = unsafe { std::mem::zeroed() };
    attr.type_ = sys::PERF_TYPE_SOFTWARE;
    attr.size = std::mem::size_of::<sys::perf_event_attr>() as u32;
    attr.config = u64::from(sys::PERF_COUNT_SW_CPU_CLOCK);
    attr.__bindgen_anon_1.sample_freq = hz;
    attr.set_freq(1);
    // SAFETY: attr is valid for the call; the kernel copies it.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const sys::perf_event_attr,
            -1,
            cpu,
            -1,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd as i32)
}

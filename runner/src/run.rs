//! `runner run`: a package goes through typed phases, so no step can be skipped or done
//! twice:
//!
//! [`Checked`] (read, checksum verified, description matched against the object's own BTF)
//! → [`Configured`] (opened from memory, flags written into `.rodata`/`.data`/`.bss`,
//! programs enabled per their conditions) → [`Loaded`] (in the kernel; the stream opens its
//! ring and perf buffers now, so no event is emitted before a reader exists) → [`Attached`]
//! ([`crate::attach`]) → streaming ([`crate::stream`]) → detached and unloaded on drop.

use std::ffi::{CString, OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::{Arg, ArgAction, Command};
use libbpf_rs::{AsRawLibbpf, Link, Object, ObjectBuilder, OpenObject};

use crate::attach;
use crate::flags;
use crate::kernel;
use crate::oci::PullOptions;
use crate::output::Format;
use crate::pack::{self, Description};
use crate::package::{serde_name, AttachKind, Flag, Package};
use crate::stream;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("package `{path}`: the embedded object does not match the package's description ({what}); rebuild the package")]
    Mismatch { path: PathBuf, what: String },
    #[error("package `{path}`: the embedded object is not usable")]
    BadObject {
        path: PathBuf,
        #[source]
        source: pack::PackError,
    },
    #[error("cannot open the embedded object of `{name}`: {detail}")]
    Open { name: String, detail: String },
    #[error("the verifier rejected program `{program}` of `{name}`; end of its log:\n{log}")]
    Verifier {
        name: String,
        program: String,
        log: String,
    },
    #[error("cannot load `{name}` into the kernel: {error}{hint}")]
    Load {
        name: String,
        error: String,
        hint: String,
    },
    #[error(
        "failed to attach program `{program}` to {} {target}: {error}",
        serde_name(kind)
    )]
    Attach {
        program: String,
        kind: AttachKind,
        target: String,
        error: String,
    },
}

/// Phase 1: a package whose object is intact and matches its description.
pub struct Checked {
    pub path: PathBuf,
    pub pkg: Package,
    pub object: Vec<u8>,
}

/// What the command line asked for.
pub struct Settings {
    pub format: Format,
    pub duration: Option<Duration>,
    /// Print map views this often (they are always printed at exit).
    pub interval: Option<Duration>,
    pub verbose: bool,
    pub attach: Vec<(String, String)>,
    /// Encoded values of the globals the user set, by index into `pkg.globals`.
    pub values: Vec<(usize, Vec<u8>)>,
}

/// Phase 2: opened, globals written, programs enabled or not.
pub struct Configured {
    open: OpenObject,
}

/// Phase 3: in the kernel, not attached yet. Dropping it unloads everything.
pub struct Loaded {
    pub obj: Object,
}

/// Phase 4: attached. Dropping it detaches every program.
pub struct Attached {
    pub(crate) _links: Vec<Link>,
    /// How many programs are attached (a perf_event program counts once, on every CPU).
    pub programs: usize,
}

/// Compare what the package says with what the object says, ignoring the help texts
/// (which come from the source, not the object).
fn mismatch(pkg: &Package, desc: &Description) -> Option<String> {
    if pkg.globals.len() != desc.globals.len() {
        return Some("number of globals".into());
    }
    for (a, b) in pkg.globals.iter().zip(&desc.globals) {
        let mut a = a.clone();
        a.help.clone_from(&b.help);
        if &a != b {
            return Some(format!("global `{}`", b.name));
        }
    }
    if pkg.events != desc.events {
        return Some("event layout".into());
    }
    if pkg.maps != desc.maps {
        return Some("maps".into());
    }
    if pkg.programs != desc.programs {
        return Some("programs".into());
    }
    None
}

impl Checked {
    pub fn read(path: &Path) -> anyhow::Result<Checked> {
        Self::check(path, Package::read(path)?)
    }

    /// A package already read (from a file or an image layer), named `path` in messages.
    pub fn from_slice(bytes: &[u8], path: &Path) -> anyhow::Result<Checked> {
        Self::check(path, Package::from_slice(bytes, path)?)
    }

    fn check(path: &Path, (pkg, object): (Package, Vec<u8>)) -> anyhow::Result<Checked> {
        let overrides: Vec<(String, String)> = pkg
            .events
            .iter()
            .map(|e| (e.map.clone(), e.struct_name.clone()))
            .collect();
        let desc =
            pack::describe(&object, None, &overrides).map_err(|source| RunError::BadObject {
                path: path.into(),
                source,
            })?;
        if let Some(what) = mismatch(&pkg, &desc) {
            return Err(RunError::Mismatch {
                path: path.into(),
                what,
            }
            .into());
        }
        Ok(Checked {
            path: path.into(),
            pkg,
            object,
        })
    }

    /// The `runner run <PACKAGE>` command: the runner's options plus one per global.
    pub fn command(&self) -> Command {
        let about = if self.pkg.description.is_empty() {
            self.pkg.name.clone()
        } else {
            self.pkg.description.clone()
        };
        let mut cmd = Command::new("runner run")
            .bin_name(format!("runner run {}", self.path.display()))
            .about(about)
            .arg(
                Arg::new("output")
                    .short('o')
                    .long("output")
                    .value_name("FORMAT")
                    .value_parser(clap::value_parser!(Format))
                    .default_value("table")
                    .help("How events are printed")
                    .help_heading("Runner options"),
            )
            .arg(
                Arg::new("duration")
                    .long("duration")
                    .value_name("SECONDS")
                    .value_parser(parse_duration)
                    .help("Stop after this long (default: until Ctrl-C or SIGTERM)")
                    .help_heading("Runner options"),
            )
            .arg(
                Arg::new("interval")
                    .long("interval")
                    .value_name("SECONDS")
                    .value_parser(parse_interval)
                    .help("Print the package's map views this often (they are always printed at exit)")
                    .help_heading("Runner options"),
            )
            .arg(
                Arg::new("attach")
                    .long("attach")
                    .value_name("PROG=TARGET")
                    .action(ArgAction::Append)
                    .value_parser(parse_attach)
                    .help("Where a program attaches, when given at run time: uprobe BINARY:FUNCTION; perf_event sampling frequency in Hz [default: 99]")
                    .help_heading("Runner options"),
            )
            .arg(
                Arg::new("verbose")
                    .short('v')
                    .long("verbose")
                    .action(ArgAction::SetTrue)
                    .help("Show libbpf's log on stderr")
                    .help_heading("Runner options"),
            );
        for global in &self.pkg.globals {
            if let Some(arg) = flags::arg_for(global) {
                cmd = cmd.arg(arg);
            }
        }
        cmd
    }

    /// Parse the options after the package.
    pub fn settings(&self, args: &[OsString]) -> Result<Settings, clap::Error> {
        let argv = std::iter::once(OsString::from("runner run")).chain(args.iter().cloned());
        let matches = self.command().try_get_matches_from(argv)?;
        let mut values = Vec::new();
        for (i, global) in self.pkg.globals.iter().enumerate() {
            let Flag::Name(name) = &global.flag else {
                continue;
            };
            if let Some(bytes) = matches.get_one::<Vec<u8>>(name) {
                values.push((i, bytes.clone()));
            }
        }
        let settings = Settings {
            format: *matches.get_one::<Format>("output").expect("has a default"),
            duration: matches.get_one::<Duration>("duration").copied(),
            interval: matches.get_one::<Duration>("interval").copied(),
            verbose: matches.get_flag("verbose"),
            attach: matches
                .get_many::<(String, String)>("attach")
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            values,
        };
        self.check_attach(&settings).map_err(|msg| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{msg}\n"))
        })?;
        Ok(settings)
    }

    /// `--attach` names programs that take a run-time target, with a target of the right
    /// form, and every enabled uprobe without a target in its section gets one.
    fn check_attach(&self, settings: &Settings) -> Result<(), String> {
        for (name, target) in &settings.attach {
            let Some(prog) = self.pkg.programs.iter().find(|p| &p.name == name) else {
                return Err(format!(
                    "--attach names program `{name}`, which this package does not have"
                ));
            };
            match prog.attach.kind {
                AttachKind::Uprobe | AttachKind::Uretprobe => {}
                AttachKind::PerfEvent if attach::sample_hz(target).is_some() => {}
                AttachKind::PerfEvent => {
                    return Err(format!(
                        "--attach {name}={target}: expected a sampling frequency in Hz, like 99"
                    ))
                }
                kind => {
                    return Err(format!(
                        "--attach {name}: a {} program attaches where its section says; --attach is for uprobes and perf_event programs",
                        serde_name(&kind)
                    ))
                }
            }
        }
        for (prog, on) in self.pkg.programs.iter().zip(self.enabled(settings)) {
            let needs = matches!(prog.attach.kind, AttachKind::Uprobe | AttachKind::Uretprobe)
                && prog.attach.target.is_empty();
            if on && needs && !settings.attach.iter().any(|(p, _)| p == &prog.name) {
                return Err(format!(
                    "program `{}` ({}) needs a target given at run time: pass --attach {}=<BINARY>:<FUNCTION>",
                    prog.name,
                    serde_name(&prog.attach.kind),
                    prog.name
                ));
            }
        }
        Ok(())
    }

    /// The value of bool global `name` as this run will see it.
    fn bool_value(&self, settings: &Settings, name: &str) -> bool {
        let Some(index) = self.pkg.globals.iter().position(|g| g.name == name) else {
            return false;
        };
        match settings.values.iter().find(|(i, _)| *i == index) {
            Some((_, bytes)) => bytes.iter().any(|&b| b != 0),
            None => self.pkg.globals[index].default == serde_json::Value::Bool(true),
        }
    }

    /// Which programs this run loads, by index into `pkg.programs`.
    pub fn enabled(&self, settings: &Settings) -> Vec<bool> {
        self.pkg
            .programs
            .iter()
            .map(|p| match &p.when {
                Some(cond) => self.bool_value(settings, &cond.global) == cond.equals,
                None => true,
            })
            .collect()
    }

    /// Phase 2: open the object from memory, write the globals, enable programs.
    pub fn configure(self, settings: &Settings) -> anyhow::Result<(Checked, Configured)> {
        let mut builder = ObjectBuilder::default();
        let open_err = |e: libbpf_rs::Error| RunError::Open {
            name: self.pkg.name.clone(),
            detail: kernel::last_libbpf_message().unwrap_or_else(|| e.to_string()),
        };
        builder.name(&self.pkg.name).map_err(open_err)?;
        let mut open = builder.open_memory(&self.object).map_err(open_err)?;
        for (index, bytes) in &settings.values {
            let global = &self.pkg.globals[*index];
            let data = section_data(&mut open, &global.section).with_context(|| {
                format!(
                    "object has no {} map for global `{}`",
                    global.section, global.name
                )
            })?;
            let start = global.offset as usize;
            let slot = data.get_mut(start..start + bytes.len()).with_context(|| {
                format!("global `{}` lies outside {}", global.name, global.section)
            })?;
            slot.copy_from_slice(bytes);
        }
        let enabled = self.enabled(settings);
        for mut prog in open.progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            if let Some(i) = self.pkg.programs.iter().position(|p| p.name == name) {
                prog.set_autoload(enabled[i]);
            }
        }
        Ok((self, Configured { open }))
    }
}

/// The writable initial bytes of the internal map for `section` (`.rodata`, `.bss`...).
fn section_data<'a>(open: &'a mut OpenObject, section: &str) -> Option<&'a mut [u8]> {
    let name = CString::new(section).ok()?;
    // SAFETY: the object pointer is valid while `open` lives; libbpf finds internal maps by
    // their section name and returns the buffer it will create the map from.
    unsafe {
        let map = libbpf_rs::libbpf_sys::bpf_object__find_map_by_name(
            open.as_libbpf_object().as_ptr(),
            name.as_ptr(),
        );
        if map.is_null() {
            return None;
        }
        let mut size = 0usize;
        let data =
            libbpf_rs::libbpf_sys::bpf_map__initial_value(map, &mut size as *mut usize as *mut _);
        if data.is_null() {
            return None;
        }
        Some(std::slice::from_raw_parts_mut(data.cast::<u8>(), size))
    }
}

impl Configured {
    /// Phase 3: load into the kernel, after checking what attaching will need.
    pub fn load(self, checked: &Checked, settings: &Settings) -> anyhow::Result<Loaded> {
        let pkg = &checked.pkg;
        let enabled = checked.enabled(settings);
        let needs_tracefs = pkg
            .programs
            .iter()
            .zip(&enabled)
            .any(|(p, on)| *on && p.attach.kind == AttachKind::Tracepoint);
        if needs_tracefs {
            let tracefs = kernel::ensure_tracefs()?;
            for (p, on) in pkg.programs.iter().zip(&enabled) {
                if *on && p.attach.kind == AttachKind::Tracepoint {
                    kernel::check_tracepoint(&tracefs, &p.attach.target, &p.name)?;
                }
            }
        }
        kernel::clear_log();
        let obj = self.open.load().map_err(|e| load_error(pkg, e))?;
        Ok(Loaded { obj })
    }
}

fn load_error(pkg: &Package, e: libbpf_rs::Error) -> RunError {
    let error = e.to_string();
    let program = kernel::failed_program().unwrap_or_default();
    if let Some(log) = kernel::verifier_log_tail(20) {
        return RunError::Verifier {
            name: pkg.name.clone(),
            program,
            log,
        };
    }
    let spec = pkg.programs.iter().find(|p| p.name == program);
    let hint = match spec {
        _ if !kernel::privileged() => {
            "; loading BPF programs needs root, or CAP_BPF and CAP_PERFMON".to_string()
        }
        Some(p) if e.kind() == libbpf_rs::ErrorKind::PermissionDenied => format!(
            "; the kernel refused program `{}` ({} {}): this kernel may not support {} programs",
            p.name,
            serde_name(&p.attach.kind),
            p.attach.target,
            serde_name(&p.attach.kind)
        ),
        Some(p) => format!(
            " (program `{}`, {} {})",
            p.name,
            serde_name(&p.attach.kind),
            p.attach.target
        ),
        None => kernel::last_libbpf_message()
            .map(|m| format!(" ({m})"))
            .unwrap_or_default(),
    };
    RunError::Load {
        name: pkg.name.clone(),
        error,
        hint,
    }
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('m') {
        (n, 60.0)
    } else {
        (text, 1.0)
    };
    let secs: f64 = number
        .parse()
        .map_err(|_| "expected seconds, like 5, 1.5s, 200ms or 2m".to_string())?;
    if !secs.is_finite() || secs < 0.0 {
        return Err("expected a positive duration".into());
    }
    Duration::try_from_secs_f64(secs * scale).map_err(|_| "that duration is too long".to_string())
}

/// An interval for map views: at least 10 ms, so printing cannot spin.
fn parse_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < Duration::from_millis(10) {
        return Err("expected at least 10ms".into());
    }
    Ok(interval)
}

fn parse_attach(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((p, t)) if !p.is_empty() && !t.is_empty() => Ok((p.into(), t.into())),
        _ => Err("expected PROG=TARGET, e.g. my_probe=/bin/bash:readline".into()),
    }
}

/// `runner run <PACKAGE> [OPTIONS]`.
pub fn main(package: &OsStr, args: &[OsString], pull: &PullOptions) -> anyhow::Result<()> {
    // Keep libbpf quiet until we know whether --verbose was asked for.
    kernel::capture_libbpf_log(false);
    // A file or an image reference, verified per the trust policy before anything loads.
    let resolved = crate::oci::open_package(package, pull)?;
    let checked = Checked::from_slice(&resolved.bytes, &resolved.display)?;
    let settings = checked.settings(args)?;
    kernel::capture_libbpf_log(settings.verbose);
    kernel::check_privileges()?;
    let (checked, configured) = checked.configure(&settings)?;
    let loaded = configured.load(&checked, &settings)?;
    let stats = stream::stream(&loaded, &checked, &settings)?;
    drop(loaded);
    crate::note!("runner: {} events, {} lost", stats.events, stats.lost);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The command generated from a real package passes clap's own consistency checks
    /// (unique names, no clash between the runner's options and the program's flags).
    #[test]
    fn generated_command_is_consistent() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/sigsnoop/package.json");
        let checked = Checked::read(&path).unwrap();
        checked.command().debug_assert();
        let settings = checked
            .settings(&["--filtered-pid".into(), "-5".into(), "--failed_only".into()])
            .unwrap();
        let values: Vec<(&str, &[u8])> = settings
            .values
            .iter()
            .map(|(i, b)| (checked.pkg.globals[*i].name.as_str(), b.as_slice()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("filtered_pid", &[0xfb, 0xff, 0xff, 0xff][..]),
                ("failed_only", &[1][..])
            ]
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1").is_err());
    }
}

//! The command line of `runner run <PACKAGE>`: the runner's own options plus one flag per
//! settable global, parsed into an [`Invocation`] that says everything this run will do:
//! the format, the values written into the object, and which programs load.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::time::Duration;

use clap::{Arg, ArgAction, Command};

use super::choices::{self, Choices};
use super::fleet::{self, Label};
use crate::args;
use crate::output::Format;
use crate::spec::flags;
use crate::spec::mapview;
use crate::spec::package::{serde_name, AttachKind, Flag, Package, View};
use crate::spec::plan::Shows;
use crate::spec::verify::Verified;

/// What the command line asked for, and what follows from it.
#[derive(Clone)]
pub(crate) struct Invocation {
    pub format: Format,
    pub duration: Option<Duration>,
    /// Print map views this often (they are always printed at exit).
    pub interval: Option<Duration>,
    /// `--view MAP=VIEW`, in order: how map MAP is shown, or not at all (`none`).
    pub views: Vec<(String, Option<View>)>,
    /// `--clear`: empty the shown maps after each interval's print.
    pub clear: bool,
    /// Which declared formats are shown (`--names`: also those shown on request).
    pub shows: Shows,
    pub verbose: bool,
    /// `--reader-priority`: the reading thread's `SCHED_FIFO` priority, 0 for normal.
    pub reader_priority: u8,
    /// `--attach PROG=TARGET`, in order.
    pub attach: Vec<(String, String)>,
    /// Encoded values of the globals the user set, by index into the package's globals.
    pub values: Vec<(usize, Vec<u8>)>,
    /// Whether each program (by index) loads, per its `when` condition, `--no-program`
    /// and (once probed, `run::choose`) the alternatives and optional programs.
    pub enabled: Vec<bool>,
    /// Switches, programs left out, map sizes.
    pub choices: Choices,
    /// `--metrics ADDR`: serve Prometheus metrics there.
    pub metrics: Option<SocketAddr>,
    /// `--labels`: the keys every JSON line starts with (without their `@`), and values.
    pub labels: Vec<(String, String)>,
}

impl Invocation {
    /// Parse the options after the package.
    pub fn parse(package: &Verified, args: &[OsString]) -> Result<Invocation, clap::Error> {
        let pkg = package.package();
        let args = flags::join_negative_values(&pkg.globals, args);
        let argv = std::iter::once(OsString::from("runner run")).chain(args);
        let matches = command(package).try_get_matches_from(argv)?;
        let mut values = Vec::new();
        for (i, global) in pkg.globals.iter().enumerate() {
            let Flag::Name(name) = &global.flag else {
                continue;
            };
            if let Some(bytes) = matches.get_one::<Vec<u8>>(name) {
                values.push((i, bytes.clone()));
            }
        }
        let usage = |msg: String| {
            clap::Error::raw(clap::error::ErrorKind::ValueValidation, format!("{msg}\n"))
        };
        choices::complete_values(pkg, &mut values).map_err(usage)?;
        let mut choices = choices::from_matches(pkg, &matches).map_err(usage)?;
        choices.map_sizes =
            choices::map_sizes(pkg, &values, &choices, &choices::system_entries).map_err(usage)?;
        let mut invocation = Invocation {
            format: *matches.get_one::<Format>("output").expect("has a default"),
            duration: matches.get_one::<Duration>("duration").copied(),
            interval: matches.get_one::<Duration>("interval").copied(),
            views: matches
                .get_many::<(String, Option<View>)>("view")
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            clear: matches.get_flag("clear"),
            shows: Shows {
                names: matches.get_flag("names"),
            },
            verbose: matches.get_flag("verbose"),
            reader_priority: *matches
                .get_one::<u8>("reader-priority")
                .expect("has a default"),
            attach: matches
                .get_many::<(String, String)>("attach")
                .map(|v| v.cloned().collect())
                .unwrap_or_default(),
            values,
            enabled: Vec::new(),
            choices,
            metrics: matches.get_one::<SocketAddr>("metrics").copied(),
            labels: matches
                .get_one::<Vec<Label>>("labels")
                .map(|l| fleet::resolve(l, &pkg.name))
                .unwrap_or_default(),
        };
        invocation.enabled = enabled(pkg, &invocation.values, &invocation.choices);
        invocation
            .check_attach(pkg)
            .and_then(|()| invocation.check_views(pkg))
            .map_err(usage)?;
        if !invocation.labels.is_empty() && invocation.format != Format::Json {
            return Err(usage(
                "--labels adds keys to JSON lines: use it with -o json".into(),
            ));
        }
        Ok(invocation)
    }

    /// `--view` names maps of this package, with views their types allow.
    fn check_views(&self, pkg: &Package) -> Result<(), String> {
        for (name, view) in &self.views {
            let Some(map) = pkg.maps.iter().find(|m| &m.name == name) else {
                let names: Vec<&str> = pkg.maps.iter().map(|m| m.name.as_str()).collect();
                return Err(format!(
                    "--view names map `{name}`, which this package does not have (its maps: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ));
            };
            if let Some(view) = view {
                mapview::fits(map, *view).map_err(|e| format!("--view {name}: {e}"))?;
            }
        }
        Ok(())
    }

    /// The `--attach` target given for program `name`.
    pub fn target_of(&self, name: &str) -> Option<&str> {
        self.attach
            .iter()
            .find(|(p, _)| p == name)
            .map(|(_, t)| t.as_str())
    }

    /// `--attach` names programs that take a run-time target, with a target of the right
    /// form, and every enabled uprobe without a target in its section gets one.
    fn check_attach(&self, pkg: &Package) -> Result<(), String> {
        for (name, target) in &self.attach {
            let Some(prog) = pkg.programs.iter().find(|p| &p.name == name) else {
                return Err(format!(
                    "--attach names program `{name}`, which this package does not have"
                ));
            };
            match prog.attach.kind {
                AttachKind::Uprobe | AttachKind::Uretprobe => match target.rsplit_once(':') {
                    Some((binary, func)) if !binary.is_empty() && !func.is_empty() => {}
                    _ => {
                        return Err(format!(
                            "--attach {name}={target}: expected BINARY:FUNCTION, like /bin/bash:readline (a uprobe needs the function it probes)"
                        ))
                    }
                },
                AttachKind::PerfEvent if sample_hz(target).is_some() => {}
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
        for (prog, on) in pkg.programs.iter().zip(&self.enabled) {
            // `uprobe/readline` names a function but no binary: libbpf needs BINARY:FUNCTION.
            let needs = matches!(prog.attach.kind, AttachKind::Uprobe | AttachKind::Uretprobe)
                && !prog.attach.target.contains(':')
                && prog.targets.is_empty();
            if *on && needs && self.target_of(&prog.name).is_none() {
                let function = match prog.attach.target.as_str() {
                    "" => "<FUNCTION>",
                    named => named,
                };
                return Err(format!(
                    "program `{}` ({}) needs a target given at run time: pass --attach {}=<BINARY>:{function}",
                    prog.name,
                    serde_name(&prog.attach.kind),
                    prog.name
                ));
            }
        }
        Ok(())
    }
}

/// A perf_event program's `--attach` target: a sampling frequency, `99` or `99hz`.
pub(super) fn sample_hz(target: &str) -> Option<u64> {
    let hz: u64 = target
        .trim_end_matches("hz")
        .trim_end_matches("Hz")
        .parse()
        .ok()?;
    (hz > 0).then_some(hz)
}

/// `MAP=VIEW` of `--view`: a view by name, or `none`.
fn view_choice(text: &str) -> Result<(String, Option<View>), String> {
    let form = || format!("MAP=VIEW, VIEW being {}", View::names_and("none"));
    let (map, view) = args::pair(text, &form())?;
    match View::from_name(&view) {
        Some(v) => Ok((map, Some(v))),
        None if view == "none" => Ok((map, None)),
        None => Err(format!("unknown view `{view}`; expected {}", form())),
    }
}

/// Which programs load, by index: those whose condition holds for the flags of this run
/// and that `--no-program` does not leave out.
fn enabled(pkg: &Package, values: &[(usize, Vec<u8>)], choices: &Choices) -> Vec<bool> {
    pkg.programs
        .iter()
        .map(|p| {
            let holds = match &p.when {
                Some(cond) => choices::flag_on(pkg, values, choices, &cond.global) == cond.equals,
                None => true,
            };
            holds && !choices.left_out.contains(&p.name)
        })
        .collect()
}

fn runner_option(arg: Arg) -> Arg {
    arg.help_heading("Runner options")
}

/// The `runner run <PACKAGE>` command: the runner's options plus one per global.
pub(crate) fn command(package: &Verified) -> Command {
    let pkg = package.package();
    let about = if pkg.description.is_empty() {
        pkg.name.clone()
    } else {
        pkg.description.clone()
    };
    let mut cmd = Command::new("runner run")
        .bin_name(format!("runner run {}", package.path().display()))
        .about(crate::stdio::escape_controls(&about, false).into_owned())
        .arg(runner_option(
            Arg::new("output")
                .short('o')
                .long("output")
                .value_name("FORMAT")
                .value_parser(clap::value_parser!(Format))
                .default_value("table")
                .help("How events are printed (none: not at all, for a run that only serves --metrics)"),
        ))
        .arg(runner_option(
            Arg::new("duration")
                .long("duration")
                .value_name("SECONDS")
                .value_parser(args::duration)
                .help("Stop after this long (default: until Ctrl-C or SIGTERM)"),
        ))
        .arg(runner_option(
            Arg::new("interval")
                .long("interval")
                .value_name("SECONDS")
                .value_parser(args::interval)
                .help("Print the package's map views this often (they are always printed at exit)"),
        ))
        .arg(runner_option(
            Arg::new("view")
                .long("view")
                .value_name("MAP=VIEW")
                .action(ArgAction::Append)
                .value_parser(view_choice)
                .help("Show map MAP as a table, log2_hist or linear_hist, or not at all (none), whatever the package says"),
        ))
        .arg(runner_option(
            Arg::new("clear")
                .long("clear")
                .action(ArgAction::SetTrue)
                .requires("interval")
                .help("Empty the shown maps after each --interval print, so each shows that interval alone (as bcc tools do; default: counts add up over the run)"),
        ))
        .arg(runner_option(
            Arg::new("names")
                .short('n')
                .long("names")
                .action(ArgAction::SetTrue)
                .help("Show names the program offers on request (signal and errno names, as bcc's sigsnoop -n) instead of numbers"),
        ))
        .arg(runner_option(
            Arg::new("attach")
                .long("attach")
                .value_name("PROG=TARGET")
                .action(ArgAction::Append)
                .value_parser(|t: &str| args::pair(t, "PROG=TARGET, e.g. my_probe=/bin/bash:readline"))
                .help("Where a program attaches, when given at run time: uprobe BINARY:FUNCTION; perf_event sampling frequency in Hz [default: 99]"),
        ))
        .arg(runner_option(
            Arg::new("metrics")
                .long("metrics")
                .value_name("ADDR")
                .value_parser(fleet::listen_addr)
                .help("Serve Prometheus metrics (OpenMetrics) at http://ADDR/metrics, like 127.0.0.1:9464: events and losses per channel, the package's counters, its map views"),
        ))
        .arg(runner_option(
            Arg::new("labels")
                .long("labels")
                .value_name("LIST")
                .value_parser(fleet::labels)
                .help("Start every JSON line with these keys, for log shippers: host (the host name), package (its name), KEY=VALUE; keys are written @host, @package, @KEY"),
        ))
        .arg(runner_option(
            Arg::new("reader-priority")
                .long("reader-priority")
                .value_name("N")
                .default_value("1")
                .value_parser(clap::value_parser!(u8).range(0..=99))
                .help("Read events at real-time priority N (SCHED_FIFO 1-99), so a busy machine does not delay the reader while buffers fill; 0: normal scheduling. Without CAP_SYS_NICE the reader stays normal"),
        ))
        .arg(runner_option(
            Arg::new("verbose")
                .short('v')
                .long("verbose")
                .action(ArgAction::SetTrue)
                .help("Show libbpf's log on stderr"),
        ));
    for global in &pkg.globals {
        if let Some(arg) = flags::arg_for(global) {
            cmd = cmd.arg(arg);
        }
    }
    choices::args(cmd, pkg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// The command generated from a real package passes clap's own consistency checks
    /// (unique names, no clash between the runner's options and the program's flags).
    #[test]
    fn generated_command_is_consistent() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/sigsnoop/package.json");
        let package = Verified::read(&path).unwrap();
        command(&package).debug_assert();
        let run = Invocation::parse(
            &package,
            &["--filtered-pid".into(), "-5".into(), "--failed_only".into()],
        )
        .unwrap();
        let values: Vec<(&str, &[u8])> = run
            .values
            .iter()
            .map(|(i, b)| (package.package().globals[*i].name.as_str(), b.as_slice()))
            .collect();
        assert_eq!(
            values,
            vec![
                ("filtered_pid", &[0xfb, 0xff, 0xff, 0xff][..]),
                ("failed_only", &[1][..])
            ]
        );
    }

    /// `--flag -0x80` and `--flag=-0x80` give the same bytes.
    #[test]
    fn negative_hex_after_a_space() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../programs/sigsnoop/package.json");
        let package = Verified::read(&path).unwrap();
        for args in [
            vec!["--filtered_pid", "-0x80"],
            vec!["--filtered_pid=-0x80"],
            vec!["--filtered-pid", "-128"],
        ] {
            let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
            let run = Invocation::parse(&package, &args).unwrap();
            assert_eq!(
                run.values,
                vec![(0, vec![0x80, 0xff, 0xff, 0xff])],
                "{args:?}"
            );
        }
    }
}

//! The command line: `build`, `pack`, `info` and `run`, plus the registry commands of
//! [`crate::oci::commands`]. Errors are printed once, as a chain, to stderr; exit codes
//! are 0 (success, or a closed pipe), 1 (runtime failure), 2 (bad usage).

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Parser, Subcommand};

use crate::args;
use crate::compile::{self, BuildOptions};
use crate::info;
use crate::oci::commands::{usage, RegistryCmd, StoreArgs, TransportArgs};
use crate::oci::{self, PullOptions};
use crate::run;
use crate::spec::pack::PackOptions;
use crate::spec::package::Package;
use crate::spec::verify::Verified;

#[derive(Parser)]
#[command(
    name = "runner",
    version,
    about = "Pack an eBPF program into one self-describing JSON package, and run any such package",
    after_help = "Run `runner run <PACKAGE> --help` to see the options a package defines."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compile a BPF C source (clang -g -O2 -target bpf) and pack it
    Build {
        /// The BPF program, e.g. programs/sigsnoop/sigsnoop.bpf.c
        source: PathBuf,
        /// Where to write the package [default: package.json beside the source]
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Use this vmlinux.h instead of one generated from the running kernel's BTF
        #[arg(long)]
        vmlinux: Option<PathBuf>,
        /// Which struct an event map carries, when the runner cannot tell
        #[arg(long = "event", value_name = "MAP=STRUCT", value_parser = event_struct)]
        events: Vec<(String, String)>,
        /// Extra flag for clang (repeatable), e.g. --cflag=-DDEBUG
        #[arg(long = "cflag", value_name = "FLAG", allow_hyphen_values = true)]
        cflags: Vec<String>,
        /// Also keep the compiled object here
        #[arg(long, value_name = "FILE")]
        object: Option<PathBuf>,
        /// The sidecar: the front end's choices, in JSON [default: <base>.runner.json
        /// beside the source, if there is one]
        #[arg(long, value_name = "FILE", conflicts_with = "no_sidecar")]
        sidecar: Option<PathBuf>,
        /// Read no sidecar
        #[arg(long)]
        no_sidecar: bool,
    },
    /// Pack a BPF object compiled elsewhere (needs its BTF: compile with -g)
    Pack {
        /// The BPF ELF object
        object: PathBuf,
        /// Where to write the package [default: package.json beside the object]
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The C source, for the help text of globals and the description
        #[arg(long)]
        source: Option<PathBuf>,
        /// Package name [default: the object's file name without .bpf.o]
        #[arg(long)]
        name: Option<String>,
        /// One-line description of the program
        #[arg(long)]
        description: Option<String>,
        /// Which struct an event map carries, when the runner cannot tell
        #[arg(long = "event", value_name = "MAP=STRUCT", value_parser = event_struct)]
        events: Vec<(String, String)>,
        /// The sidecar: the front end's choices, in JSON [default: <base>.runner.json
        /// beside --source, if there is one]
        #[arg(long, value_name = "FILE", conflicts_with = "no_sidecar")]
        sidecar: Option<PathBuf>,
        /// Read no sidecar
        #[arg(long)]
        no_sidecar: bool,
    },
    /// Write the headers `runner build` compiles with (libbpf's BPF headers and a
    /// vmlinux.h), to compile a program by hand for `runner pack`
    Headers {
        /// The directory to write into; then compile with `-I <DIR>`
        dir: PathBuf,
        /// Copy this vmlinux.h instead of generating one from the running kernel's BTF
        #[arg(long, conflicts_with = "no_vmlinux")]
        vmlinux: Option<PathBuf>,
        /// Write only libbpf's headers, no vmlinux.h
        #[arg(long)]
        no_vmlinux: bool,
    },
    /// Show what a package contains: globals, events, maps, programs
    Info {
        /// The package: a file, or an image reference (host[:port]/repo[:tag|@sha256:…])
        package: OsString,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// Load a package, attach its programs and print its events
    #[command(
        override_usage = "runner run [--store DIR] [--pull WHEN] [--policy FILE] [--insecure-registry HOST]... [--username USER --password-stdin] <PACKAGE> [PACKAGE OPTIONS]"
    )]
    Run {
        /// The package (a file or an image reference); its globals become options, see
        /// `runner run <PACKAGE> --help`. Registry options come before it.
        package: OsString,
    },
    #[command(flatten)]
    Registry(RegistryCmd),
}

/// `--event MAP=STRUCT`; `struct ` before the name is optional.
fn event_struct(s: &str) -> Result<(String, String), String> {
    let (map, name) = args::pair(s, "MAP=STRUCT")?;
    Ok((map, name.trim_start_matches("struct ").into()))
}

fn write_package(pkg: &Package, output: Option<PathBuf>, beside: &Path) -> anyhow::Result<()> {
    let path = output.unwrap_or_else(|| {
        beside
            .parent()
            .unwrap_or(Path::new("."))
            .join("package.json")
    });
    std::fs::write(&path, pkg.to_json())
        .with_context(|| format!("cannot write `{}`", path.display()))?;
    crate::note!("runner: wrote {}", path.display());
    Ok(())
}

fn dispatch(cmd: Cmd) -> anyhow::Result<()> {
    match cmd {
        Cmd::Build {
            source,
            output,
            vmlinux,
            events,
            cflags,
            object,
            sidecar,
            no_sidecar,
        } => {
            let pkg = compile::build(&BuildOptions {
                source: source.clone(),
                vmlinux,
                events,
                cflags,
                object_out: object,
                sidecar,
                no_sidecar,
            })?;
            write_package(&pkg, output, &source)
        }
        Cmd::Pack {
            object,
            output,
            source,
            name,
            description,
            events,
            sidecar,
            no_sidecar,
        } => {
            let bytes = std::fs::read(&object)
                .with_context(|| format!("cannot read `{}`", object.display()))?;
            let source_text = match &source {
                Some(path) => Some(
                    std::fs::read_to_string(path)
                        .with_context(|| format!("cannot read `{}`", path.display()))?,
                ),
                None => None,
            };
            let sidecar = match (&sidecar, &source, no_sidecar) {
                (_, _, true) | (None, None, _) => None,
                (named, _, _) => compile::read_sidecar(
                    named.as_deref(),
                    source.as_deref().unwrap_or(Path::new("")),
                )?,
            };
            let opts = PackOptions {
                name: name.unwrap_or_else(|| compile::stem_name(&object)),
                source: source_text,
                description,
                events,
                sidecar: sidecar.as_ref().map(|(_, s)| s.clone()),
            };
            let pkg = compile::pack_with(&bytes, &opts, sidecar.as_ref().map(|(p, _)| p.as_path()))
                .map_err(|e| match e {
                    compile::BuildError::Pack { source, .. } => anyhow::Error::new(source)
                        .context(format!("cannot pack `{}`", object.display())),
                    e => e.into(),
                })?;
            write_package(&pkg, output, &object)
        }
        Cmd::Headers {
            dir,
            vmlinux,
            no_vmlinux,
        } => {
            let vmlinux = (!no_vmlinux).then_some(vmlinux.as_deref());
            compile::write_headers(&dir, vmlinux)?;
            crate::note!("runner: wrote headers to {}", dir.display());
            Ok(())
        }
        Cmd::Info {
            package,
            store,
            transport,
        } => {
            let opts = store.pull_options(transport)?;
            let resolved = oci::open_package(&package, &opts)?;
            let package = Verified::from_bytes(&resolved.bytes, &resolved.display)?;
            for warning in package.warnings() {
                crate::note!("runner: warning: {warning}");
            }
            let text = info::render(package.package());
            crate::stdio::print(crate::stdio::escape_controls(&text, true).as_bytes())
                .context("cannot write to stdout")
        }
        Cmd::Run { package } => run::main(&package, &[], &PullOptions::default()),
        Cmd::Registry(cmd) => oci::commands::dispatch(cmd),
    }
}

/// Print an error chain on one line: "what failed: why: deeper why".
pub fn report(err: &anyhow::Error) {
    let mut line = String::from("runner: error: ");
    let mut first = true;
    for cause in err.chain() {
        if !first {
            line.push_str(": ");
        }
        line.push_str(&cause.to_string());
        first = false;
    }
    crate::note!("{line}");
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Entry point; returns the process exit code.
pub fn main() -> i32 {
    // Arguments need not be UTF-8 (paths); clap and Path take them as they are.
    let args: Vec<OsString> = std::env::args_os().collect();
    // `runner run [REGISTRY OPTIONS] <PACKAGE> ...`: the options after the package come
    // from the package; registry options come before it (see `oci::leading_options`).
    let is_run = args.get(1).is_some_and(|a| a == "run");
    let leading = match is_run.then(|| oci::leading_options(&args[2..])) {
        Some(Err(e)) => return exit_code(Err(usage(e))),
        Some(Ok((opts, rest)))
            if rest
                .first()
                .is_some_and(|a| !a.as_encoded_bytes().starts_with(b"-")) =>
        {
            Some((opts, rest))
        }
        _ => None,
    };
    let result = if let Some((opts, rest)) = leading {
        run::main(&rest[0], &rest[1..], &opts)
    } else {
        match Cli::try_parse_from(&args) {
            Ok(cli) => dispatch(cli.cmd),
            Err(e) => {
                let _ = e.print();
                return e.exit_code();
            }
        }
    };
    exit_code(result)
}

fn exit_code(result: anyhow::Result<()>) -> i32 {
    match result {
        Ok(()) => 0,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => match e.downcast_ref::<clap::Error>() {
            Some(clap_err) => {
                let _ = clap_err.print();
                clap_err.exit_code()
            }
            None => {
                report(&e);
                1
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn event_struct_pairs() {
        assert_eq!(
            event_struct("events=struct event").unwrap(),
            ("events".into(), "event".into())
        );
        assert!(event_struct("events").is_err());
    }
}

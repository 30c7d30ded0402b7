//! What decides where a package comes from and whether it may run: the registry options
//! of `runner run` and `runner info`, and what opening a package gives back.

use std::ffi::OsString;
use std::path::PathBuf;

use crate::oci::client::Transport;
use crate::oci::error::OciError;

/// When to ask the registry (`--pull`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum PullPolicy {
    /// Always resolve the tag at the registry (fall back to the store if it is down).
    Always,
    /// Use the store when it has the reference; ask the registry otherwise.
    #[default]
    Missing,
    /// Never contact a registry; only the local store.
    Never,
}

/// Everything that decides where a package comes from and whether it may run.
#[derive(Debug, Clone, Default)]
pub struct PullOptions {
    /// `--store DIR`; default: [`store::default_dir`].
    pub store: Option<PathBuf>,
    pub pull: PullPolicy,
    /// `--policy FILE`; default: [`crate::policy::DEFAULT_PATH`] when it exists.
    pub policy: Option<PathBuf>,
    pub transport: Transport,
}

/// A package ready to parse: its bytes, exactly the file or the image layer.
#[derive(Debug)]
pub struct Resolved {
    pub bytes: Vec<u8>,
    /// The index digest that was resolved, fetched and verified (images only).
    pub digest: Option<String>,
    /// What to call it in messages: the path, or the reference.
    pub display: PathBuf,
}

/// The registry options of `runner run` (`--store`, `--pull`, `--policy`,
/// `--insecure-registry`, `--username`, `--password-stdin`), which come before the
/// package so they cannot clash with the flags a package defines. Returns the options
/// and the remaining arguments (the package, then its own flags).
pub fn leading_options(args: &[OsString]) -> Result<(PullOptions, &[OsString]), OciError> {
    let mut opts = PullOptions::default();
    let mut username = None;
    let mut password_stdin = false;
    let mut i = 0;
    while let Some(arg) = args.get(i).and_then(|a| a.to_str()) {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg, None),
        };
        let takes_value = matches!(
            name,
            "--store" | "--pull" | "--policy" | "--insecure-registry" | "--username"
        );
        if name == "--password-stdin" {
            password_stdin = true;
            i += 1;
            continue;
        }
        if !takes_value {
            break;
        }
        let value = match inline {
            Some(v) => v,
            None => {
                i += 1;
                args.get(i)
                    .and_then(|v| v.to_str())
                    .ok_or_else(|| OciError::Usage {
                        what: format!("{name} needs a value"),
                    })?
                    .to_string()
            }
        };
        match name {
            "--store" => opts.store = Some(value.into()),
            "--policy" => opts.policy = Some(value.into()),
            "--insecure-registry" => opts.transport.insecure.push(value),
            "--username" => username = Some(value),
            _ => {
                opts.pull =
                    <PullPolicy as clap::ValueEnum>::from_str(&value, false).map_err(|_| {
                        OciError::Usage {
                            what: format!("--pull {value}: expected always, missing or never"),
                        }
                    })?
            }
        }
        i += 1;
    }
    opts.transport = credentials(opts.transport, username, password_stdin)?;
    Ok((opts, &args[i..]))
}

/// Apply `--username` / `--password-stdin`.
pub fn credentials(
    transport: Transport,
    username: Option<String>,
    password_stdin: bool,
) -> Result<Transport, OciError> {
    match (username, password_stdin) {
        (Some(u), true) => Ok(transport.with_password_stdin(u)?),
        (None, false) => Ok(transport),
        _ => Err(OciError::Usage {
            what: "--username and --password-stdin go together".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_options_stop_at_the_package() {
        let args: Vec<OsString> = [
            "--store",
            "/tmp/s",
            "--pull=never",
            "--insecure-registry",
            "reg.lan:5000",
            "localhost:5000/a:1",
            "--store",
            "x",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let (opts, rest) = leading_options(&args).unwrap();
        assert_eq!(opts.store.as_deref(), Some(std::path::Path::new("/tmp/s")));
        assert_eq!(opts.pull, PullPolicy::Never);
        assert_eq!(opts.transport.insecure, vec!["reg.lan:5000"]);
        assert_eq!(rest.len(), 3, "the package's own flags are left alone");
        let bad: Vec<OsString> = vec!["--pull".into(), "sometimes".into()];
        assert!(leading_options(&bad).is_err());
        let lone: Vec<OsString> = vec!["--username".into(), "u".into(), "x".into()];
        assert!(leading_options(&lone).is_err());
    }
}

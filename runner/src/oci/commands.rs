//! The registry subcommands of the command line (`push`, `pull`, `sign`, `keygen`,
//! `image export|import`) and the options `info` shares with them; `crate::cli` flattens
//! [`RegistryCmd`] into its own commands and calls [`dispatch`].

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::oci::client::Transport;
use crate::oci::error::OciError;
use crate::oci::options::{PullOptions, PullPolicy};
use crate::oci::reference::{self, Reference};
use crate::oci::{pull, push};
use crate::sign;

#[derive(Subcommand)]
pub enum RegistryCmd {
    /// Push packages to a registry as one image: a manifest per architecture, one index
    Push {
        /// The packages, each `FILE[@ARCH]` (OCI architecture names; default: this machine's)
        #[arg(required = true, num_args = 1.., value_name = "PKG[@ARCH]")]
        packages: Vec<String>,
        /// Where to push: host[:port]/repository[:tag]
        reference: Reference,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// Fetch an image (and its signatures) into the local store, and verify it
    Pull {
        /// host[:port]/repository[:tag|@sha256:…]
        reference: Reference,
        /// The local store [default: $RUNNER_STORE, else /var/lib/runner/store as root, else $XDG_DATA_HOME/runner/store]
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
        /// The trust policy [default: /etc/runner/policy.json when it exists]
        #[arg(long, value_name = "FILE")]
        policy: Option<PathBuf>,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// Sign an image in its registry (cosign keyed signature over the digest the tag names
    /// now), or a package file (a minisign signature beside it, `FILE.minisig`)
    Sign {
        /// An image reference, or a package file
        target: String,
        /// A cosign/PEM private key for an image; a minisign secret key for a file
        #[arg(long, value_name = "KEY")]
        key: PathBuf,
        #[command(flatten)]
        transport: TransportArgs,
    },
    /// Write a new signing key pair: PREFIX.key (private, mode 0600) and PREFIX.pub
    Keygen {
        /// Path prefix of the two files
        #[arg(short, long, value_name = "PREFIX", default_value = "runner")]
        output: PathBuf,
        /// A minisign key pair (for package files) instead of an ECDSA P-256 one (for images)
        #[arg(long)]
        minisign: bool,
    },
    /// Carry images between stores: export to an OCI layout tar, import from one
    Image {
        #[command(subcommand)]
        cmd: ImageCmd,
    },
}

#[derive(Subcommand)]
pub enum ImageCmd {
    /// Write an image from the local store, with its signatures, to an OCI layout tar
    Export {
        reference: Reference,
        file: PathBuf,
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
    /// Add the images of an OCI layout tar (digests checked) to the local store
    Import {
        file: PathBuf,
        #[arg(long, value_name = "DIR")]
        store: Option<PathBuf>,
    },
}

/// Where images come from and whether they may run.
#[derive(clap::Args)]
pub struct StoreArgs {
    /// The local store [default: $RUNNER_STORE, else /var/lib/runner/store as root, else $XDG_DATA_HOME/runner/store]
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// When to ask the registry
    #[arg(long, value_enum, value_name = "WHEN", default_value_t)]
    pub pull: PullPolicy,
    /// The trust policy [default: /etc/runner/policy.json when it exists]
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

/// How to reach a registry.
#[derive(clap::Args)]
pub struct TransportArgs {
    /// Use plain HTTP for this registry (host[:port]); loopback registries always use it
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
    /// Log in as this user; the password is read from stdin (--password-stdin)
    #[arg(long, requires = "password_stdin")]
    username: Option<String>,
    /// Read the password for --username from the first line of stdin
    #[arg(long, requires = "username")]
    password_stdin: bool,
}

impl TransportArgs {
    pub fn transport(self) -> anyhow::Result<Transport> {
        let t = Transport {
            insecure: self.insecure,
            credentials: None,
        };
        Ok(crate::oci::options::credentials(
            t,
            self.username,
            self.password_stdin,
        )?)
    }
}

/// An `OciError` that is the user's mistake exits 2, like clap's own.
pub fn usage(e: OciError) -> anyhow::Error {
    match e {
        OciError::Usage { what } => {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{what}\n")).into()
        }
        OciError::Reference(e) => {
            clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{e}\n")).into()
        }
        e => e.into(),
    }
}

impl StoreArgs {
    /// The options of `runner info REF`.
    pub fn pull_options(self, transport: TransportArgs) -> anyhow::Result<PullOptions> {
        Ok(PullOptions {
            store: self.store,
            pull: self.pull,
            policy: self.policy,
            transport: transport.transport()?,
        })
    }
}

pub fn dispatch(cmd: RegistryCmd) -> anyhow::Result<()> {
    match cmd {
        RegistryCmd::Push {
            packages,
            reference,
            transport,
        } => {
            let items = packages
                .iter()
                .map(|p| push::parse_item(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(usage)?;
            let digest = push::push(&items, &reference, &transport.transport()?).map_err(usage)?;
            let arches: Vec<&str> = items.iter().map(|i| i.arch.as_str()).collect();
            crate::note!("runner: pushed {reference} ({})", arches.join(", "));
            println!("{}@{digest}", reference.name());
            Ok(())
        }
        RegistryCmd::Pull {
            reference,
            store,
            policy,
            transport,
        } => {
            let opts = PullOptions {
                store,
                pull: PullPolicy::Always,
                policy,
                transport: transport.transport()?,
            };
            let resolved = pull::open_image(&reference, &opts)?;
            let digest = resolved.digest.unwrap_or_default();
            println!("{}@{digest}", reference.name());
            Ok(())
        }
        RegistryCmd::Sign {
            target,
            key,
            transport,
        } => match reference::classify(&target) {
            reference::Target::Image(r) => {
                let digest = push::sign(&r, &key, &transport.transport()?)?;
                crate::note!(
                    "runner: signed {}@{digest} with {} (tag {})",
                    r.name(),
                    key.display(),
                    Reference::signature_tag(&digest)
                );
                Ok(())
            }
            reference::Target::File => {
                let out = sign::minisign::sign_file(Path::new(&target), &key)?;
                crate::note!("runner: wrote {}", out.display());
                Ok(())
            }
        },
        RegistryCmd::Keygen { output, minisign } => {
            let (private, public) = if minisign {
                sign::minisign::keygen(&output)?
            } else {
                sign::cosign::keygen(&output)?
            };
            crate::note!(
                "runner: wrote {} (keep it secret) and {}",
                private.display(),
                public.display()
            );
            Ok(())
        }
        RegistryCmd::Image { cmd } => match cmd {
            ImageCmd::Export {
                reference,
                file,
                store,
            } => {
                let blobs = push::export(&reference, &file, store.as_deref())?;
                crate::note!("runner: wrote {} ({blobs} blobs)", file.display());
                Ok(())
            }
            ImageCmd::Import { file, store } => {
                for name in push::import(&file, store.as_deref())? {
                    println!("{name}");
                }
                Ok(())
            }
        },
    }
}

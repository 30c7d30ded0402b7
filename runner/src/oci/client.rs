//! Talking to a registry, through `oci-client`: transport (HTTPS, or plain HTTP for a
//! registry on loopback or named with `--insecure-registry`), credentials (`--username`
//! with `--password-stdin`, else Docker's `config.json`), and the few operations the
//! runner needs, each bounded in size and checked against its digest. The client is
//! async; a current-thread tokio runtime is created here, only for registry commands.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use futures_util::StreamExt as _;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::RegistryOperation;

use crate::oci::media::{self, Descriptor};
use crate::oci::reference::Reference;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("registry {registry} is unreachable: {detail}")]
    Unreachable { registry: String, detail: String },
    #[error("{reference}: not found in the registry")]
    NotFound { reference: String },
    #[error("{reference}: the registry refused the credentials{hint}")]
    Unauthorized { reference: String, hint: String },
    #[error("{reference}: {what} failed: {detail}")]
    Registry {
        reference: String,
        what: &'static str,
        detail: String,
    },
    #[error("{reference}: {what} is more than {limit} bytes")]
    TooBig {
        reference: String,
        what: String,
        limit: u64,
    },
    #[error("{reference}: digest mismatch for {what}: expected {expected}, got {actual}")]
    Digest {
        reference: String,
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{reference}: {what}: digest mismatch ({detail})")]
    DigestMismatch {
        reference: String,
        what: &'static str,
        detail: String,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error("cannot read the password from stdin: {0}")]
    Stdin(std::io::Error),
    #[error("docker config `{path}`: {what}")]
    DockerConfig { path: PathBuf, what: String },
}

/// How to reach registries: transport and credentials.
#[derive(Debug, Clone, Default)]
pub struct Transport {
    /// Registries (`host[:port]`) spoken to over plain HTTP even off loopback.
    pub insecure: Vec<String>,
    /// Explicit credentials (`--username` and `--password-stdin`), for every registry.
    pub credentials: Option<(String, String)>,
}

impl Transport {
    /// Read the password for `--password-stdin`: the first line of stdin.
    pub fn with_password_stdin(mut self, username: String) -> Result<Transport, ClientError> {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(ClientError::Stdin)?;
        let password = line.trim_end_matches(['\n', '\r']).to_string();
        self.credentials = Some((username, password));
        Ok(self)
    }

    fn auth_for(&self, registry: &str) -> Result<RegistryAuth, ClientError> {
        if let Some((u, p)) = &self.credentials {
            return Ok(RegistryAuth::Basic(u.clone(), p.clone()));
        }
        docker_config_auth(registry)
    }
}

/// Credentials for `registry` from Docker's `config.json` (`$DOCKER_CONFIG/config.json`,
/// else `~/.docker/config.json`): `auths.<registry>.auth`, base64 of `user:password`.
/// Credential helpers (`credsStore`, `credHelpers`) are not consulted.
pub fn docker_config_auth(registry: &str) -> Result<RegistryAuth, ClientError> {
    let path = match std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("config.json"),
        None => match std::env::var_os("HOME") {
            Some(home) => PathBuf::from(home).join(".docker/config.json"),
            None => return Ok(RegistryAuth::Anonymous),
        },
    };
    let text = match std::fs::read(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(RegistryAuth::Anonymous),
        Err(e) => {
            return Err(ClientError::DockerConfig {
                path,
                what: e.to_string(),
            })
        }
    };
    let bad = |what: String| ClientError::DockerConfig {
        path: path.clone(),
        what,
    };
    let config: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| bad(format!("not valid JSON: {e}")))?;
    let Some(auths) = config.get("auths").and_then(|a| a.as_object()) else {
        return Ok(RegistryAuth::Anonymous);
    };
    let entry = auths.iter().find(|(key, _)| {
        let key = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        key.split('/').next() == Some(registry)
    });
    let Some((_, entry)) = entry else {
        return Ok(RegistryAuth::Anonymous);
    };
    if let Some(auth) = entry.get("auth").and_then(|a| a.as_str()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|_| bad(format!("auths.{registry}.auth is not base64")))?;
        let decoded = String::from_utf8(decoded)
            .map_err(|_| bad(format!("auths.{registry}.auth is not UTF-8")))?;
        let (u, p) = decoded
            .split_once(':')
            .ok_or_else(|| bad(format!("auths.{registry}.auth is not user:password")))?;
        return Ok(RegistryAuth::Basic(u.into(), p.into()));
    }
    match (
        entry.get("username").and_then(|u| u.as_str()),
        entry.get("password").and_then(|p| p.as_str()),
    ) {
        (Some(u), Some(p)) => Ok(RegistryAuth::Basic(u.into(), p.into())),
        _ => Ok(RegistryAuth::Anonymous),
    }
}

/// A connection to one registry, with its own runtime.
pub struct Registry {
    runtime: tokio::runtime::Runtime,
    client: oci_client::Client,
    auth: RegistryAuth,
    registry: String,
}

fn install_crypto_provider() {
    // Installing twice fails harmlessly; the first provider stays.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

impl Registry {
    pub fn connect(transport: &Transport, reference: &Reference) -> Result<Registry, ClientError> {
        install_crypto_provider();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(ClientError::Runtime)?;
        let mut plain: Vec<String> = transport.insecure.clone();
        if reference.is_loopback() {
            plain.push(reference.registry.clone());
        }
        let config = ClientConfig {
            protocol: ClientProtocol::HttpsExcept(plain),
            connect_timeout: Some(Duration::from_secs(5)),
            read_timeout: Some(Duration::from_secs(60)),
            platform_resolver: None,
            user_agent: concat!("runner/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        };
        Ok(Registry {
            runtime,
            client: oci_client::Client::new(config),
            auth: transport.auth_for(&reference.registry)?,
            registry: reference.registry.clone(),
        })
    }

    fn login_hint(&self) -> String {
        match self.auth {
            RegistryAuth::Anonymous => {
                " (none given: use --username with --password-stdin, or docker's config.json)"
                    .into()
            }
            _ => String::new(),
        }
    }

    fn error(
        &self,
        reference: &Reference,
        what: &'static str,
        e: OciDistributionError,
    ) -> ClientError {
        let reference = reference.to_string();
        match &e {
            OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => {
                ClientError::Unreachable {
                    registry: self.registry.clone(),
                    detail: chain(&e),
                }
            }
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => ClientError::Unauthorized {
                reference,
                hint: self.login_hint(),
            },
            OciDistributionError::ImageManifestNotFoundError(_) => {
                ClientError::NotFound { reference }
            }
            OciDistributionError::ServerError { code: 404, .. } => {
                ClientError::NotFound { reference }
            }
            OciDistributionError::ServerError { code: 401, .. } => ClientError::Unauthorized {
                reference,
                hint: self.login_hint(),
            },
            OciDistributionError::DigestError(d) => ClientError::DigestMismatch {
                reference,
                what,
                detail: d.to_string(),
            },
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|x| {
                    matches!(
                        x.code,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) =>
            {
                ClientError::NotFound { reference }
            }
            OciDistributionError::RegistryError { envelope, .. }
                if envelope.errors.iter().any(|x| {
                    matches!(x.code, OciErrorCode::Unauthorized | OciErrorCode::Denied)
                }) =>
            {
                ClientError::Unauthorized {
                    reference,
                    hint: self.login_hint(),
                }
            }
            _ => ClientError::Registry {
                reference,
                what,
                detail: chain(&e),
            },
        }
    }

    /// Fetch a manifest or index; with a tag, this is the one time the tag is resolved.
    /// Returns the bytes and their digest, checked against the reference's digest if it
    /// has one.
    pub fn manifest(&self, reference: &Reference) -> Result<(Vec<u8>, String), ClientError> {
        let r = reference.to_client();
        let (bytes, _) = self
            .runtime
            .block_on(self.client.pull_manifest_raw(
                &r,
                &self.auth,
                &[media::INDEX, media::MANIFEST],
            ))
            .map_err(|e| self.error(reference, "fetching the manifest", e))?;
        if bytes.len() as u64 > media::MAX_DOCUMENT {
            return Err(ClientError::TooBig {
                reference: reference.to_string(),
                what: "the manifest".into(),
                limit: media::MAX_DOCUMENT,
            });
        }
        let actual = media::digest_of(&bytes);
        if let Some(expected) = &reference.digest {
            if *expected != actual {
                return Err(ClientError::Digest {
                    reference: reference.to_string(),
                    what: "the manifest".into(),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        Ok((bytes.to_vec(), actual))
    }

    /// Fetch a blob, cut off past `limit` bytes, and check its digest.
    pub fn blob(
        &self,
        reference: &Reference,
        descriptor: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let too_big = || ClientError::TooBig {
            reference: reference.to_string(),
            what: format!("blob {}", descriptor.digest),
            limit,
        };
        if descriptor.size > limit {
            return Err(too_big());
        }
        let r = reference.to_client();
        let desc = oci_client::manifest::OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.clone(),
            size: descriptor.size as i64,
            ..Default::default()
        };
        let bytes = self.runtime.block_on(async {
            let mut stream = self
                .client
                .pull_blob_stream(&r, &desc)
                .await
                .map_err(|e| self.error(reference, "fetching a blob", e))?;
            let mut bytes = Vec::new();
            while let Some(chunk) = stream.next().await {
                // oci-client hashes the stream too, and fails its last chunk on a mismatch.
                let chunk = chunk.map_err(|e| {
                    let detail = e.to_string();
                    if detail.to_lowercase().contains("digest") {
                        ClientError::DigestMismatch {
                            reference: reference.to_string(),
                            what: "fetching a blob",
                            detail,
                        }
                    } else {
                        ClientError::Registry {
                            reference: reference.to_string(),
                            what: "fetching a blob",
                            detail,
                        }
                    }
                })?;
                if (bytes.len() + chunk.len()) as u64 > limit {
                    return Err(too_big());
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(bytes)
        })?;
        let actual = media::digest_of(&bytes);
        if actual != descriptor.digest {
            return Err(ClientError::Digest {
                reference: reference.to_string(),
                what: format!("blob {}", descriptor.digest),
                expected: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(bytes)
    }

    /// Log in for pushing (a no-op for registries without authentication).
    pub fn login_push(&self, reference: &Reference) -> Result<(), ClientError> {
        let r = reference.to_client();
        self.runtime
            .block_on(self.client.auth(&r, &self.auth, RegistryOperation::Push))
            .map_err(|e| self.error(reference, "logging in", e))?;
        Ok(())
    }

    /// Upload a blob unless the registry has it already.
    pub fn push_blob(&self, reference: &Reference, blob: &media::Blob) -> Result<(), ClientError> {
        let r = reference.to_client();
        let d = &blob.descriptor.digest;
        self.runtime
            .block_on(async {
                if self.client.blob_exists(&r, d).await.unwrap_or(false) {
                    return Ok(String::new());
                }
                self.client.push_blob(&r, blob.bytes.clone(), d).await
            })
            .map_err(|e| self.error(reference, "uploading a blob", e))?;
        Ok(())
    }

    /// Upload a manifest or index under the reference's tag (or digest).
    pub fn push_manifest(
        &self,
        reference: &Reference,
        blob: &media::Blob,
    ) -> Result<(), ClientError> {
        let r = reference.to_client();
        let content_type = blob
            .descriptor
            .media_type
            .parse()
            .expect("media types are valid header values");
        self.runtime
            .block_on(
                self.client
                    .push_manifest_raw(&r, blob.bytes.clone(), content_type),
            )
            .map_err(|e| self.error(reference, "uploading the manifest", e))?;
        Ok(())
    }
}

/// An error and its causes on one line, each said once.
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_credentials() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths": {"https://reg.example:5000": {"auth": "dXNlcjpwYTpzcw=="},
                          "other.example": {"username": "u", "password": "p"}}}"#,
        )
        .unwrap();
        // SAFETY: this is the only test that touches DOCKER_CONFIG.
        unsafe { std::env::set_var("DOCKER_CONFIG", dir.path()) };
        let auth = docker_config_auth("reg.example:5000").unwrap();
        assert!(matches!(auth, RegistryAuth::Basic(u, p) if u == "user" && p == "pa:ss"));
        let auth = docker_config_auth("other.example").unwrap();
        assert!(matches!(auth, RegistryAuth::Basic(u, p) if u == "u" && p == "p"));
        assert!(matches!(
            docker_config_auth("nobody.example").unwrap(),
            RegistryAuth::Anonymous
        ));
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        assert!(docker_config_auth("x.example").is_err());
        // SAFETY: as above.
        unsafe { std::env::remove_var("DOCKER_CONFIG") };
    }
}

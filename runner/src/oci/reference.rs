//! Image references (`localhost:5000/tools/sigsnoop:1.0`, `…@sha256:<hex>`) and the rule
//! that tells one apart from a file path: an existing file always wins; otherwise an
//! argument whose first component names a registry host (it has a `.` or a `:port`, or is
//! `localhost`) followed by a repository is a reference. Anything else is a file path, so
//! a missing `pkg.json` still says "cannot read package".

use std::fmt;
use std::path::Path;

/// The tag assumed when a reference names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed reference. Exactly one of `tag` and `digest` is what gets resolved: a digest,
/// when given, wins over a tag (`repo:1.0@sha256:…` pins the digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `host[:port]`, as written.
    pub registry: String,
    /// `tools/sigsnoop`.
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>`.
    pub digest: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{text}` is not an image reference ({why}); expected host[:port]/repository[:tag|@sha256:<hex>]")]
pub struct ParseError {
    pub text: String,
    pub why: &'static str,
}

/// What a command-line argument names.
pub enum Target {
    File,
    Image(Reference),
}

/// The documented rule: an existing file wins, then a reference, else a (missing) file.
pub fn classify(arg: &str) -> Target {
    if Path::new(arg).exists() {
        return Target::File;
    }
    match arg.parse() {
        Ok(r) => Target::Image(r),
        Err(_) => Target::File,
    }
}

fn valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) if !n.ends_with(']') || n.starts_with('[') => (n, Some(p)),
        _ => (host, None),
    };
    if let Some(p) = port {
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    if let Some(v6) = name.strip_prefix('[').and_then(|n| n.strip_suffix(']')) {
        return v6.parse::<std::net::Ipv6Addr>().is_ok();
    }
    let looks_like_host = name == "localhost" || name.contains('.') || port.is_some();
    looks_like_host
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

fn valid_component(c: &str) -> bool {
    // OCI distribution: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|&x| x.is_ascii_lowercase() || x.is_ascii_digit() || b"._-".contains(&x))
        && !c.contains("..")
}

fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&x| x.is_ascii_alphanumeric() || b"_.-".contains(&x))
}

/// `sha256:` followed by 64 lower-case hex digits.
pub fn valid_digest(d: &str) -> bool {
    d.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

impl std::str::FromStr for Reference {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, ParseError> {
        let fail = |why| ParseError {
            text: text.into(),
            why,
        };
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) if valid_digest(d) => (r, Some(d.to_string())),
            Some(_) => {
                return Err(fail(
                    "a digest must be sha256: and 64 lower-case hex digits",
                ))
            }
            None => (text, None),
        };
        let (registry, path) = rest
            .split_once('/')
            .ok_or_else(|| fail("no repository after the registry"))?;
        if !valid_host(registry) {
            return Err(fail(
                "the first component must be a registry host: with a dot, a :port, or localhost",
            ));
        }
        let (repository, tag) = match path.rsplit_once(':') {
            Some((r, t)) => {
                if !valid_tag(t) {
                    return Err(fail("a tag is letters, digits, `_`, `.` and `-`"));
                }
                (r, Some(t.to_string()))
            }
            None => (path, None),
        };
        if !repository.split('/').all(valid_component) {
            return Err(fail(
                "a repository is lower-case letters, digits and `._-`, separated by `/`",
            ));
        }
        let tag = match (&tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_string()),
            _ => tag,
        };
        Ok(Reference {
            registry: registry.into(),
            repository: repository.into(),
            tag,
            digest,
        })
    }
}

impl Reference {
    /// `host/repo`, the name policies and signatures' `docker-reference` use.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The same repository, at a digest.
    pub fn at_digest(&self, digest: &str) -> Reference {
        Reference {
            tag: None,
            digest: Some(digest.into()),
            ..self.clone()
        }
    }

    /// The same repository, at a tag.
    pub fn at_tag(&self, tag: &str) -> Reference {
        Reference {
            tag: Some(tag.into()),
            digest: None,
            ..self.clone()
        }
    }

    /// The tag cosign stores an image's signatures under: `sha256-<hex>.sig`.
    pub fn signature_tag(digest: &str) -> String {
        format!("{}.sig", digest.replace(':', "-"))
    }

    /// The host part without the port, for the loopback rule.
    pub fn host(&self) -> &str {
        let r = self.registry.as_str();
        if let Some(end) = r.find(']') {
            return &r[1..end];
        }
        r.rsplit_once(':').map_or(r, |(h, _)| h)
    }

    /// Whether the registry is on this machine (plain HTTP is allowed there).
    pub fn is_loopback(&self) -> bool {
        let host = self.host();
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The form oci-client takes.
    pub fn to_client(&self) -> oci_client::Reference {
        match (&self.tag, &self.digest) {
            (_, Some(d)) => oci_client::Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.clone(),
            ),
            (Some(t), None) => oci_client::Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
            ),
            (None, None) => unreachable!("a parsed reference has a tag or a digest"),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Reference, ParseError> {
        s.parse()
    }

    #[test]
    fn references() {
        let r = parse("localhost:5000/tools/sigsnoop:1.0").unwrap();
        assert_eq!(r.registry, "localhost:5000");
        assert_eq!(r.repository, "tools/sigsnoop");
        assert_eq!(r.tag.as_deref(), Some("1.0"));
        assert!(r.is_loopback());
        let r = parse("registry.example.com/sigsnoop").unwrap();
        assert_eq!(r.tag.as_deref(), Some("latest"));
        assert!(!r.is_loopback());
        let d = format!("sha256:{}", "ab".repeat(32));
        let r = parse(&format!("127.0.0.1:5000/a@{d}")).unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some(d.as_str())));
        assert_eq!(r.registry, "127.0.0.1:5000");
        assert!(parse("[::1]:5000/a:x").unwrap().is_loopback());
        assert_eq!(
            parse("localhost:5000/a/b:c").unwrap().to_string(),
            "localhost:5000/a/b:c"
        );
    }

    #[test]
    fn not_references() {
        for s in [
            "programs/sigsnoop/package.json",
            "pkg.json",
            "/abs/path.json",
            "./pkg.json",
            "../x/y.json",
            "localhost:5000",
            "localhost:5000/Upper",
            "localhost:5000/a@sha256:short",
            "localhost:5000/a:bad tag",
            "host.-x/a",
        ] {
            assert!(parse(s).is_err(), "{s} parsed as a reference");
        }
    }

    #[test]
    fn signature_tags() {
        assert_eq!(Reference::signature_tag("sha256:abc"), "sha256-abc.sig");
    }
}

//! The options of `runner run` for running on many hosts: `--metrics ADDR`, where the
//! Prometheus endpoint listens, and `--labels`, the keys every JSON line starts with so
//! lines from many hosts and packages can be told apart once shipped.

use std::net::SocketAddr;

/// The longest value a `--labels` key may have (a host name is at most 64 bytes).
const MAX_VALUE: usize = 256;

/// `--metrics ADDR`: an IP address and port (`127.0.0.1:9464`, `0.0.0.0:9464`,
/// `[::1]:9464`), or `localhost:PORT`.
pub(super) fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    let text = match text.strip_prefix("localhost:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => text.to_string(),
    };
    text.parse().map_err(|_| {
        "expected an address and a port, like 127.0.0.1:9464, 0.0.0.0:9464 or [::1]:9464".into()
    })
}

/// One item of `--labels` as the command line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Label {
    /// `host`: this machine's host name.
    Host,
    /// `package`: the package's name.
    Package,
    /// `KEY=VALUE`, `host=node-7` included.
    Fixed(String, String),
}

/// `host,package,env=prod`: which keys JSON lines start with.
pub(super) fn labels(text: &str) -> Result<Vec<Label>, String> {
    let mut out: Vec<Label> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    for item in text.split(',') {
        let (key, label) = match item.split_once('=') {
            None if item == "host" => ("host".to_string(), Label::Host),
            None if item == "package" => ("package".to_string(), Label::Package),
            Some((key, value)) if is_key(key) && value.len() <= MAX_VALUE => {
                (key.to_string(), Label::Fixed(key.into(), value.into()))
            }
            Some((key, _)) if is_key(key) => {
                return Err(format!("the value of `{key}` is over {MAX_VALUE} bytes"))
            }
            _ => {
                return Err(format!(
                    "`{item}`: expected host, package or KEY=VALUE (KEY: letters, digits and _), separated by commas"
                ))
            }
        };
        if keys.contains(&key) {
            return Err(format!("`{key}` is given twice"));
        }
        keys.push(key);
        out.push(label);
    }
    Ok(out)
}

fn is_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The keys and values of `labels` for package `package`: (key without its `@`, value).
pub(crate) fn resolve(labels: &[Label], package: &str) -> Vec<(String, String)> {
    labels
        .iter()
        .map(|label| match label {
            Label::Host => ("host".into(), host_name()),
            Label::Package => ("package".into(), package.into()),
            Label::Fixed(key, value) => (key.clone(), value.clone()),
        })
        .collect()
}

/// This machine's host name (of the UTS namespace the runner is in).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim_end().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            listen_addr("127.0.0.1:9464").unwrap(),
            "127.0.0.1:9464".parse().unwrap()
        );
        assert_eq!(
            listen_addr("localhost:1").unwrap(),
            "127.0.0.1:1".parse().unwrap()
        );
        assert_eq!(listen_addr("[::]:9464").unwrap().port(), 9464);
        for bad in ["9464", "host:9464", "127.0.0.1", "127.0.0.1:99999", ""] {
            assert!(listen_addr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn label_lists() {
        assert_eq!(
            labels("host,package,env=prod").unwrap(),
            [
                Label::Host,
                Label::Package,
                Label::Fixed("env".into(), "prod".into())
            ]
        );
        assert_eq!(
            labels("host=node-7").unwrap(),
            [Label::Fixed("host".into(), "node-7".into())]
        );
        assert_eq!(labels("host,host=x").unwrap_err(), "`host` is given twice");
        for bad in ["", "hots", "a-b=1", "host,", "=x"] {
            assert!(labels(bad).is_err(), "{bad}");
        }
        let resolved = resolve(&labels("package,env=").unwrap(), "sigsnoop");
        assert_eq!(
            resolved,
            [
                ("package".to_string(), "sigsnoop".to_string()),
                ("env".to_string(), String::new())
            ]
        );
        let host = resolve(&[Label::Host], "p");
        assert!(!host[0].1.is_empty() && !host[0].1.contains('\n'));
    }
}

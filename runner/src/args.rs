//! Small parsers for option values the runner's own command lines share.

use std::time::Duration;

/// `KEY=VALUE` with both sides non-empty; `example` shows the form in the error.
pub(crate) fn pair(text: &str, example: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.into(), v.into())),
        _ => Err(format!("expected {example}")),
    }
}

/// Seconds, like 5, 1.5s, 200ms or 2m.
pub(crate) fn duration(text: &str) -> Result<Duration, String> {
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
pub(crate) fn interval(text: &str) -> Result<Duration, String> {
    let interval = duration(text)?;
    if interval < Duration::from_millis(10) {
        return Err("expected at least 10ms".into());
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration("2").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("200ms").unwrap(), Duration::from_millis(200));
        assert!(duration("soon").is_err());
        assert!(duration("-1").is_err());
        assert!(interval("5ms").is_err());
    }

    #[test]
    fn pairs() {
        assert_eq!(pair("a=b", "A=B").unwrap(), ("a".into(), "b".into()));
        assert_eq!(pair("a", "A=B").unwrap_err(), "expected A=B");
        assert!(pair("=b", "A=B").is_err());
    }
}

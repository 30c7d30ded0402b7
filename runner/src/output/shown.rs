//! How a value in a declared format reads (`spec::vocab::ValueFormat`): the same text in a
//! table cell and a CSV cell, and in JSON a string (a number for `duration` and `signed`).
//! JSON keeps the raw number beside a format that loses it (`ValueFormat::keeps_raw`).
//!
//! | format | table / CSV | JSON |
//! | --- | --- | --- |
//! | `errno` | `ENOENT` for -2; 0 and above as they are | `"ENOENT"`, `"3"` |
//! | `signal` | `SIGKILL`, `N/A` for 0, `SIGNAL-34`, `SIGSEGV (core dumped)` for 0x8b | the same |
//! | `syscall` | `openat` | the same |
//! | `ktime` | `10:25:29.123456` (local) | `"2026-11-22T10:25:29.123456789+01:00"` |
//! | `duration:ns:ms` | `1.235` (3 decimals at most), header `LAT(ms)` | `1.234567` (exact) |
//! | `duration:ns` | `1.235ms` (the unit that reads best) | `1234567` (the held unit) |
//! | `dev` | `254:0` | the same |
//! | `ipv4`, `ipv6` | `10.0.0.1`, `fe80::1` | the same |
//! | `hex`, `octal`, `signed` | `0x7f3a00`, `0644`, `-1` | `"0x7f3a00"`, `"0644"`, `-1` |
//! | `flags:open` | `O_WRONLY\|O_CREAT\|O_TRUNC` | the same |

use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::clock::{civil, Ktime};
use crate::spec::names;
use crate::spec::plan::Raw;
use crate::spec::types::sign_extend;
use crate::spec::vocab::{FlagSet, TimeUnit, ValueFormat};

/// Where the text goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// A table or CSV cell.
    Text,
    /// A JSON value: the text, quoted unless it is a number.
    Json,
}

/// What the format shows, and whether JSON writes it as a number.
struct Shown {
    text: String,
    number: bool,
}

impl Shown {
    fn text(text: String) -> Shown {
        Shown {
            text,
            number: false,
        }
    }
}

/// The integer a raw value holds, if it fits.
fn int(raw: Raw) -> Option<i128> {
    match raw {
        Raw::Int { v, .. } => Some(v),
        Raw::Wide { bits, signed: true } => Some(bits as i128),
        Raw::Wide { bits, .. } => i128::try_from(bits).ok(),
        Raw::Bytes(_) => None,
    }
}

/// The raw value as the number it is, in text.
fn plain(raw: Raw) -> String {
    match raw {
        Raw::Int { v, .. } => v.to_string(),
        Raw::Wide { bits, signed: true } => (bits as i128).to_string(),
        Raw::Wide { bits, .. } => bits.to_string(),
        Raw::Bytes(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

/// Write `raw` shown as `format` to `out`, for a cell or as a JSON value.
pub(crate) fn render(
    format: &ValueFormat,
    raw: Raw,
    ktime: &Ktime,
    target: Target,
    out: &mut Vec<u8>,
) {
    let shown = shown(format, raw, ktime, target);
    if target == Target::Json && !shown.number {
        out.push(b'"');
        out.extend_from_slice(shown.text.as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(shown.text.as_bytes());
    }
}

fn shown(format: &ValueFormat, raw: Raw, ktime: &Ktime, target: Target) -> Shown {
    let v = int(raw);
    let text = match (format, v) {
        (ValueFormat::Errno, Some(v)) => errno(v),
        (ValueFormat::Signal, Some(v)) => signal(v),
        (ValueFormat::Syscall, Some(v)) => u64::try_from(v)
            .ok()
            .and_then(names::syscall)
            .map_or_else(|| v.to_string(), str::to_string),
        (ValueFormat::Ktime(unit), Some(v)) => self::ktime(v, *unit, ktime, target),
        (ValueFormat::Duration { unit, shown }, Some(v)) => {
            return duration(v, *unit, *shown, target)
        }
        (ValueFormat::Dev, Some(v)) => {
            let v = v as u64;
            format!("{}:{}", v >> 20, v & 0xfffff)
        }
        (ValueFormat::Hex, _) => hex(raw),
        (ValueFormat::Octal, Some(0)) => "0".to_string(),
        (ValueFormat::Octal, Some(v)) if v > 0 => format!("0{v:o}"),
        (ValueFormat::Signed, _) => {
            let v = match raw {
                Raw::Int { v, bits } => i128::from(sign_extend(v as u64, bits)),
                Raw::Wide { bits, .. } => bits as i128,
                Raw::Bytes(_) => return Shown::text(plain(raw)),
            };
            return Shown {
                text: v.to_string(),
                number: true,
            };
        }
        (ValueFormat::Flags(FlagSet::Open), Some(v)) => {
            let mut s = String::new();
            names::open_flags(v as u64, &mut s);
            s
        }
        (ValueFormat::Ipv4 | ValueFormat::Ipv6, _) => address(raw),
        // `ip:<member>` whose member names no family the runner knows (the decoder hands
        // IPv4 and IPv6 over as such): the bytes.
        (ValueFormat::Ip(_), _) => hex(raw),
        _ => plain(raw),
    };
    Shown::text(text)
}

/// A syscall's return: a negative errno by name, anything else as it is.
fn errno(v: i128) -> String {
    match u64::try_from(-v)
        .ok()
        .filter(|_| v < 0)
        .and_then(names::errno)
    {
        Some(name) => name.to_string(),
        None => v.to_string(),
    }
}

/// A signal by name; bit 0x80 on a signal (the low byte of an exit code) is a core dump.
fn signal(v: i128) -> String {
    let mut s = String::new();
    let Ok(n) = u64::try_from(v) else {
        return v.to_string();
    };
    if names::signal(n, &mut s) {
        return s;
    }
    let (sig, core) = (n & 0x7f, n & 0x80 != 0);
    if core && n < 0x100 && sig > 0 && names::signal(sig, &mut s) {
        s.push_str(" (core dumped)");
        return s;
    }
    v.to_string()
}

fn hex(raw: Raw) -> String {
    match raw {
        Raw::Int { v, bits } => {
            let mask = if bits >= 64 {
                u64::MAX
            } else {
                (1u64 << bits) - 1
            };
            format!("{:#x}", (v as u64) & mask)
        }
        Raw::Wide { bits, .. } => format!("{bits:#x}"),
        Raw::Bytes(b) => {
            let mut s = String::from("0x");
            for x in b {
                let _ = write!(s, "{x:02x}");
            }
            s
        }
    }
}

fn address(raw: Raw) -> String {
    match raw {
        Raw::Bytes(b) if b.len() == 4 => Ipv4Addr::new(b[0], b[1], b[2], b[3]).to_string(),
        Raw::Bytes(b) if b.len() == 16 => {
            let mut bytes = [0u8; 16];
            bytes.copy_from_slice(b);
            Ipv6Addr::from(bytes).to_string()
        }
        other => hex(other),
    }
}

/// A CLOCK_MONOTONIC stamp in `unit` as wall-clock time: `10:25:29.123456` in a cell,
/// RFC 3339 with nanoseconds in JSON.
fn ktime(v: i128, unit: TimeUnit, base: &Ktime, target: Target) -> String {
    let wall = base.base_ns + v * i128::from(unit.nanos());
    let (secs, nsec) = (
        wall.div_euclid(1_000_000_000),
        wall.rem_euclid(1_000_000_000),
    );
    let Ok(secs) = i64::try_from(secs) else {
        return v.to_string();
    };
    let civil = civil(secs, base.utc);
    match target {
        Target::Text => format!("{}.{:06}", civil.hms(), nsec / 1000),
        Target::Json => format!("{}.{nsec:09}{}", civil.date_time, civil.zone),
    }
}

/// `v` over 10^`k`, exactly: `1.234567`, `-0.5`, `12`.
fn exact(v: i128, k: u32) -> String {
    let p = 10i128.pow(k);
    let (whole, frac) = (v.abs() / p, v.abs() % p);
    let sign = if v < 0 { "-" } else { "" };
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let digits = format!("{frac:0width$}", width = k as usize);
    format!("{sign}{whole}.{}", digits.trim_end_matches('0'))
}

/// `v` over 10^`k`, rounded (half away from zero) to `d` decimals: `1.235`.
fn fixed(v: i128, k: u32, d: u32) -> String {
    let (v, k) = if d >= k {
        (v * 10i128.pow(d - k), d)
    } else {
        let p = 10i128.pow(k - d);
        let rounded = (v.abs() + p / 2) / p;
        (if v < 0 { -rounded } else { rounded }, d)
    };
    let p = 10i128.pow(k);
    let sign = if v < 0 { "-" } else { "" };
    if k == 0 {
        return format!("{sign}{}", v.abs());
    }
    format!(
        "{sign}{}.{:0width$}",
        v.abs() / p,
        v.abs() % p,
        width = k as usize
    )
}

/// How many powers of ten `big` is of `small`.
fn ratio_pow10(big: TimeUnit, small: TimeUnit) -> u32 {
    (big.nanos() / small.nanos()).ilog10()
}

/// A time span: in a cell, in the unit asked for (3 decimals at most), or in the unit that
/// reads best with that unit after it; in JSON, exactly, in the unit asked for or held.
fn duration(v: i128, unit: TimeUnit, shown: Option<TimeUnit>, target: Target) -> Shown {
    let to = |to: TimeUnit, decimals: u32| {
        if to >= unit {
            let k = ratio_pow10(to, unit);
            match decimals {
                u32::MAX => exact(v, k),
                d => fixed(v, k, d.min(k)),
            }
        } else {
            (v * i128::from(unit.nanos() / to.nanos())).to_string()
        }
    };
    let text = match (shown, target) {
        (Some(u), Target::Json) => to(u, u32::MAX),
        (None, Target::Json) => v.to_string(),
        (Some(u), Target::Text) => to(u, 3),
        (None, Target::Text) => {
            let ns = v.saturating_mul(i128::from(unit.nanos())).unsigned_abs();
            let best = [TimeUnit::S, TimeUnit::Ms, TimeUnit::Us]
                .into_iter()
                .find(|u| ns >= u128::from(u.nanos()) && *u >= unit)
                .unwrap_or(unit);
            let mut text = to(best, 3);
            if text.contains('.') {
                text = text.trim_end_matches('0').trim_end_matches('.').to_string();
            }
            return Shown::text(text + best.name());
        }
    };
    Shown { text, number: true }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Ktime = Ktime {
        base_ns: 1_700_000_000_000_000_000,
        utc: true,
    };

    fn cell(format: &str, raw: Raw) -> String {
        let format = ValueFormat::parse(format).unwrap();
        let mut out = Vec::new();
        render(&format, raw, &BASE, Target::Text, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn json(format: &str, raw: Raw) -> String {
        let format = ValueFormat::parse(format).unwrap();
        let mut out = Vec::new();
        render(&format, raw, &BASE, Target::Json, &mut out);
        String::from_utf8(out).unwrap()
    }

    fn int(v: i128) -> Raw<'static> {
        Raw::Int { v, bits: 32 }
    }

    #[test]
    fn errno_names_negative_returns_only() {
        assert_eq!(cell("errno", int(-2)), "ENOENT");
        assert_eq!(cell("errno", int(-512)), "ERESTARTSYS");
        assert_eq!(cell("errno", int(3)), "3");
        assert_eq!(cell("errno", int(0)), "0");
        assert_eq!(cell("errno", int(-4000)), "-4000");
        assert_eq!(json("errno", int(-2)), "\"ENOENT\"");
        assert_eq!(json("errno", int(3)), "\"3\"");
    }

    #[test]
    fn signals_with_the_core_dump_bit() {
        assert_eq!(cell("signal", int(9)), "SIGKILL");
        assert_eq!(cell("signal", int(0)), "N/A");
        assert_eq!(cell("signal", int(0x8b)), "SIGSEGV (core dumped)");
        assert_eq!(cell("signal", int(0x80)), "128");
        assert_eq!(cell("signal", int(300)), "300");
        assert_eq!(cell("signal", int(-1)), "-1");
    }

    #[test]
    fn durations_in_a_fixed_unit_or_the_best_one() {
        assert_eq!(cell("duration:ns:ms", int(1_234_567)), "1.235");
        assert_eq!(json("duration:ns:ms", int(1_234_567)), "1.234567");
        assert_eq!(cell("duration:ns:s", int(2_500_000_000)), "2.500");
        assert_eq!(cell("duration:us:us", int(42)), "42");
        assert_eq!(cell("duration:ms:us", int(3)), "3000");
        assert_eq!(json("duration:ns:ms", int(-1_500_000)), "-1.5");
        assert_eq!(cell("duration:ns", int(1_250_000)), "1.25ms");
        assert_eq!(cell("duration:ns", int(999)), "999ns");
        assert_eq!(cell("duration:us", int(2_000_000)), "2s");
        assert_eq!(cell("duration:us", int(15)), "15us");
        assert_eq!(json("duration:us", int(15)), "15");
        assert_eq!(cell("duration:ns", int(0)), "0ns");
    }

    #[test]
    fn kernel_time_as_wall_clock_time() {
        let raw = Raw::Int {
            v: 1_500_000_123,
            bits: 64,
        };
        assert_eq!(cell("ktime", raw), "22:13:21.500000");
        assert_eq!(
            json("ktime", raw),
            "\"2023-11-14T22:13:21.500000123+00:00\""
        );
        assert_eq!(cell("ktime:us", int(2_000_001)), "22:13:22.000001");
    }

    #[test]
    fn numbers_in_other_bases_and_devices() {
        assert_eq!(cell("hex", Raw::Int { v: -1, bits: 32 }), "0xffffffff");
        assert_eq!(cell("hex", Raw::Int { v: 255, bits: 64 }), "0xff");
        assert_eq!(
            json(
                "hex",
                Raw::Wide {
                    bits: u128::MAX,
                    signed: false
                }
            ),
            "\"0xffffffffffffffffffffffffffffffff\""
        );
        assert_eq!(cell("octal", int(0o644)), "0644");
        assert_eq!(cell("octal", int(0)), "0");
        assert_eq!(cell("octal", int(0o100)), "0100");
        assert_eq!(
            cell(
                "signed",
                Raw::Int {
                    v: 0xffff_fffe,
                    bits: 32
                }
            ),
            "-2"
        );
        assert_eq!(
            json(
                "signed",
                Raw::Int {
                    v: 0xffff_fffe,
                    bits: 32
                }
            ),
            "-2"
        );
        assert_eq!(cell("dev", int(266_338_304)), "254:0");
        assert_eq!(cell("dev", int((8 << 20) | 17)), "8:17");
    }

    #[test]
    fn addresses() {
        assert_eq!(cell("ipv4", Raw::Bytes(&[127, 0, 0, 1])), "127.0.0.1");
        let mut v6 = [0u8; 16];
        v6[15] = 1;
        assert_eq!(cell("ipv6", Raw::Bytes(&v6)), "::1");
        v6[10] = 0xff;
        v6[11] = 0xff;
        v6[12] = 10;
        assert_eq!(json("ipv6", Raw::Bytes(&v6)), "\"::ffff:10.0.0.1\"");
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn names_of_this_machine() {
        assert_eq!(cell("syscall", int(257)), "openat");
        assert_eq!(cell("syscall", int(9999)), "9999");
        assert_eq!(cell("flags:open", int(524288)), "O_RDONLY|O_CLOEXEC");
    }
}

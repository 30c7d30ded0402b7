//! The wall clock every line is stamped with: read once per event, its text rebuilt only
//! when the second changes (milliseconds are written each time). A clock can be frozen (in
//! UTC) for reproducible tests. It also says how a kernel timestamp (CLOCK_MONOTONIC, the
//! `ktime` format) reads as wall-clock time.

/// Local wall-clock time, formatted once per second.
pub(crate) struct Clock {
    /// A frozen instant (seconds, nanoseconds since the epoch), shown in UTC: for tests.
    fixed: Option<(i64, i64)>,
    second: i64,
    stamp: Stamp,
}

/// One reading of the clock, in the forms the formats print.
pub(crate) struct Stamp {
    /// `HH:MM:SS.mmm`: the table's and CSV's time.
    pub hms: [u8; 12],
    /// `2026-11-22T10:25:29`: the microseconds and the zone go after it.
    pub date_time: String,
    /// `+01:00`.
    pub zone: String,
    pub nsec: i64,
    /// How kernel timestamps read as wall-clock time.
    pub ktime: Ktime,
}

/// CLOCK_MONOTONIC (`bpf_ktime_get_ns`, `task->start_time`) as wall-clock time: the
/// wall-clock time of monotonic 0, taken once when the clock starts (a later change of
/// the wall clock, or a suspend, is not followed).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ktime {
    /// Nanoseconds since the epoch at monotonic 0.
    pub base_ns: i128,
    /// Shown in UTC (a frozen clock) rather than local time.
    pub utc: bool,
}

/// A civil time: `2026-11-22T10:25:29` and its zone `+01:00`.
pub(crate) struct Civil {
    pub date_time: String,
    pub zone: String,
}

impl Civil {
    /// `10:25:29`.
    pub fn hms(&self) -> &str {
        &self.date_time[self.date_time.len() - 8..]
    }
}

/// The civil time of `secs` since the epoch, local or in UTC.
pub(crate) fn civil(secs: i64, utc: bool) -> Civil {
    let secs = secs as libc::time_t;
    // SAFETY: a zeroed `tm` is a valid out-parameter.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if utc {
        // SAFETY: both pointers are valid; gmtime_r is thread-safe.
        unsafe { libc::gmtime_r(&secs, &mut tm) };
    } else {
        // SAFETY: both pointers are valid; localtime_r is thread-safe.
        unsafe { libc::localtime_r(&secs, &mut tm) };
    }
    let off = tm.tm_gmtoff;
    let sign = if off < 0 { '-' } else { '+' };
    Civil {
        date_time: format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday,
            tm.tm_hour,
            tm.tm_min,
            tm.tm_sec
        ),
        zone: format!("{sign}{:02}:{:02}", off.abs() / 3600, off.abs() % 3600 / 60),
    }
}

impl Stamp {
    /// RFC 3339 with microseconds: `2026-11-22T10:25:29.123456+01:00`.
    pub fn rfc3339(&self) -> String {
        format!("{}.{:06}{}", self.date_time, self.nsec / 1000, self.zone)
    }

    /// `HH:MM:SS.mmm`.
    pub fn hms(&self) -> &str {
        std::str::from_utf8(&self.hms).unwrap_or("00:00:00.000")
    }
}

fn clock_ns(clock: libc::clockid_t) -> i128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec)
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            fixed: None,
            second: i64::MIN,
            stamp: Stamp {
                hms: *b"00:00:00.000",
                date_time: String::new(),
                zone: String::new(),
                nsec: 0,
                ktime: Ktime {
                    base_ns: clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_MONOTONIC),
                    utc: false,
                },
            },
        }
    }

    /// Always read this instant (seconds, nanoseconds since the epoch), shown in UTC; a
    /// kernel timestamp of 0 reads as this instant too.
    pub fn freeze(&mut self, secs: i64, nsec: i64) {
        self.fixed = Some((secs, nsec));
        self.second = i64::MIN;
        self.stamp.ktime = Ktime {
            base_ns: i128::from(secs) * 1_000_000_000 + i128::from(nsec),
            utc: true,
        };
    }

    /// The time now, refreshing the cached text when the second changed.
    pub fn now(&mut self) -> &Stamp {
        let (sec, nsec) = match self.fixed {
            Some(fixed) => fixed,
            None => {
                let ns = clock_ns(libc::CLOCK_REALTIME);
                ((ns / 1_000_000_000) as i64, (ns % 1_000_000_000) as i64)
            }
        };
        if sec != self.second {
            self.second = sec;
            let civil = civil(sec, self.fixed.is_some());
            self.stamp.hms[..8].copy_from_slice(civil.hms().as_bytes());
            self.stamp.date_time = civil.date_time;
            self.stamp.zone = civil.zone;
        }
        let ms = (nsec / 1_000_000).clamp(0, 999) as u16;
        let digit = |d: u16| b'0' + d as u8;
        self.stamp.hms[8..].copy_from_slice(&[
            b'.',
            digit(ms / 100),
            digit(ms / 10 % 10),
            digit(ms % 10),
        ]);
        self.stamp.nsec = nsec;
        &self.stamp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_clock_reads_in_utc_with_milliseconds() {
        let mut clock = Clock::new();
        clock.freeze(1_700_000_000, 987_654_321);
        assert_eq!(clock.now().hms(), "22:13:20.987");
        clock.freeze(1_700_000_000, 123_456_789);
        let stamp = clock.now();
        assert_eq!(stamp.hms(), "22:13:20.123");
        assert_eq!(stamp.rfc3339(), "2023-11-14T22:13:20.123456+00:00");
        assert_eq!(stamp.ktime.base_ns, 1_700_000_000_123_456_789);
    }

    #[test]
    fn the_monotonic_base_is_in_the_past() {
        let base = Clock::new().stamp.ktime.base_ns;
        let now = clock_ns(libc::CLOCK_REALTIME);
        assert!(base > 0 && base <= now);
    }
}

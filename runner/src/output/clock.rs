//! The wall clock every line is stamped with: read once per event, its text rebuilt only
//! when the second changes. A clock can be frozen (in UTC) for reproducible tests.

/// Local wall-clock time, formatted once per second.
pub(crate) struct Clock {
    /// A frozen instant (seconds, nanoseconds since the epoch), shown in UTC: for tests.
    fixed: Option<(i64, i64)>,
    second: i64,
    stamp: Stamp,
}

/// One reading of the clock, in the forms the formats print.
pub(crate) struct Stamp {
    /// `HH:MM:SS`.
    pub hms: [u8; 8],
    /// `2026-11-22T10:25:29`: the microseconds and the zone go after it.
    pub date_time: String,
    /// `+01:00`.
    pub zone: String,
    pub nsec: i64,
}

impl Stamp {
    /// RFC 3339 with microseconds: `2026-11-22T10:25:29.123456+01:00`.
    pub fn rfc3339(&self) -> String {
        format!("{}.{:06}{}", self.date_time, self.nsec / 1000, self.zone)
    }

    pub fn hms(&self) -> &str {
        std::str::from_utf8(&self.hms).unwrap_or("00:00:00")
    }
}

impl Clock {
    pub fn new() -> Self {
        Clock {
            fixed: None,
            second: i64::MIN,
            stamp: Stamp {
                hms: *b"00:00:00",
                date_time: String::new(),
                zone: String::new(),
                nsec: 0,
            },
        }
    }

    /// Always read this instant (seconds, nanoseconds since the epoch), shown in UTC.
    pub fn freeze(&mut self, secs: i64, nsec: i64) {
        self.fixed = Some((secs, nsec));
        self.second = i64::MIN;
    }

    /// The time now, refreshing the cached text when the second changed.
    pub fn now(&mut self) -> &Stamp {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        match self.fixed {
            Some((sec, nsec)) => (ts.tv_sec, ts.tv_nsec) = (sec, nsec),
            // SAFETY: `ts` is a valid out-pointer.
            None => unsafe {
                libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts);
            },
        }
        if ts.tv_sec != self.second {
            self.second = ts.tv_sec;
            self.format_second(ts.tv_sec);
        }
        self.stamp.nsec = ts.tv_nsec;
        &self.stamp
    }

    fn format_second(&mut self, secs: libc::time_t) {
        // SAFETY: a zeroed `tm` is a valid out-parameter.
        let mut tm: libc::tm = unsafe { std::mem::zeroed() };
        if self.fixed.is_some() {
            // SAFETY: both pointers are valid; gmtime_r is thread-safe.
            unsafe { libc::gmtime_r(&secs, &mut tm) };
        } else {
            // SAFETY: both pointers are valid; localtime_r is thread-safe.
            unsafe { libc::localtime_r(&secs, &mut tm) };
        }
        let hms = format!("{:02}:{:02}:{:02}", tm.tm_hour, tm.tm_min, tm.tm_sec);
        self.stamp.hms.copy_from_slice(&hms.as_bytes()[..8]);
        self.stamp.date_time = format!(
            "{:04}-{:02}-{:02}T{hms}",
            tm.tm_year + 1900,
            tm.tm_mon + 1,
            tm.tm_mday
        );
        let off = tm.tm_gmtoff;
        let sign = if off < 0 { '-' } else { '+' };
        self.stamp.zone = format!("{sign}{:02}:{:02}", off.abs() / 3600, off.abs() % 3600 / 60);
    }
}

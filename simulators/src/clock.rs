//! Wall-clock fields for ids and timestamps (no calendar dependency).

use std::time::{SystemTime, UNIX_EPOCH};

/// A civil date-time in the carrier's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl Civil {
    pub fn now(utc_offset_hours: i32) -> Self {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        Self::from_unix(secs + utc_offset_hours as i64 * 3600)
    }

    /// Howard Hinnant's days-to-civil algorithm.
    pub fn from_unix(secs: i64) -> Self {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let y = if m <= 2 { y + 1 } else { y } as u32;
        Civil {
            year: y,
            month: m,
            day: d,
            hour: rem / 3600,
            minute: rem / 60 % 60,
            second: rem % 60,
        }
    }

    /// `MMDDhhmmss` as the decimal number the headers carry.
    pub fn mmddhhmmss(&self) -> u32 {
        self.month * 100_000_000
            + self.day * 1_000_000
            + self.hour * 10_000
            + self.minute * 100
            + self.second
    }

    /// `YYMMDDhhmm` (CMPP report Submit_time / Done_time, SMGP report dates).
    pub fn yymmddhhmm(&self) -> [u8; 10] {
        let mut out = [0u8; 10];
        put2(&mut out[0..2], self.year % 100);
        put2(&mut out[2..4], self.month);
        put2(&mut out[4..6], self.day);
        put2(&mut out[6..8], self.hour);
        put2(&mut out[8..10], self.minute);
        out
    }

    /// `YYYYMMDDhhmmss` (SMGP Deliver RecvTime).
    pub fn yyyymmddhhmmss(&self) -> [u8; 14] {
        let mut out = [0u8; 14];
        put2(&mut out[0..2], self.year / 100 % 100);
        put2(&mut out[2..4], self.year % 100);
        put2(&mut out[4..6], self.month);
        put2(&mut out[6..8], self.day);
        put2(&mut out[8..10], self.hour);
        put2(&mut out[10..12], self.minute);
        put2(&mut out[12..14], self.second);
        out
    }
}

fn put2(dst: &mut [u8], v: u32) {
    dst[0] = b'0' + (v / 10 % 10) as u8;
    dst[1] = b'0' + (v % 10) as u8;
}

/// Milliseconds since the Unix epoch (for the received-message ring).
pub fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_from_unix() {
        // 2026-12-04 15:07:30 UTC
        let c = Civil::from_unix(1_796_396_850);
        assert_eq!(
            (c.year, c.month, c.day, c.hour, c.minute, c.second),
            (2026, 12, 4, 15, 7, 30)
        );
        assert_eq!(c.mmddhhmmss(), 1204150730);
        assert_eq!(&c.yymmddhhmm(), b"2612041507");
        assert_eq!(&c.yyyymmddhhmmss(), b"20261204150730");
    }
}

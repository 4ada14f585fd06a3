//! Wall-clock helpers: Unix milliseconds, RFC 3339 formatting and UTC-midnight arithmetic,
//! without a date crate. Everything stored or logged uses Unix milliseconds in UTC.

use std::time::{SystemTime, UNIX_EPOCH};

pub const DAY_MS: u64 = 86_400_000;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The first millisecond of the next UTC day after `ms`.
pub fn next_utc_midnight(ms: u64) -> u64 {
    (ms / DAY_MS + 1) * DAY_MS
}

/// The first millisecond of the UTC calendar month that contains `ms`.
pub fn utc_month_start(ms: u64) -> u64 {
    let days = ms / DAY_MS;
    let (_, _, d) = civil_from_days(days as i64);
    (days - u64::from(d - 1)) * DAY_MS
}

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Midnight UTC of a `YYYY-MM-DD` date, in Unix milliseconds; `None` for anything else.
pub fn parse_date_ms(date: &str) -> Option<u64> {
    let mut parts = date.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return None;
    }
    let (y, m, d): (i64, u32, u32) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    // Howard Hinnant's days_from_civil, the inverse of `civil_from_days`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = u64::try_from(days).ok()? * DAY_MS;
    // A day that does not exist (02-30) comes back as another date.
    (rfc3339_ms(ms)[..10] == *date).then_some(ms)
}

/// `2026-11-24T10:40:09.123Z`
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let (y, mo, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates_and_refuses_what_is_not_one() {
        assert_eq!(parse_date_ms("1970-01-01"), Some(0));
        assert_eq!(parse_date_ms("2000-02-29"), Some(951_782_400_000));
        assert_eq!(
            rfc3339_ms(parse_date_ms("2026-12-07").unwrap()),
            "2026-12-07T00:00:00.000Z"
        );
        for bad in [
            "2026-02-30",
            "2026-13-01",
            "26-01-01",
            "2026-1-01",
            "2026-01-01x",
            "",
        ] {
            assert_eq!(parse_date_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_795_517_999_123), "2026-11-24T10:59:59.123Z");
    }

    #[test]
    fn month_start_is_the_first_of_the_utc_month() {
        let t = 1_795_517_999_123; // 2026-11-24T10:59:59Z
        assert_eq!(rfc3339_ms(utc_month_start(t)), "2026-11-01T00:00:00.000Z");
        let first = utc_month_start(t);
        assert_eq!(utc_month_start(first), first);
        assert_eq!(
            rfc3339_ms(utc_month_start(first - 1)),
            "2026-10-01T00:00:00.000Z"
        );
        assert_eq!(
            rfc3339_ms(utc_month_start(951_782_400_000)),
            "2000-02-01T00:00:00.000Z"
        );
    }

    #[test]
    fn midnight_is_the_next_utc_day_boundary() {
        let t = 1_795_517_999_123; // 2026-11-24T10:59:59Z
        assert_eq!(rfc3339_ms(next_utc_midnight(t)), "2026-11-25T00:00:00.000Z");
        let exactly = next_utc_midnight(t);
        assert_eq!(next_utc_midnight(exactly), exactly + DAY_MS);
    }
}

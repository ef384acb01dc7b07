//! `{{date}}` and `{{time}}` from an instant and a UTC offset: the calendar, in pure Rust.

/// The date and time filled in for `{{date}}` (`Tuesday, 2026-03-03`: unambiguous for a
/// model, with the weekday for "tomorrow" or "next Friday") and `{{time}}` (`14:05`, 24-hour).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTime {
    pub date: String,
    pub time: String,
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MS_PER_MINUTE: i64 = 60_000;
const MINUTES_PER_DAY: i64 = 24 * 60;

/// The local date and time at `unix_ms` (milliseconds since the Unix epoch) in a zone that is
/// `offset_minutes` ahead of UTC.
pub fn local_time(unix_ms: f64, offset_minutes: i32) -> LocalTime {
    // `as` saturates: a time beyond any calendar is clamped, never a panic.
    let minutes = (unix_ms as i64).div_euclid(MS_PER_MINUTE) + i64::from(offset_minutes);
    let days = minutes.div_euclid(MINUTES_PER_DAY);
    let minute_of_day = minutes.rem_euclid(MINUTES_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = WEEKDAYS[(days + 4).rem_euclid(7) as usize];
    LocalTime {
        date: format!("{weekday}, {year:04}-{month:02}-{day:02}"),
        time: format!("{:02}:{:02}", minute_of_day / 60, minute_of_day % 60),
    }
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The offset, in minutes ahead of UTC, at the end of a date formatted by
/// `Intl.DateTimeFormat` with `timeZoneName: "longOffset"` (`12/6/2026, GMT+05:30`;
/// `GMT` alone, or `GMT+00:00`, for UTC).
pub fn parse_utc_offset(formatted: &str) -> Option<i32> {
    let at = formatted.bytes().rposition(|b| b == b'G')?;
    let offset = formatted[at..].strip_prefix("GMT")?;
    let Some((sign, rest)) = offset.as_bytes().split_first() else {
        return Some(0);
    };
    let sign = match sign {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = match rest.iter().position(|b| *b == b':') {
        Some(colon) => (&rest[..colon], &rest[colon + 1..]),
        None => (rest, &b"0"[..]),
    };
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

/// One or two ASCII digits.
fn two_digits(digits: &[u8]) -> Option<i32> {
    if digits.is_empty() || digits.len() > 2 {
        return None;
    }
    digits.iter().try_fold(0, |n, d| {
        d.is_ascii_digit().then(|| n * 10 + i32::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_become_local_dates_and_times() {
        // (unix ms, offset minutes) → (date, time).
        let table = [
            (0.0, 0, "Thursday, 1970-01-01", "00:00"),
            (-1.0, 0, "Wednesday, 1969-12-31", "23:59"),
            // 2026-03-03T14:05:59.999Z.
            (1_772_546_759_999.0, 0, "Tuesday, 2026-03-03", "14:05"),
            (1_772_546_759_999.0, 330, "Tuesday, 2026-03-03", "19:35"),
            // Across midnight, both ways.
            (1_772_546_759_999.0, 600, "Wednesday, 2026-03-04", "00:05"),
            (1_772_546_759_999.0, -900, "Monday, 2026-03-02", "23:05"),
            // Leap days.
            (951_782_400_000.0, 0, "Tuesday, 2000-02-29", "00:00"),
            (1_709_164_800_000.0, 0, "Thursday, 2024-02-29", "00:00"),
            (4_107_542_400_000.0, 0, "Monday, 2100-03-01", "00:00"),
        ];
        for (ms, offset, date, time) in table {
            let local = local_time(ms, offset);
            assert_eq!(
                (local.date.as_str(), local.time.as_str()),
                (date, time),
                "{ms} {offset}"
            );
        }
        // Beyond any calendar: some date, no panic.
        assert!(!local_time(f64::MAX, 0).date.is_empty());
        assert!(!local_time(f64::NAN, 0).date.is_empty());
    }

    #[test]
    fn offsets_are_read_from_intl_long_offsets() {
        let table = [
            ("12/6/2026, GMT", Some(0)),
            ("12/6/2026, GMT+00:00", Some(0)),
            ("12/6/2026, GMT+05:30", Some(330)),
            ("12/6/2026, GMT-03:30", Some(-210)),
            ("12/7/2026, GMT+13:45", Some(825)),
            ("GMT+5", Some(300)),
            ("12/6/2026, UTC", None),
            ("12/6/2026, GMT+25:00", None),
            ("12/6/2026, GMT*05:00", None),
            ("12/6/2026, GMT+05:xx", None),
            ("12/6/2026, GMT+005:00", None),
            ("12/6/2026, GMT+", None),
            ("", None),
        ];
        for (formatted, expected) in table {
            assert_eq!(parse_utc_offset(formatted), expected, "{formatted:?}");
        }
    }
}

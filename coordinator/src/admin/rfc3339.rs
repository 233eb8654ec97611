//! RFC 3339 times for people: milliseconds since the Unix epoch printed as
//! `2026-12-05T21:39:30Z` (UTC), and read back from `YYYY-MM-DDTHH:MM:SS[.fff](Z|±HH:MM)`.

/// Days from 1970-01-01 to the civil date (proleptic Gregorian; H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The civil date of a day count from 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `ms` since the Unix epoch as an RFC 3339 UTC time, to the second.
pub fn format_ms(ms: u64) -> String {
    let secs = i64::try_from(ms / 1000).unwrap_or(i64::MAX / 2);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Reads an RFC 3339 time (`2026-12-05T21:39:30Z`, `…T21:39:30.250+01:00`; a space for the
/// `T` and a lower-case `z` are accepted) as milliseconds since the Unix epoch; `None` if it is
/// not one, or before 1970.
pub fn parse_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    let b = s.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let part = s.get(from..from + len)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let sep = |at: usize, allowed: &[u8]| b.get(at).is_some_and(|c| allowed.contains(c));
    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (y, mo, d) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (h, mi, sec) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut at = 19;
    let mut millis = 0i64;
    if b.get(at) == Some(&b'.') {
        let digits = b[at + 1..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if digits == 0 {
            return None;
        }
        let frac = s.get(at + 1..at + 1 + digits.min(3))?;
        millis = frac.parse::<i64>().ok()? * 10i64.pow(3 - digits.min(3) as u32);
        at += 1 + digits;
    }
    let offset_s = match s.get(at..)? {
        "Z" | "z" => 0,
        tz if tz.len() == 6
            && (tz.starts_with('+') || tz.starts_with('-'))
            && sep(at + 3, b":") =>
        {
            let (oh, om) = (num(at + 1, 2)?, num(at + 4, 2)?);
            let sign = if tz.starts_with('-') { -1 } else { 1 };
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + sec - offset_s;
    u64::try_from(secs.checked_mul(1000)?.checked_add(millis)?).ok()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_print_as_rfc_3339_utc() {
        assert_eq!(format_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_ms(951_782_400_999), "2000-02-29T00:00:00Z");
        assert_eq!(format_ms(1_796_506_770_000), "2026-12-05T21:39:30Z");
    }

    #[test]
    fn printed_times_read_back_and_offsets_and_fractions_are_honoured() {
        for ms in [
            0,
            86_399_000,
            951_782_400_000,
            1_796_506_770_000,
            4_102_444_800_000,
        ] {
            assert_eq!(parse_ms(&format_ms(ms)), Some(ms));
        }
        assert_eq!(
            parse_ms("2026-12-05T22:39:30.250+01:00"),
            Some(1_796_506_770_250)
        );
        assert_eq!(parse_ms("2026-12-05 21:39:30.5z"), Some(1_796_506_770_500));
    }

    #[test]
    fn what_is_not_an_rfc_3339_time_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-12-05",
            "2026-12-05T21:39:30",
            "2026-13-05T21:39:30Z",
            "2026-12-05T21:39:30+0100",
            "2026-12-05T21:39:30.Z",
            "1969-12-31T23:59:59Z",
            "2026-12-05T2a:39:30Z",
        ] {
            assert_eq!(parse_ms(bad), None, "{bad:?} was accepted");
        }
    }
}

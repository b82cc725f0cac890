//! Human durations (`500ms`, `1.5s`, `2m`), byte rates (`1MB/s`) and sizes
//! (`100MB`) as they appear in plans. Pure string functions: they never panic and never round a
//! decimal through floating point, so `0.1s` is exactly 100 ms.

use std::time::Duration;

/// Parses `<number><unit>` where unit is one of `ns`, `us` (or `µs`), `ms`,
/// `s`, `m`, `h` and the number may have a decimal part (`1.5s`).
///
/// Rejects empty input, signs, a missing or unknown unit and values that do
/// not fit a `Duration`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() {
        return Err("expected a duration like \"5s\" or \"250ms\", found an empty string".into());
    }
    if t.starts_with('-') {
        return Err(format!("a duration cannot be negative, found \"{s}\""));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim_start();
    let nanos_per_unit: u128 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        "" => {
            return Err(format!(
                "expected a duration with a unit (ns, us, ms, s, m, h) like \"5s\", found \"{s}\""
            ))
        }
        other => {
            return Err(format!(
                "unknown duration unit `{other}` in \"{s}\"; use ns, us, ms, s, m or h"
            ))
        }
    };
    let nanos = decimal_times(number, nanos_per_unit)
        .ok_or_else(|| format!("expected a duration like \"5s\" or \"1.5s\", found \"{s}\""))?;
    let secs = u64::try_from(nanos / 1_000_000_000)
        .map_err(|_| format!("duration \"{s}\" is too long"))?;
    // The remainder is below 1e9 and always fits.
    let sub = (nanos % 1_000_000_000) as u32;
    Ok(Duration::new(secs, sub))
}

/// Parses a byte rate: `"1MB/s"`, `"512KiB/s"`, `"100B/s"`, `"1.5MB/s"`.
/// Decimal units are powers of 1000, binary ones (`KiB`) powers of 1024.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let Some(body) = t.strip_suffix("/s") else {
        return Err(format!(
            "expected a byte rate like \"1MB/s\" or \"512KiB/s\", found \"{s}\""
        ));
    };
    let split = body
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(body.len());
    let (number, unit) = body.split_at(split);
    let unit = unit.trim_start();
    let Some(per) = byte_unit(unit) else {
        return Err(format!(
            "unknown rate unit `{unit}/s` in \"{s}\"; use B/s, KB/s, MB/s, GB/s, KiB/s, MiB/s or GiB/s"
        ));
    };
    let bytes = decimal_times(number, per)
        .ok_or_else(|| format!("expected a byte rate like \"1MB/s\", found \"{s}\""))?;
    u64::try_from(bytes).map_err(|_| format!("byte rate \"{s}\" is too large"))
}

/// Parses a size in bytes: `"100MB"`, `"512KiB"`, `"1GB"`, `"1.5MB"`,
/// `"64B"`, with the units of [`parse_rate`] (decimal ones powers of 1000,
/// binary ones powers of 1024). The unit is required; a fraction of a byte
/// is dropped.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let unit = unit.trim_start();
    let per = match byte_unit(unit) {
        Some(per) => per,
        None if unit.is_empty() => {
            return Err(format!(
                "expected a size with a unit (B, KB, MB, GB, KiB, MiB, GiB) like \"100MB\", found \"{s}\""
            ))
        }
        None => {
            return Err(format!(
                "unknown size unit `{unit}` in \"{s}\"; use B, KB, MB, GB, KiB, MiB or GiB"
            ))
        }
    };
    let bytes = decimal_times(number, per)
        .ok_or_else(|| format!("expected a size like \"100MB\" or \"1.5GB\", found \"{s}\""))?;
    u64::try_from(bytes).map_err(|_| format!("size \"{s}\" is too large"))
}

/// Bytes per unit of a rate or a size, for the units plans may write.
fn byte_unit(unit: &str) -> Option<u128> {
    match unit {
        "B" => Some(1),
        "KB" | "kB" => Some(1_000),
        "MB" => Some(1_000_000),
        "GB" => Some(1_000_000_000),
        "KiB" => Some(1 << 10),
        "MiB" => Some(1 << 20),
        "GiB" => Some(1 << 30),
        _ => None,
    }
}

/// `number * scale` for a plain decimal (`12`, `1.5`, `.5`), exact and
/// truncated below 1; `None` when it is not such a number or overflows.
fn decimal_times(number: &str, scale: u128) -> Option<u128> {
    let (int, frac) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole: u128 = if int.is_empty() { 0 } else { int.parse().ok()? };
    let mut total = whole.checked_mul(scale)?;
    // Digits past the 30th cannot change a u128 nanosecond count.
    let mut place = scale;
    for d in frac.bytes().take(30) {
        place /= 10;
        if place == 0 {
            break;
        }
        total = total.checked_add(u128::from(d - b'0') * place)?;
    }
    Some(total)
}

/// Renders a duration the way plans write it (`1.5s`, `250ms`), for messages.
pub fn format_duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    let units: [(u128, &str); 6] = [
        (3_600_000_000_000, "h"),
        (60_000_000_000, "m"),
        (1_000_000_000, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
        (1, "ns"),
    ];
    if nanos == 0 {
        return "0s".into();
    }
    for (per, name) in units {
        if nanos.is_multiple_of(per) {
            return format!("{}{name}", nanos / per);
        }
    }
    // Every duration is a whole number of nanoseconds.
    format!("{nanos}ns")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_documented_unit() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("0.1s"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_duration(".5s"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("0s"), Ok(Duration::ZERO));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
    }

    #[test]
    fn rejects_empty_negative_unitless_and_unknown_units() {
        for bad in [
            "",
            "  ",
            "-1s",
            "5",
            "5x",
            "5sec",
            "s",
            ".s",
            "1..2s",
            "1.2.3s",
            "+5s",
            "1e3s",
            "99999999999999999999999999999999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_duration("5x"),
            Err("unknown duration unit `x` in \"5x\"; use ns, us, ms, s, m or h".into())
        );
        assert_eq!(
            parse_duration("-1s"),
            Err("a duration cannot be negative, found \"-1s\"".into())
        );
    }

    #[test]
    fn rates_accept_decimal_and_binary_units() {
        assert_eq!(parse_rate("1MB/s"), Ok(1_000_000));
        assert_eq!(parse_rate("1MiB/s"), Ok(1_048_576));
        assert_eq!(parse_rate("2KB/s"), Ok(2_000));
        assert_eq!(parse_rate("2KiB/s"), Ok(2_048));
        assert_eq!(parse_rate("1.5MB/s"), Ok(1_500_000));
        assert_eq!(parse_rate("100B/s"), Ok(100));
        for bad in ["", "1MB", "1XB/s", "MB/s", "-1MB/s", "1 Mb/s"] {
            assert!(parse_rate(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn sizes_accept_decimal_and_binary_units() {
        assert_eq!(parse_size("100MB"), Ok(100_000_000));
        assert_eq!(parse_size("512KB"), Ok(512_000));
        assert_eq!(parse_size("512kB"), Ok(512_000));
        assert_eq!(parse_size("1GB"), Ok(1_000_000_000));
        assert_eq!(parse_size("20MiB"), Ok(20 * 1_048_576));
        assert_eq!(parse_size("2KiB"), Ok(2_048));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64B"), Ok(64));
        assert_eq!(parse_size("1.5MB"), Ok(1_500_000));
        assert_eq!(parse_size(" 3 MB "), Ok(3_000_000));
        assert_eq!(parse_size("0B"), Ok(0));
        // A fraction of a byte is dropped.
        assert_eq!(parse_size("1.5B"), Ok(1));
        assert_eq!(parse_size("18446744073709551615B"), Ok(u64::MAX));
    }

    #[test]
    fn sizes_reject_missing_or_unknown_units_and_signs() {
        for bad in [
            "",
            "  ",
            "100",
            "MB",
            "-1MB",
            "+1MB",
            "1 Mb",
            "1MB/s",
            "1XB",
            "1..2MB",
            "1e3MB",
            "1TB",
            "18446744073709551616B",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} should be rejected");
        }
        assert_eq!(
            parse_size("100"),
            Err("expected a size with a unit (B, KB, MB, GB, KiB, MiB, GiB) like \"100MB\", found \"100\"".into())
        );
        assert_eq!(
            parse_size("1Mb"),
            Err("unknown size unit `Mb` in \"1Mb\"; use B, KB, MB, GB, KiB, MiB or GiB".into())
        );
        assert_eq!(
            parse_size("99999999999GB"),
            Err("size \"99999999999GB\" is too large".into())
        );
        assert_eq!(
            parse_size(".MB"),
            Err("expected a size like \"100MB\" or \"1.5GB\", found \".MB\"".into())
        );
    }

    #[test]
    fn formats_round_trip_through_parse() {
        for s in ["1h", "2m", "5s", "250ms", "250us", "7ns", "0s"] {
            let d = parse_duration(s).unwrap();
            assert_eq!(format_duration(d), s);
        }
        assert_eq!(format_duration(Duration::from_millis(90_000)), "90s");
        assert_eq!(format_duration(Duration::from_millis(1_500)), "1500ms");
    }
}

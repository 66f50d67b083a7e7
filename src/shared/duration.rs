//! Durations as people write them in manifests: `500ms`, `30s`, `2m`, or plain
//! seconds (`30`, `0.5`), the way `timeout(1)` and `sleep(1)` read them.

use std::time::Duration;

/// The longest duration accepted: far beyond any grace period, and far from
/// the clock arithmetic overflowing (a deadline is "now + duration").
pub const MAX: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Parses a duration; a bare number is seconds. More than [`MAX`] is an error.
pub fn parse(text: &str) -> Result<Duration, String> {
    let d = parse_any(text)?;
    if d > MAX {
        return Err(format!(
            "'{}' is longer than the 10-year maximum; a hook is bounded by the pod's grace period anyway",
            text.trim()
        ));
    }
    Ok(d)
}

/// A duration as [`parse`] reads it back: whole seconds as `Ns`, else whole
/// milliseconds as `Nms`, else microseconds or nanoseconds — never rounded.
pub fn show(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns % 1_000_000_000 == 0 {
        format!("{}s", ns / 1_000_000_000)
    } else if ns % 1_000_000 == 0 {
        format!("{}ms", ns / 1_000_000)
    } else if ns % 1_000 == 0 {
        format!("{}us", ns / 1_000)
    } else {
        format!("{ns}ns")
    }
}

fn parse_any(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration; write e.g. 500ms, 30s, 2m or 30".into());
    }
    if text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = text
            .parse()
            .map_err(|_| format!("'{text}' is not a number of seconds"))?;
        return Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{text}' seconds is out of range"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("'{text}' is not a duration ({e}); write e.g. 500ms, 30s, 2m or 30"))
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn reads_the_documented_forms() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("0.25").unwrap(), Duration::from_millis(250));
        assert_eq!(parse(" 1m30s ").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
    }

    #[test]
    fn shows_what_it_reads_back_exactly() {
        for d in [
            Duration::ZERO,
            Duration::from_secs(25),
            Duration::from_millis(1500),
            Duration::from_micros(500),
            Duration::from_nanos(7),
        ] {
            assert_eq!(parse(&super::show(d)).unwrap(), d, "{d:?}");
        }
    }

    #[test]
    fn absurd_durations_are_errors_not_overflows() {
        assert!(parse("500000000000y").unwrap_err().contains("maximum"));
        assert!(parse("1e30").is_err());
        assert!(parse("3650d").is_ok());
    }

    #[test]
    fn rejects_what_it_cannot_read() {
        for bad in ["", "abc", "5 parsecs", "-1", "1..2", "10x"] {
            let err = parse(bad).unwrap_err();
            assert!(!err.is_empty(), "{bad:?} should be rejected");
        }
    }
}

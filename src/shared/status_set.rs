//! `--down-status 500-599,404`: the HTTP statuses that count as "the app is gone".

use std::{fmt, ops::RangeInclusive, str::FromStr};

/// A set of HTTP status codes, written as single codes and inclusive ranges.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StatusSet(Vec<RangeInclusive<u16>>);

impl StatusSet {
    pub fn contains(&self, status: u16) -> bool {
        self.0.iter().any(|r| r.contains(&status))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn code(text: &str) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(n) if (100..=599).contains(&n) => Ok(n),
        _ => Err(format!("'{text}' is not an HTTP status (100-599)")),
    }
}

impl FromStr for StatusSet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut ranges = Vec::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let range = match part.split_once('-') {
                Some((lo, hi)) => code(lo)?..=code(hi)?,
                None => code(part)?..=code(part)?,
            };
            if range.is_empty() {
                return Err(format!("'{part}' is an empty range; write low-high"));
            }
            ranges.push(range);
        }
        if ranges.is_empty() {
            return Err("no status given; write e.g. 500-599 or 404,503".into());
        }
        Ok(StatusSet(ranges))
    }
}

impl fmt::Display for StatusSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.start() == r.end() {
                write!(f, "{}", r.start())?;
            } else {
                write!(f, "{}-{}", r.start(), r.end())?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::StatusSet;

    #[test]
    fn ranges_and_single_codes() {
        let set: StatusSet = "500-599, 404".parse().unwrap();
        assert!(set.contains(503) && set.contains(404) && set.contains(599));
        assert!(!set.contains(200) && !set.contains(499) && !set.contains(405));
        assert_eq!(set.to_string(), "500-599,404");
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "abc", "600", "99", "599-500", "5xx", ","] {
            assert!(bad.parse::<StatusSet>().is_err(), "{bad:?} accepted");
        }
    }
}

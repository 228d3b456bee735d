//! How long a load test runs (`--records N` or `--duration D`) and how much of its start is warm-up
//! (`--warmup N` records or `--warmup Ds`), excluded from the figures.

use std::time::Duration;

use clap::Args;

/// `--records` or `--duration`: exactly one is required.
#[derive(Args, Debug, Clone)]
#[group(required = true, multiple = false)]
pub struct RunLength {
    /// Stop after N records counted (after the warm-up)
    #[arg(long = "records", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub records: Option<u64>,

    /// Stop after this long (after the warm-up): 30s, 500ms, 2m, or plain seconds (1.5)
    #[arg(long = "duration", value_name = "D", value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

impl RunLength {
    /// Whether the measured part is over after `records` counted records and `elapsed` time.
    pub fn is_done(&self, records: u64, elapsed: Duration) -> bool {
        self.records.is_some_and(|n| records >= n) || self.duration.is_some_and(|d| elapsed >= d)
    }

    /// Records still wanted after `records` (`u64::MAX` for a run by time).
    pub fn remaining(&self, records: u64) -> u64 {
        self.records.map_or(u64::MAX, |n| n.saturating_sub(records))
    }
}

/// The warm-up: a number of records, or a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Warmup {
    /// The first N records.
    Records(u64),
    /// The first D of the run.
    Time(Duration),
}

impl Warmup {
    /// Whether the warm-up is over after `records` and `elapsed`.
    pub fn is_done(&self, records: u64, elapsed: Duration) -> bool {
        match *self {
            Warmup::Records(n) => records >= n,
            Warmup::Time(d) => elapsed >= d,
        }
    }
}

/// Parses `--warmup`: a plain integer is a number of records, a number with a unit (`2s`, `500ms`, `1m`) a time.
pub fn parse_warmup(s: &str) -> Result<Warmup, String> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s
            .parse()
            .map(Warmup::Records)
            .map_err(|_| format!("{s:?}: too many records"));
    }
    if s.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return parse_duration(s).map(Warmup::Time);
    }
    Err(format!(
        "{s:?}: expected a number of records (1000) or a time with its unit (2s, 500ms)"
    ))
}

/// Parses a duration: `500ms`, `30s`, `2m`, `1h`, or a plain number of seconds (`1.5`). At most a day.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    let bad = || format!("{s:?}: expected a duration such as 30s, 500ms, 2m or 1.5 (seconds)");
    let value: f64 = number.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value < 0.0 {
        return Err(bad());
    }
    let secs = value * scale;
    if secs > 86_400.0 {
        return Err(format!("{s:?}: more than a day"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_warmups() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5").unwrap(), Duration::from_millis(1500));
        for bad in ["", "s", "-1s", "1x", "nan", "2d", "100000h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(parse_warmup("1000").unwrap(), Warmup::Records(1000));
        assert_eq!(parse_warmup("0").unwrap(), Warmup::Records(0));
        assert_eq!(parse_warmup("2s").unwrap(), Warmup::Time(Duration::from_secs(2)));
        assert_eq!(
            parse_warmup("250ms").unwrap(),
            Warmup::Time(Duration::from_millis(250))
        );
        for bad in ["", "1.5", "x", "-3"] {
            assert!(parse_warmup(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn run_length_by_records_or_time() {
        let by_records = RunLength {
            records: Some(10),
            duration: None,
        };
        assert!(!by_records.is_done(9, Duration::from_secs(1000)));
        assert!(by_records.is_done(10, Duration::ZERO));
        assert_eq!(by_records.remaining(4), 6);
        let by_time = RunLength {
            records: None,
            duration: Some(Duration::from_secs(2)),
        };
        assert!(!by_time.is_done(u64::MAX, Duration::from_secs(1)));
        assert!(by_time.is_done(0, Duration::from_secs(2)));
        assert_eq!(by_time.remaining(4), u64::MAX);
        assert!(Warmup::Records(3).is_done(3, Duration::ZERO));
        assert!(!Warmup::Time(Duration::from_secs(1)).is_done(u64::MAX, Duration::ZERO));
    }
}

//! When to try again. The worker asks `RetryPolicy::next_delay` and does not
//! know the schedule; the schedule, jitter, `Retry-After` and the give-up rule
//! live here alone.

use std::time::Duration;

use rand::Rng;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Delays before the 2nd, 3rd, … attempt; its length + 1 is the number
    /// of attempts before a delivery is exhausted.
    pub schedule: Vec<Duration>,
    /// Each delay is stretched or shrunk by up to this fraction (0.2 = ±20 %).
    pub jitter: f64,
    /// A receiver's `Retry-After` is honoured up to this long.
    pub retry_after_cap: Duration,
}

impl Default for RetryPolicy {
    /// Immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
    fn default() -> Self {
        let secs = [5, 300, 1800, 7200, 18000, 36000, 36000];
        RetryPolicy {
            schedule: secs.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter: 0.2,
            retry_after_cap: Duration::from_secs(3600),
        }
    }
}

impl RetryPolicy {
    /// The wait before the next attempt after `attempts_made` failed ones, or
    /// `None` when the delivery is exhausted.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let index = usize::try_from(attempts_made).ok()?.checked_sub(1)?;
        let base = *self.schedule.get(index)?;
        let jittered = self.jittered(base);
        let floor = retry_after
            .map(|r| r.min(self.retry_after_cap))
            .unwrap_or_default();
        Some(jittered.max(floor))
    }

    fn jittered(&self, base: Duration) -> Duration {
        if self.jitter <= 0.0 || base.is_zero() {
            return base;
        }
        let factor = rand::rng().random_range((1.0 - self.jitter)..=(1.0 + self.jitter));
        base.mul_f64(factor)
    }

    pub fn max_attempts(&self) -> u32 {
        self.schedule.len() as u32 + 1
    }
}

/// Parses `5s,5m,30m,2h`: the delays between attempts.
pub fn parse_schedule(text: &str) -> Result<Vec<Duration>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e}")))
        .collect()
}

/// A `Retry-After` header: delay-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for 64 bits is still a wait: longer than any cap.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(schedule: &[u64]) -> RetryPolicy {
        RetryPolicy {
            schedule: schedule.iter().map(|s| Duration::from_secs(*s)).collect(),
            jitter: 0.0,
            retry_after_cap: Duration::from_secs(60),
        }
    }

    #[test]
    fn follows_the_schedule_then_gives_up() {
        let p = fixed(&[5, 300]);
        assert_eq!(p.next_delay(1, None), Some(Duration::from_secs(5)));
        assert_eq!(p.next_delay(2, None), Some(Duration::from_secs(300)));
        assert_eq!(p.next_delay(3, None), None);
        assert_eq!(p.max_attempts(), 3);
    }

    #[test]
    fn default_schedule_has_eight_attempts() {
        let p = RetryPolicy::default();
        assert_eq!(p.max_attempts(), 8);
        assert_eq!(p.schedule[0], Duration::from_secs(5));
        assert_eq!(p.schedule[6], Duration::from_secs(36000));
    }

    #[test]
    fn jitter_stays_within_twenty_percent() {
        let p = RetryPolicy {
            jitter: 0.2,
            ..fixed(&[100])
        };
        let delays: Vec<f64> = (0..200)
            .map(|_| p.next_delay(1, None).unwrap().as_secs_f64())
            .collect();
        assert!(
            delays.iter().all(|d| (80.0..=120.0).contains(d)),
            "{delays:?}"
        );
        assert!(
            delays.iter().any(|d| (*d - 100.0).abs() > 1.0),
            "jitter never applied"
        );
    }

    #[test]
    fn retry_after_is_a_floor_up_to_the_cap() {
        let p = fixed(&[5]);
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(30))),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(1))),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            p.next_delay(1, Some(Duration::from_secs(9999))),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn parses_schedules_and_retry_after() {
        assert_eq!(
            parse_schedule("5s, 5m,2h").unwrap(),
            vec![
                Duration::from_secs(5),
                Duration::from_secs(300),
                Duration::from_secs(7200)
            ]
        );
        assert!(parse_schedule("5x").is_err());
        let now = chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(
            parse_retry_after("99999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }
}

//! How long a background loop waits after its store or database call failed.
//! The loops keep going through an outage; the wait doubles per failure from
//! 100 ms and stops growing at a bound each loop chooses.

use std::time::Duration;

/// The wait after the `failures`-th failure in a row, at most `cap`.
pub fn backoff(failures: u32, cap: Duration) -> Duration {
    Duration::from_millis(100u64 << failures.min(16)).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_per_failure_up_to_the_cap() {
        let cap = Duration::from_millis(1600);
        let waits: Vec<u128> = (0..7).map(|f| backoff(f, cap).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 1600, 1600]);
        assert_eq!(
            backoff(u32::MAX, Duration::from_secs(60)),
            Duration::from_secs(60)
        );
    }
}

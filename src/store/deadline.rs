//! How long the caller of a store operation may still wait for the database.
//!
//! An API request has one bound for all its waits on the database together
//! (`--db-acquire-timeout`): a handler may make several store calls, and an
//! event waits in the ingest writer's queue before its batch is written. The
//! bound travels with the request as a task-local deadline; the PostgreSQL
//! store waits for a connection only until then. The clock starts at the
//! request's first wait, so a slow upload of the body does not use it up.
//!
//! Only waits are bounded, never a statement already running: cutting a
//! commit short would leave the caller unsure whether its write was stored.
//! (A statement is bounded by the server's `statement_timeout`.)

use std::cell::Cell;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

struct Budget {
    bound: Duration,
    /// Set at the first wait (or given outright).
    deadline: Cell<Option<Instant>>,
}

tokio::task_local! {
    static BUDGET: Budget;
}

/// Runs `work` allowing it `bound` of waiting for the database, counted
/// from its first wait.
pub async fn bounded<F: Future>(bound: Duration, work: F) -> F::Output {
    let budget = Budget {
        bound,
        deadline: Cell::new(None),
    };
    BUDGET.scope(budget, work).await
}

/// Runs `work` with `deadline` as the limit of its waits for the database.
pub async fn within<F: Future>(deadline: Instant, work: F) -> F::Output {
    let budget = Budget {
        bound: Duration::ZERO,
        deadline: Cell::new(Some(deadline)),
    };
    BUDGET.scope(budget, work).await
}

/// The deadline of the work running now, if it has one (its clock starts
/// now if it had not yet).
pub fn current() -> Option<Instant> {
    BUDGET
        .try_with(|budget| match budget.deadline.get() {
            Some(deadline) => deadline,
            None => {
                let deadline = Instant::now() + budget.bound;
                budget.deadline.set(Some(deadline));
                deadline
            }
        })
        .ok()
}

/// Time left until the current deadline (zero once passed); `None` without one.
pub fn remaining() -> Option<Duration> {
    current().map(|d| d.saturating_duration_since(Instant::now()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_deadline_is_seen_inside_and_only_inside() {
        assert_eq!(remaining(), None);
        let deadline = Instant::now() + Duration::from_secs(2);
        let left = within(deadline, async { remaining() }).await.unwrap();
        assert!(left <= Duration::from_secs(2) && left > Duration::from_secs(1));
        let past = Instant::now() - Duration::from_millis(1);
        assert_eq!(
            within(past, async { remaining() }).await,
            Some(Duration::ZERO)
        );
        assert_eq!(current(), None);
    }

    #[tokio::test]
    async fn a_bound_counts_from_the_first_wait_and_is_shared_by_the_rest() {
        let bound = Duration::from_secs(1);
        let (first, second) = bounded(bound, async {
            // Reading the body, say: not counted.
            tokio::time::sleep(Duration::from_millis(1200)).await;
            let first = remaining().unwrap();
            tokio::time::sleep(Duration::from_millis(300)).await;
            (first, remaining().unwrap())
        })
        .await;
        assert!(first > Duration::from_millis(900), "{first:?}");
        assert!(second <= first - Duration::from_millis(300), "{second:?}");
        assert!(second > Duration::ZERO);
    }
}

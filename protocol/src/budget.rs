//! The per-asker daily budget (spec §9.10): how many asks of one contact a node answers in
//! any 24 hours (`asks-per-day`), and how much privacy loss its aggregate answers may cost
//! that contact's asks together (`epsilon-per-day`). The rule only; the node counts what
//! the last 24 hours used, and checks and records an ask in one transaction, so that
//! concurrent asks cannot all pass and an ask that cannot be recorded is not answered.

use core::fmt;

/// The budget's window, in seconds (spec §9.10).
pub const WINDOW_SECS: u64 = 24 * 3600;

/// The start of the window that ends at `now_unix` (spec §9.10): entries at or after it
/// count.
pub fn window_start(now_unix: u64) -> u64 {
    now_unix.saturating_sub(WINDOW_SECS)
}

/// What one asker used in the window (spec §9.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Asks answered (plain and aggregate).
    pub answered: u32,
    /// ε charged for aggregate answers, in thousandths.
    pub spent: u64,
}

/// The responder's settings (spec §9.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub asks_per_day: u32,
    /// In thousandths of ε.
    pub epsilon_per_day: u32,
}

/// Why an ask is declined (spec §9.10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OverBudget {
    /// `asked` answered asks in the window, at or over `limit`.
    Daily { asked: u32, limit: u32 },
    /// `spent` thousandths of ε charged in the window plus this ask's `cost` would pass
    /// `limit`.
    Privacy { spent: u64, cost: u32, limit: u32 },
}

/// Whether one more ask costing `cost` thousandths of ε (0 for a plain ask, or an
/// aggregate without noise) fits (spec §9.10). The daily count is checked first.
pub fn check(usage: Usage, limits: Limits, cost: u32) -> Result<(), OverBudget> {
    if usage.answered >= limits.asks_per_day {
        return Err(OverBudget::Daily {
            asked: usage.answered,
            limit: limits.asks_per_day,
        });
    }
    if usage.spent + u64::from(cost) > u64::from(limits.epsilon_per_day) {
        return Err(OverBudget::Privacy {
            spent: usage.spent,
            cost,
            limit: limits.epsilon_per_day,
        });
    }
    Ok(())
}

/// Thousandths of ε as text: `1`, `0.25`.
fn epsilon_text(milli: u64) -> String {
    let s = format!("{}.{:03}", milli / 1000, milli % 1000);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

impl fmt::Display for OverBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OverBudget::Daily { asked, limit } => write!(f, "{asked} asks in 24 h (limit {limit})"),
            OverBudget::Privacy { spent, cost, limit } => write!(
                f,
                "privacy budget: ε {} used in 24 h of {}, this ask needs {}",
                epsilon_text(*spent),
                epsilon_text(u64::from(*limit)),
                epsilon_text(u64::from(*cost)),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        asks_per_day: 3,
        epsilon_per_day: 2000,
    };

    #[test]
    fn asks_count_first_then_privacy_loss() {
        let used = |answered, spent| Usage { answered, spent };
        assert_eq!(check(used(2, 1000), LIMITS, 1000), Ok(()));
        assert_eq!(
            check(used(3, 0), LIMITS, 0),
            Err(OverBudget::Daily { asked: 3, limit: 3 })
        );
        // Over both: the daily count is named.
        assert!(matches!(
            check(used(3, 2000), LIMITS, 1000),
            Err(OverBudget::Daily { .. })
        ));
        assert_eq!(
            check(used(1, 1500), LIMITS, 1000),
            Err(OverBudget::Privacy {
                spent: 1500,
                cost: 1000,
                limit: 2000
            })
        );
        // A plain ask costs no ε: only the count limits it.
        assert_eq!(check(used(2, 2000), LIMITS, 0), Ok(()));
        assert_eq!(
            OverBudget::Privacy {
                spent: 1500,
                cost: 250,
                limit: 2000
            }
            .to_string(),
            "privacy budget: ε 1.5 used in 24 h of 2, this ask needs 0.25"
        );
        assert_eq!(window_start(100), 0);
        assert_eq!(window_start(WINDOW_SECS + 5), 5);
    }
}

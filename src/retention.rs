//! When a conversation's alarm fires: keep it, erase it, or look again later.
//!
//! The alarm is armed once per object instance, not on every turn (that would be an awaited
//! storage call on the hot path), so it often fires while the conversation is still in use.
//! This decision runs in the alarm handler: it compares the last recorded activity with the
//! retention period and re-arms for the time that is left. Alarms are delivered at least once,
//! so deciding again on a repeated delivery must give the same, harmless answer.

/// A reply still pending this long after its turn began is taken as abandoned (the Worker died
/// mid-turn), so it no longer keeps the conversation alive. Far longer than any Gemini stream.
pub const ABANDONED_TURN_MS: i64 = 10 * 60 * 1000;

/// What the alarm handler does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Retention is off (`0`): keep everything and set no new alarm.
    KeepForever,
    /// Idle for the whole period: delete every row and the alarm.
    Erase,
    /// Still in use: re-arm the alarm this many milliseconds from now.
    CheckAgainIn(i64),
}

/// What the object knows when its alarm fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Activity {
    /// The last time a command wrote to the conversation (epoch ms); `None` if nothing is stored.
    pub last_active_ms: Option<i64>,
    /// When the newest still-pending reply's turn began, if a turn is in flight.
    pub pending_since_ms: Option<i64>,
}

/// Decides what a firing alarm does, at `now_unix_ms` (milliseconds since the Unix epoch), with
/// a retention period of `ttl_ms`.
pub fn decide(now_unix_ms: i64, ttl_ms: u64, activity: Activity) -> Decision {
    if ttl_ms == 0 {
        return Decision::KeepForever;
    }
    let ttl_ms = i64::try_from(ttl_ms).unwrap_or(i64::MAX);
    let Some(last_active_ms) = activity.last_active_ms else {
        // Nothing to keep (already erased, or a delivery repeated after the erase).
        return Decision::Erase;
    };
    let idle_ms = now_unix_ms.saturating_sub(last_active_ms).max(0);
    if idle_ms < ttl_ms {
        return Decision::CheckAgainIn(ttl_ms - idle_ms);
    }
    // A turn that outlasts the period (only possible with a test-sized period) is not cut
    // off: its reply would otherwise land in an erased conversation and be lost.
    let turn_in_flight = activity
        .pending_since_ms
        .is_some_and(|since| now_unix_ms.saturating_sub(since) < ABANDONED_TURN_MS);
    if turn_in_flight {
        return Decision::CheckAgainIn(ttl_ms);
    }
    Decision::Erase
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: u64 = 24 * 60 * 60 * 1000;
    const NOW: i64 = 1_800_000_000_000;

    fn active_at(last_active_ms: i64) -> Activity {
        Activity {
            last_active_ms: Some(last_active_ms),
            pending_since_ms: None,
        }
    }

    #[test]
    fn a_zero_period_keeps_everything_whatever_the_activity() {
        assert_eq!(decide(NOW, 0, active_at(0)), Decision::KeepForever);
        let nothing = Activity {
            last_active_ms: None,
            pending_since_ms: None,
        };
        assert_eq!(decide(NOW, 0, nothing), Decision::KeepForever);
    }

    #[test]
    fn idle_for_the_whole_period_is_erased() {
        let ttl = 30 * DAY;
        assert_eq!(
            decide(NOW, ttl, active_at(NOW - ttl as i64)),
            Decision::Erase
        );
        assert_eq!(
            decide(NOW, ttl, active_at(NOW - 31 * DAY as i64)),
            Decision::Erase
        );
    }

    #[test]
    fn activity_since_arming_re_arms_for_the_time_left() {
        assert_eq!(
            decide(NOW, 2000, active_at(NOW - 500)),
            Decision::CheckAgainIn(1500)
        );
        assert_eq!(
            decide(NOW, 2000, active_at(NOW - 1999)),
            Decision::CheckAgainIn(1)
        );
    }

    #[test]
    fn a_clock_behind_the_last_activity_waits_the_whole_period() {
        assert_eq!(
            decide(NOW, 2000, active_at(NOW + 5000)),
            Decision::CheckAgainIn(2000)
        );
    }

    #[test]
    fn nothing_stored_is_erased_again_harmlessly() {
        let nothing = Activity {
            last_active_ms: None,
            pending_since_ms: None,
        };
        assert_eq!(decide(NOW, 2000, nothing), Decision::Erase);
    }

    #[test]
    fn a_turn_in_flight_keeps_an_otherwise_expired_conversation() {
        let in_flight = Activity {
            last_active_ms: Some(NOW - 3000),
            pending_since_ms: Some(NOW - 3000),
        };
        assert_eq!(decide(NOW, 2000, in_flight), Decision::CheckAgainIn(2000));
    }

    #[test]
    fn an_abandoned_pending_reply_does_not_keep_it_forever() {
        let abandoned = Activity {
            last_active_ms: Some(NOW - ABANDONED_TURN_MS),
            pending_since_ms: Some(NOW - ABANDONED_TURN_MS),
        };
        assert_eq!(decide(NOW, 2000, abandoned), Decision::Erase);
    }

    #[test]
    fn huge_periods_do_not_overflow() {
        assert_eq!(
            decide(NOW, u64::MAX, active_at(NOW)),
            Decision::CheckAgainIn(i64::MAX)
        );
    }
}

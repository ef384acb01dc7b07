//! The engine's [`Clock`] over the Workers timers.

use std::future::Future;
use std::time::Duration;

use worker::Delay;

use crate::engine::Clock;

/// Workers timers. `Date.now()` advances with I/O, which is all a turn waits on.
pub(super) struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> u64 {
        // `Date.now()` rather than `worker::Date::now()`, which builds a `Date` per call (a
        // turn asks about twenty times).
        worker::js_sys::Date::now() as u64
    }

    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        Delay::from(Duration::from_millis(ms))
    }
}

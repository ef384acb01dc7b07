//! Bounding how long we wait on the runtime: upstream fetches, stream reads, SSE writes.

use std::future::Future;
use std::time::Duration;

use futures::future::{select, Either};
use worker::Delay;

/// Runs `future` for at most `limit`; `None` on timeout (the future is dropped).
pub async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    match select(Box::pin(future), Box::pin(Delay::from(limit))).await {
        Either::Left((value, _)) => Some(value),
        Either::Right(_) => None,
    }
}

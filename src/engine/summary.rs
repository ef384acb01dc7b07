//! The summary call: one model request, read to its end within a deadline. Nothing is spoken
//! and nobody waits for it (it runs after the turn's `response.end`), so there is no retry
//! here: a failed call changes nothing and is tried again after a later turn
//! (`summary::retry_due`).

use std::pin::pin;

use futures::future::{select, Either};

use super::Clock;
use crate::llm::{Failure, Model, ReplyStream};
use crate::summary::SUMMARY_MAX_CHARS;

/// More than this many bytes of summary are not read: a stream that keeps going is cut here
/// (what is kept is bounded again by `summary::clean`).
const MAX_WRITTEN_BYTES: usize = 4 * 4 * SUMMARY_MAX_CHARS;

/// Asks `model` for the summary and reads its whole reply within `limit_ms`: the text, or why
/// there is none (`Timeout`; `Truncated` without a finish reason; `Blocked` when a content
/// policy stopped it; `NothingSpoken` when it wrote nothing).
pub async fn write_summary<M: Model, C: Clock>(
    model: &mut M,
    clock: &C,
    limit_ms: u64,
) -> Result<String, Failure> {
    let reading = pin!(read_all(model));
    let deadline = pin!(clock.sleep(limit_ms));
    match select(reading, deadline).await {
        Either::Left((written, _)) => written,
        Either::Right(_) => Err(Failure::Timeout),
    }
}

async fn read_all<M: Model>(model: &mut M) -> Result<String, Failure> {
    let mut stream = model.open().await.map_err(|error| error.failure)?;
    let mut text = String::new();
    let mut finish = None;
    while let Some(piece) = stream.next().await? {
        text.push_str(&piece.text);
        if piece.finish.is_some() {
            finish = piece.finish;
        }
        if text.len() > MAX_WRITTEN_BYTES {
            return Ok(text);
        }
    }
    match finish {
        None => Err(Failure::Truncated),
        Some(finish) if finish.policy => Err(Failure::Blocked),
        Some(_) if text.trim().is_empty() => Err(Failure::NothingSpoken),
        Some(_) => Ok(text),
    }
}

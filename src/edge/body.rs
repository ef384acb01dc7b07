//! Reading request bodies with a size limit and a deadline, without buffering more than the
//! limit or waiting on a client that trickles its body in.

use std::time::Duration;

use futures::StreamExt;
use worker::Request;

use crate::deadline::within;
use crate::error::AppError;

/// The whole body must have arrived this long after we start reading it. Layercode and
/// browsers send a few KB at once; a client slower than this is broken or hostile.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the whole body as raw bytes (the webhook signature covers them exactly), refusing
/// bodies larger than `limit` with 413 as soon as that is known, and bodies not complete
/// within [`BODY_READ_TIMEOUT`] with 408.
pub async fn read_limited(req: &mut Request, limit: usize) -> Result<Vec<u8>, AppError> {
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(AppError::PayloadTooLarge { limit_bytes: limit });
    }
    let read = async {
        match declared {
            // The length is known and allowed: one read of the whole body (a stream read
            // costs a promise and a copy per chunk). The runtime ends the body at that length.
            Some(_) => req
                .bytes()
                .await
                .map_err(|e| AppError::BadRequest(format!("unreadable body: {e}"))),
            None => read_up_to(req, limit).await,
        }
    };
    within(BODY_READ_TIMEOUT, read)
        .await
        .unwrap_or(Err(AppError::RequestTimeout {
            limit_secs: BODY_READ_TIMEOUT.as_secs(),
        }))
}

async fn read_up_to(req: &mut Request, limit: usize) -> Result<Vec<u8>, AppError> {
    let mut body = Vec::new();
    let Ok(mut stream) = req.stream() else {
        return Ok(body); // no body at all
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(AppError::PayloadTooLarge { limit_bytes: limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

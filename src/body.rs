//! Reading request bodies with a size limit, without buffering more than the limit.

use futures::StreamExt;
use worker::Request;

use crate::error::AppError;

/// Reads the whole body as raw bytes (the webhook signature covers them exactly), refusing
/// bodies larger than `limit` with 413 as soon as that is known.
pub async fn read_limited(req: &mut Request, limit: usize) -> Result<Vec<u8>, AppError> {
    let too_large = AppError::PayloadTooLarge { limit_bytes: limit };
    let declared = req
        .headers()
        .get("content-length")
        .ok()
        .flatten()
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large);
    }
    let mut body = Vec::new();
    let Ok(mut stream) = req.stream() else {
        return Ok(body); // no body at all
    };
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::BadRequest(format!("unreadable body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

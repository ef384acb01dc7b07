//! Layercode webhook signing, implemented independently of the worker's verifier so the tests
//! check the worker against the documented scheme rather than against itself.
//!
//! Scheme (layercode-protocol.md §4): header `layercode-signature: t=<unix secs>,v1=<hex>`, where
//! `<hex>` is HMAC-SHA256 keyed with the webhook secret over `"<t>.<raw body>"`.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::{SystemTime, UNIX_EPOCH};

/// The header name Layercode puts the signature in.
pub const SIGNATURE_HEADER: &str = "layercode-signature";

/// Returns the full header value `t=<timestamp>,v1=<hex hmac_sha256(secret, "<timestamp>.<body>")>`.
pub fn sign(secret: &str, timestamp: u64, body: &str) -> String {
    format!(
        "t={timestamp},v1={}",
        signature_hex(secret, &timestamp.to_string(), body)
    )
}

/// The bare lowercase-hex MAC over `"<timestamp>.<body>"`. `timestamp` is a string so tests can
/// sign odd spellings (leading zeros, non-digits) exactly as they will be sent.
pub fn signature_hex(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Signs `body` with the current time: the usual header value for a valid webhook.
pub fn sign_now(secret: &str, body: &str) -> String {
    sign(secret, now_secs(), body)
}

/// Current Unix time in whole seconds.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock before 1970")
        .as_secs()
}

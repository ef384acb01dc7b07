//! Layercode webhook signatures: `layercode-signature: t=<unix secs>,v1=<hex HMAC-SHA256>`.
//!
//! The MAC covers `t + "." + raw body` exactly as received (never re-serialised JSON). Unlike the
//! official Node SDK, the header is parsed as order-independent key/value pairs, every `v1` is
//! tried, the comparison is constant-time (`Mac::verify_slice`), and several secrets may be
//! configured so a secret can be rotated without downtime.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// How far a signature's timestamp may be from our clock, in either direction.
pub const DEFAULT_TOLERANCE_SECS: u64 = 300;

/// Why a signature was rejected (for the log; the response stays generic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    MissingHeader,
    Malformed,
    OutsideTimeWindow,
    Mismatch,
}

impl SignatureError {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureError::MissingHeader => "missing_header",
            SignatureError::Malformed => "malformed_header",
            SignatureError::OutsideTimeWindow => "outside_time_window",
            SignatureError::Mismatch => "mismatch",
        }
    }
}

/// The parts of a signature header.
#[derive(Debug, PartialEq, Eq)]
struct ParsedHeader<'a> {
    /// The timestamp exactly as sent: it is what was signed.
    timestamp_raw: &'a str,
    timestamp: u64,
    macs: Vec<[u8; 32]>,
}

fn parse_header(header: &str) -> Result<ParsedHeader<'_>, SignatureError> {
    let mut timestamps = Vec::new();
    let mut macs = Vec::new();
    for part in header.split(',') {
        let Some((key, value)) = part.trim().split_once('=') else {
            continue;
        };
        match key.trim() {
            "t" => timestamps.push(value.trim()),
            "v1" => {
                let mut mac = [0u8; 32];
                hex::decode_to_slice(value.trim(), &mut mac)
                    .map_err(|_| SignatureError::Malformed)?;
                macs.push(mac);
            }
            _ => {} // unknown schemes are ignored, as Stripe-style verifiers do
        }
    }
    // Exactly one `t`: two could be used to smuggle an old timestamp past the window check.
    let [timestamp_raw] = timestamps[..] else {
        return Err(SignatureError::Malformed);
    };
    // Digits only (no sign, no spaces); 12 digits is far beyond any real date and cannot overflow.
    if timestamp_raw.is_empty()
        || timestamp_raw.len() > 12
        || !timestamp_raw.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(SignatureError::Malformed);
    }
    let timestamp = timestamp_raw
        .parse()
        .map_err(|_| SignatureError::Malformed)?;
    if macs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    Ok(ParsedHeader {
        timestamp_raw,
        timestamp,
        macs,
    })
}

fn mac_for(secret: &str, timestamp_raw: &str, body: &[u8]) -> Option<HmacSha256> {
    // HMAC accepts keys of any length, so this never fails; stay panic-free anyway.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(timestamp_raw.as_bytes());
    mac.update(b".");
    mac.update(body);
    Some(mac)
}

/// Checks a `layercode-signature` header against the raw body and every configured secret.
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now_secs: u64,
    tolerance_secs: u64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::MissingHeader)?;
    let parsed = parse_header(header)?;
    if now_secs.abs_diff(parsed.timestamp) > tolerance_secs {
        return Err(SignatureError::OutsideTimeWindow);
    }
    let matches = secrets.iter().any(|secret| {
        mac_for(secret, parsed.timestamp_raw, body).is_some_and(|mac| {
            parsed
                .macs
                .iter()
                .any(|candidate| mac.clone().verify_slice(candidate).is_ok())
        })
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Signs a body the way Layercode does (used by the simulator and the tests).
pub fn sign(secret: &str, timestamp: u64, body: &[u8]) -> String {
    let timestamp = timestamp.to_string();
    let digest = mac_for(secret, &timestamp, body)
        .map(|mac| hex::encode(mac.finalize().into_bytes()))
        .unwrap_or_default();
    format!("t={timestamp},v1={digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test_webhook_secret";
    const T: u64 = 1_767_225_600;
    const BODY: &str = r#"{"type":"message","session_id":"sess_1","conversation_id":"conv_1","turn_id":"turn_1","text":"Hi"}"#;
    const V1: &str = "be3314ee89ab520027326f44abc8cc895339cef5459fcd2d65d3027ddd3bb8c1";

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn check(header: &str, body: &str, now: u64) -> Result<(), SignatureError> {
        verify(Some(header), body.as_bytes(), &secrets(&[SECRET]), now, 300)
    }

    #[test]
    fn sign_matches_the_published_test_vector() {
        assert_eq!(sign(SECRET, T, BODY.as_bytes()), format!("t={T},v1={V1}"));
    }

    #[test]
    fn valid_signature_passes() {
        assert_eq!(check(&format!("t={T},v1={V1}"), BODY, T), Ok(()));
    }

    #[test]
    fn order_spaces_uppercase_and_unknown_keys_are_accepted() {
        let header = format!("v0=abc, v1={} , t={T}", V1.to_uppercase());
        assert_eq!(check(&header, BODY, T + 10), Ok(()));
    }

    #[test]
    fn any_of_several_v1_values_may_match() {
        let wrong = "00".repeat(32);
        assert_eq!(check(&format!("t={T},v1={wrong},v1={V1}"), BODY, T), Ok(()));
    }

    #[test]
    fn any_configured_secret_may_match() {
        let header = format!("t={T},v1={V1}");
        let rotated = secrets(&["new_secret", SECRET]);
        assert_eq!(
            verify(Some(&header), BODY.as_bytes(), &rotated, T, 300),
            Ok(())
        );
        let only_new = secrets(&["new_secret"]);
        assert_eq!(
            verify(Some(&header), BODY.as_bytes(), &only_new, T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn missing_header_is_rejected() {
        assert_eq!(
            verify(None, BODY.as_bytes(), &secrets(&[SECRET]), T, 300),
            Err(SignatureError::MissingHeader)
        );
    }

    #[test]
    fn malformed_headers_are_rejected() {
        let short = &V1[..62];
        for header in [
            String::new(),
            format!("v1={V1}"),
            format!("t={T}"),
            format!("t=abc,v1={V1}"),
            format!("t=-5,v1={V1}"),
            format!("t=+{T},v1={V1}"),
            format!("t={T},v1=zz{}", &V1[2..]),
            format!("t={T},v1={short}"),
            format!("t={T},t={T},v1={V1}"),
            format!("t=9999999999999,v1={V1}"),
            format!("t={T}v1={V1}"),
        ] {
            assert_eq!(
                check(&header, BODY, T),
                Err(SignatureError::Malformed),
                "{header}"
            );
        }
    }

    #[test]
    fn timestamps_outside_five_minutes_are_rejected_both_ways() {
        let header = format!("t={T},v1={V1}");
        assert_eq!(check(&header, BODY, T + 300), Ok(()));
        assert_eq!(check(&header, BODY, T - 300), Ok(()));
        assert_eq!(
            check(&header, BODY, T + 301),
            Err(SignatureError::OutsideTimeWindow)
        );
        assert_eq!(
            check(&header, BODY, T - 301),
            Err(SignatureError::OutsideTimeWindow)
        );
    }

    #[test]
    fn any_change_to_the_body_or_secret_is_rejected() {
        let header = format!("t={T},v1={V1}");
        let changed = BODY.replace("Hi", "Ho");
        assert_eq!(check(&header, &changed, T), Err(SignatureError::Mismatch));
        assert_eq!(
            check(&header, &format!("{BODY} "), T),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), BODY.as_bytes(), &secrets(&["other"]), T, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn the_timestamp_is_signed_exactly_as_sent() {
        // A leading zero changes the signed bytes, so the original MAC no longer matches.
        let header = format!("t=0{T},v1={V1}");
        assert_eq!(check(&header, BODY, T), Err(SignatureError::Mismatch));
    }

    #[test]
    fn no_configured_secret_means_no_match() {
        let header = format!("t={T},v1={V1}");
        assert_eq!(
            verify(Some(&header), BODY.as_bytes(), &[], T, 300),
            Err(SignatureError::Mismatch)
        );
    }
}

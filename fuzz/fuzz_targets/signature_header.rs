//! `signature::verify` on arbitrary headers and bodies never panics, and a header made by
//! `signature::sign` verifies for its body but not for the body with one bit flipped.
//!
//! Input layout:
//! * byte 0: flags. Bit 0 picks how `now` is read; bits 1-2 pick the signing secret; bits 3-7
//!   give a clock skew (0..=279 s) for the sign/verify property;
//! * `now`: bit 0 clear, 2 bytes (little-endian i16) added to `T`, so headers with realistic
//!   timestamps land inside the window; bit 0 set, 8 bytes (little-endian u64) used as is;
//! * the rest: the header up to the first `\n`, the body after it (no `\n`: empty body).
//!   A header that is not UTF-8 is skipped for `verify` (the Worker only passes `&str` headers).
#![no_main]

use layercode_gemini_worker::signature::{sign, verify, SignatureError, DEFAULT_TOLERANCE_SECS};
use libfuzzer_sys::fuzz_target;

/// The protocol doc's test-vector timestamp.
const T: u64 = 1_767_225_600;
/// The test-vector secret, a rotated one and the empty string (HMAC accepts any key length).
const SECRETS: [&str; 3] = ["test_webhook_secret", "rotated_secret", ""];
/// `verify` accepts at most 12 timestamp digits (about the year 33658); `sign` is only used
/// with real clocks, so the property signs timestamps below this.
const MAX_TIMESTAMP: u64 = 1_000_000_000_000;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (now, rest) = if flags & 1 == 0 {
        let Some((offset, rest)) = rest.split_first_chunk::<2>() else {
            return;
        };
        (
            T.wrapping_add_signed(i64::from(i16::from_le_bytes(*offset))),
            rest,
        )
    } else {
        let Some((now, rest)) = rest.split_first_chunk::<8>() else {
            return;
        };
        (u64::from_le_bytes(*now), rest)
    };
    let (header, body) = match rest.iter().position(|&b| b == b'\n') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let secrets: Vec<String> = SECRETS.iter().map(|s| s.to_string()).collect();

    // 1. Arbitrary header: any answer is fine, a panic is not.
    if let Ok(header) = std::str::from_utf8(header) {
        let _ = verify(Some(header), body, &secrets, now, DEFAULT_TOLERANCE_SECS);
        let _ = verify(Some(header), body, &secrets[..1], now, 0);
        let _ = verify(Some(header), body, &[], now, u64::MAX);
    }

    // 2. Property: sign -> verify round trip, and any flipped bit is a mismatch.
    let secret = SECRETS[usize::from((flags >> 1) & 3) % SECRETS.len()];
    let t = now % MAX_TIMESTAMP;
    let skew = u64::from(flags >> 3) * 9;
    let verify_at = if flags & 4 == 0 {
        t.saturating_add(skew)
    } else {
        t.saturating_sub(skew)
    };
    let signed = sign(secret, t, body);
    assert_eq!(
        verify(
            Some(&signed),
            body,
            &secrets,
            verify_at,
            DEFAULT_TOLERANCE_SECS
        ),
        Ok(()),
        "{signed} at {verify_at}"
    );
    // Rotation: the signing secret listed after another one still matches.
    let rotated = vec!["some_other_secret".to_string(), secret.to_string()];
    assert_eq!(
        verify(
            Some(&signed),
            body,
            &rotated,
            verify_at,
            DEFAULT_TOLERANCE_SECS
        ),
        Ok(())
    );
    if !body.is_empty() {
        let mut flipped = body.to_vec();
        let index = (now as usize ^ header.len()) % flipped.len();
        flipped[index] ^= 1 << (flags % 8);
        assert_eq!(
            verify(
                Some(&signed),
                &flipped,
                &secrets,
                verify_at,
                DEFAULT_TOLERANCE_SECS
            ),
            Err(SignatureError::Mismatch),
            "{signed}: flipped byte {index}"
        );
    }
});

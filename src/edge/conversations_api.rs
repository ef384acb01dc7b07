//! `GET` and `DELETE /conversations/{conversation_id}`: the deployer's own backend reads a
//! conversation's transcript or erases it.
//!
//! Off (404, as if the route did not exist) unless `CONVERSATIONS_API_KEY` is set; then every
//! request needs `Authorization: Bearer <key>`, checked in constant time before anything else,
//! so a caller without the key learns nothing, not even whether a conversation exists. The
//! answers carry no CORS headers: browsers are not meant to call this.

use serde::Serialize;
use sha2::{Digest, Sha256};
use worker::{console_log, Env, Method, Request, Response};

use crate::config::Config;
use crate::conversation::ConversationClient;
use crate::error::{json_response, AppError};
use crate::store::{SessionRecord, StoredMessage, Transcript};

/// Every path under this prefix belongs to this API; the rest is the conversation id.
pub const PATH_PREFIX: &str = "/conversations/";

/// The longest conversation id accepted, in bytes (after percent-decoding).
pub const MAX_ID_BYTES: usize = 256;

pub async fn handle(req: Request, env: Env) -> Result<Response, AppError> {
    let config = Config::from_env(&env);
    let Some(api_key) = config.conversations_api_key.as_deref() else {
        return Err(AppError::NotFound);
    };
    let action = match req.method() {
        Method::Get => "read",
        Method::Delete => "erase",
        _ => "other",
    };
    let header = req.headers().get("authorization").ok().flatten();
    if !bearer_matches(header.as_deref(), api_key) {
        log_call(action, None, "unauthorized");
        return Err(AppError::InvalidApiKey);
    }
    if action == "other" {
        return Err(AppError::MethodNotAllowed);
    }
    let path = req.path();
    let id = match conversation_id(path.strip_prefix(PATH_PREFIX).unwrap_or_default()) {
        Ok(id) => id,
        Err(e) => {
            log_call(action, None, "bad_id");
            return Err(e);
        }
    };
    let store = ConversationClient::new(&env, &id)?;
    let result = match req.method() {
        Method::Delete => erase(&store).await,
        _ => read(&store, &id).await,
    };
    let outcome = match &result {
        Ok(_) => "ok",
        Err(AppError::ConversationNotFound) => "not_found",
        Err(_) => "error",
    };
    log_call(action, Some(&id), outcome);
    result
}

async fn read(store: &ConversationClient, id: &str) -> Result<Response, AppError> {
    let transcript = store.read().await?.ok_or(AppError::ConversationNotFound)?;
    let body = serde_json::to_string(&TranscriptBody::new(id, &transcript))
        .map_err(|e| AppError::Internal(e.to_string()))?;
    let mut response = json_response(200, &body)?;
    // Personal data: no cache may keep a copy.
    response.headers_mut().set("cache-control", "no-store")?;
    Ok(response)
}

async fn erase(store: &ConversationClient) -> Result<Response, AppError> {
    if !store.erase().await? {
        return Err(AppError::ConversationNotFound);
    }
    Ok(Response::empty()?.with_status(204))
}

/// The body of `GET /conversations/{id}`.
#[derive(Debug, Serialize)]
pub struct TranscriptBody<'a> {
    pub conversation_id: &'a str,
    pub messages: &'a [StoredMessage],
    pub sessions: &'a [SessionRecord],
    /// The running summary of a long call; `null` until there is one.
    pub summary: Option<serde_json::Value>,
}

impl<'a> TranscriptBody<'a> {
    pub fn new(conversation_id: &'a str, transcript: &'a Transcript) -> Self {
        TranscriptBody {
            conversation_id,
            messages: &transcript.messages,
            sessions: &transcript.sessions,
            summary: transcript
                .summary_json
                .as_deref()
                .and_then(|json| serde_json::from_slice(json.as_bytes()).ok()),
        }
    }
}

/// Whether `header` is `Bearer <api_key>`. The keys are compared as SHA-256 digests, byte by
/// byte without an early exit, so neither the time taken nor its length depends on how much
/// of the presented key is right, or on how long the real key is.
pub fn bearer_matches(header: Option<&str>, api_key: &str) -> bool {
    let Some((scheme, token)) = header.map(str::trim).and_then(|h| h.split_once(' ')) else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return false;
    }
    let presented = Sha256::digest(token.trim().as_bytes());
    let expected = Sha256::digest(api_key.as_bytes());
    let difference = presented
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    difference == 0
}

/// The conversation id from the (still percent-encoded) rest of the path: 1 to 256 bytes of
/// UTF-8 without control characters, which is what Layercode sends.
pub fn conversation_id(encoded: &str) -> Result<String, AppError> {
    let bad = || {
        AppError::BadRequest(format!(
            "conversation id must be 1 to {MAX_ID_BYTES} bytes of text without control characters"
        ))
    };
    let bytes = percent_decode(encoded).ok_or_else(bad)?;
    let id = String::from_utf8(bytes).map_err(|_| bad())?;
    if id.is_empty() || id.len() > MAX_ID_BYTES || id.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(id)
}

/// Decodes `%XX` escapes; `None` for a malformed escape.
fn percent_decode(encoded: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(encoded.len());
    let mut bytes = encoded.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            let hex = std::str::from_utf8(&hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
        } else {
            out.push(b);
        }
    }
    Some(out)
}

/// One line per call: the action, the conversation and the outcome; never any content.
fn log_call(action: &str, conversation_id: Option<&str>, outcome: &str) {
    let line = serde_json::json!({
        "event": "conversations_api",
        "action": action,
        "conversation_id": conversation_id,
        "outcome": outcome,
    });
    console_log!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{ReplyStatus, Role};

    #[test]
    fn only_the_exact_key_as_a_bearer_token_matches() {
        let key = "conv_api_key_123";
        assert!(bearer_matches(Some("Bearer conv_api_key_123"), key));
        assert!(bearer_matches(Some("bearer conv_api_key_123"), key));
        assert!(bearer_matches(Some("  Bearer   conv_api_key_123 "), key));
        assert!(!bearer_matches(None, key));
        assert!(!bearer_matches(Some(""), key));
        assert!(!bearer_matches(Some("Bearer"), key));
        assert!(!bearer_matches(Some("Bearer "), key));
        assert!(!bearer_matches(Some("Basic conv_api_key_123"), key));
        assert!(!bearer_matches(Some("conv_api_key_123"), key));
        assert!(!bearer_matches(Some("Bearer conv_api_key_12"), key));
        assert!(!bearer_matches(Some("Bearer conv_api_key_1234"), key));
        assert!(!bearer_matches(Some("Bearer CONV_API_KEY_123"), key));
    }

    #[test]
    fn ids_are_percent_decoded() {
        assert_eq!(conversation_id("conv_abc-123").unwrap(), "conv_abc-123");
        assert_eq!(conversation_id("a%20b%2Fc").unwrap(), "a b/c");
        assert_eq!(conversation_id("caf%C3%A9").unwrap(), "café");
        assert_eq!(conversation_id(&"x".repeat(256)).unwrap().len(), 256);
    }

    #[test]
    fn empty_long_control_and_malformed_ids_are_refused() {
        let refused =
            |encoded: &str| matches!(conversation_id(encoded), Err(AppError::BadRequest(_)));
        assert!(refused(""));
        assert!(refused(&"x".repeat(257)));
        // 129 two-byte characters: 258 bytes, though only 129 characters.
        assert!(refused(&"%C3%A9".repeat(129)));
        assert!(refused("conv%00"));
        assert!(refused("conv%0A"));
        assert!(refused("conv%7F"));
        assert!(refused("conv%C2%85"), "C1 control (NEL)");
        assert!(refused("conv%"));
        assert!(refused("conv%4"));
        assert!(refused("conv%zz"));
        assert!(refused("conv%FF"), "not UTF-8");
    }

    #[test]
    fn the_body_lists_messages_sessions_and_the_summary_with_their_fields() {
        let transcript = Transcript {
            messages: vec![
                StoredMessage {
                    turn_id: "t1".into(),
                    role: Role::User,
                    text: "Hello".into(),
                    status: ReplyStatus::Complete,
                    created_at_ms: 1_700_000_000_000,
                },
                StoredMessage {
                    turn_id: "t1".into(),
                    role: Role::Assistant,
                    text: "Hi th".into(),
                    status: ReplyStatus::Interrupted,
                    created_at_ms: 1_700_000_000_000,
                },
            ],
            sessions: vec![SessionRecord {
                session_id: "s1".into(),
                transcript_messages: 2,
                duration_ms: Some(1234.0),
                transcription_seconds: None,
                tts_seconds: Some(1.5),
                latency: None,
                recording_status: Some("completed".into()),
                started_at: Some("2026-01-01T00:00:00Z".into()),
                ended_at: None,
                recorded_at_ms: 1_700_000_001_000,
            }],
            summary_json: Some(
                r#"{"text":"The caller is Ada.","through_turn_id":"t1","updated_at_ms":1700000002000}"#
                    .into(),
            ),
        };
        let body = serde_json::to_value(TranscriptBody::new("conv_1", &transcript)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "conversation_id": "conv_1",
                "messages": [
                    {"turn_id": "t1", "role": "user", "text": "Hello", "status": "complete",
                     "created_at_ms": 1_700_000_000_000_i64},
                    {"turn_id": "t1", "role": "assistant", "text": "Hi th",
                     "status": "interrupted", "created_at_ms": 1_700_000_000_000_i64},
                ],
                "sessions": [
                    {"session_id": "s1", "transcript_messages": 2, "duration_ms": 1234.0,
                     "transcription_seconds": null, "tts_seconds": 1.5, "latency": null,
                     "recording_status": "completed", "started_at": "2026-01-01T00:00:00Z",
                     "ended_at": null, "recorded_at_ms": 1_700_000_001_000_i64},
                ],
                "summary": {"text": "The caller is Ada.", "through_turn_id": "t1",
                            "updated_at_ms": 1_700_000_002_000_i64},
            })
        );
    }
}

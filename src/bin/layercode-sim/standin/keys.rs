//! `POST /v1/agents/web/authorize_session` (layercode-protocol.md §7): the worker's
//! `/authorize` calls this with the API key; the answer's `client_session_key` opens one socket.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a session key opens a socket (Layercode: one hour).
pub const KEY_LIFETIME: Duration = Duration::from_secs(3600);

/// What a session key grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub conversation_id: String,
    pub agent_id: String,
}

#[derive(Debug)]
struct Issued {
    grant: Grant,
    at: Instant,
}

/// Issued keys and known conversations.
#[derive(Debug, Default)]
pub struct Keys {
    issued: HashMap<String, Issued>,
    conversations: HashSet<String>,
}

/// An answer to the worker: status and JSON body.
pub type Answer = (u16, Value);

impl Keys {
    /// Checks the bearer key and the body as Layercode does (400 with `{"error"}` for a missing
    /// or wrong key, an unknown agent, an unknown conversation) and issues a key.
    pub fn authorize(
        &mut self,
        authorization: Option<&str>,
        api_key: Option<&str>,
        agent_id: &str,
        body: &[u8],
        mint: impl Fn(&str) -> String,
        now: Instant,
    ) -> Answer {
        if !bearer_ok(authorization, api_key) {
            return error(400, "missing or invalid bearer token");
        }
        let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(body) else {
            return error(400, "the body must be a JSON object");
        };
        match request.get("agent_id").and_then(Value::as_str) {
            Some(id) if id == agent_id => {}
            _ => return error(400, "invalid agent_id"),
        }
        let conversation_id = match request.get("conversation_id") {
            None | Some(Value::Null) => mint("lc_conv"),
            Some(Value::String(id)) if self.conversations.contains(id) => id.clone(),
            Some(_) => return error(400, "invalid conversation_id"),
        };
        self.conversations.insert(conversation_id.clone());
        let key = mint("lc_sesskey");
        self.issued.insert(
            key.clone(),
            Issued {
                grant: Grant {
                    conversation_id: conversation_id.clone(),
                    agent_id: agent_id.to_string(),
                },
                at: now,
            },
        );
        (
            200,
            json!({
                "client_session_key": key,
                "conversation_id": conversation_id,
                "config": {
                    "transcription": {
                        "trigger": "automatic",
                        "automatic": true,
                        "can_interrupt": true,
                    },
                    // No speech recognition here, so the browser loads no voice-activity model.
                    "vad": {"enabled": false},
                },
            }),
        )
    }

    /// The grant of a key, once: a key opens one socket, within its lifetime.
    pub fn redeem(&mut self, key: &str, now: Instant) -> Option<Grant> {
        self.issued
            .retain(|_, issued| now.duration_since(issued.at) < KEY_LIFETIME);
        self.issued.remove(key).map(|issued| issued.grant)
    }
}

/// Whether an `Authorization` header carries the API key (any non-empty key when `api_key` is
/// `None`).
pub fn bearer_ok(authorization: Option<&str>, api_key: Option<&str>) -> bool {
    let bearer = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|k| !k.is_empty());
    match (bearer, api_key) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(given), Some(expected)) => given == expected,
    }
}

pub fn error(status: u16, message: &str) -> Answer {
    (status, json!({ "error": message }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    fn minter() -> impl Fn(&str) -> String {
        let n = Cell::new(0);
        move |prefix: &str| {
            n.set(n.get() + 1);
            format!("{prefix}_{}", n.get())
        }
    }

    #[test]
    fn a_key_is_issued_for_the_agent_and_opens_one_socket() {
        let mut keys = Keys::default();
        let now = Instant::now();
        let (status, body) = keys.authorize(
            Some("Bearer k"),
            Some("k"),
            "agent_1",
            br#"{"agent_id":"agent_1","metadata":{},"sdk_version":"2.7.0"}"#,
            minter(),
            now,
        );
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["conversation_id"], "lc_conv_1");
        assert_eq!(body["config"]["transcription"]["trigger"], "automatic");
        assert_eq!(body["config"]["vad"]["enabled"], false);
        let key = body["client_session_key"].as_str().unwrap();
        assert_eq!(
            keys.redeem(key, now),
            Some(Grant {
                conversation_id: "lc_conv_1".into(),
                agent_id: "agent_1".into()
            })
        );
        assert_eq!(keys.redeem(key, now), None, "single use");
        assert_eq!(keys.redeem("lc_sesskey_guess", now), None);
    }

    #[test]
    fn keys_expire_after_an_hour() {
        let mut keys = Keys::default();
        let then = Instant::now();
        let (_, body) = keys.authorize(
            Some("Bearer k"),
            None,
            "a",
            br#"{"agent_id":"a"}"#,
            minter(),
            then,
        );
        let key = body["client_session_key"].as_str().unwrap();
        assert_eq!(keys.redeem(key, then + KEY_LIFETIME), None);
    }

    #[test]
    fn a_known_conversation_resumes_and_bad_requests_are_400() {
        let mut keys = Keys::default();
        let now = Instant::now();
        let mint = minter();
        let (_, first) = keys.authorize(
            Some("Bearer k"),
            Some("k"),
            "a",
            br#"{"agent_id":"a"}"#,
            &mint,
            now,
        );
        let conversation = first["conversation_id"].as_str().unwrap();
        let resume = format!(r#"{{"agent_id":"a","conversation_id":"{conversation}"}}"#);
        let (status, again) = keys.authorize(
            Some("Bearer k"),
            Some("k"),
            "a",
            resume.as_bytes(),
            &mint,
            now,
        );
        assert_eq!(
            (status, &again["conversation_id"]),
            (200, &first["conversation_id"])
        );

        let refused = [
            (
                None,
                r#"{"agent_id":"a"}"#,
                "missing or invalid bearer token",
            ),
            (
                Some("Bearer wrong"),
                r#"{"agent_id":"a"}"#,
                "missing or invalid bearer token",
            ),
            (Some("Bearer k"), r#"{"agent_id":"b"}"#, "invalid agent_id"),
            (Some("Bearer k"), r#"{}"#, "invalid agent_id"),
            (
                Some("Bearer k"),
                r#"{"agent_id":"a","conversation_id":"lc_conv_unknown"}"#,
                "invalid conversation_id",
            ),
            (Some("Bearer k"), "[]", "the body must be a JSON object"),
        ];
        for (auth, body, message) in refused {
            let (status, answer) =
                keys.authorize(auth, Some("k"), "a", body.as_bytes(), &mint, now);
            assert_eq!(
                (status, answer["error"].as_str()),
                (400, Some(message)),
                "{body}"
            );
        }
    }
}

//! The webhook events Layercode sends, parsed leniently: unknown fields are ignored and only what
//! this backend needs is required.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::lossy_json::replace_lone_surrogates;

/// Longest id accepted, in bytes: `conversation_id` names a Durable Object, `turn_id` is echoed
/// in every frame, and all of them reach the log.
const MAX_ID_LEN: usize = 256;
/// The fields held to [`MAX_ID_LEN`], whatever the event type (a dot names a nested field).
const CAPPED_FIELDS: [&str; 5] = [
    "type",
    "conversation_id",
    "turn_id",
    "session_id",
    "interruption_context.assistant_turn_id",
];

/// One parsed webhook event.
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookEvent {
    SessionStart(SessionStart),
    Message(Message),
    Data(DataEvent),
    SessionEnd(SessionEnd),
    SessionUpdate(SessionUpdate),
    /// A type this backend does not know (yet): acknowledged, not processed.
    Unknown {
        kind: String,
    },
}

impl WebhookEvent {
    /// The `type` string, for logs.
    pub fn kind(&self) -> &str {
        match self {
            WebhookEvent::SessionStart(_) => "session.start",
            WebhookEvent::Message(_) => "message",
            WebhookEvent::Data(_) => "data",
            WebhookEvent::SessionEnd(_) => "session.end",
            WebhookEvent::SessionUpdate(_) => "session.update",
            WebhookEvent::Unknown { kind } => kind,
        }
    }

    /// The conversation the event is about, if it names one.
    pub fn conversation_id(&self) -> Option<&str> {
        match self {
            WebhookEvent::SessionStart(e) => Some(&e.conversation_id),
            WebhookEvent::Message(e) => Some(&e.conversation_id),
            WebhookEvent::SessionEnd(e) => Some(&e.conversation_id),
            WebhookEvent::Data(e) => e.conversation_id.as_deref(),
            WebhookEvent::SessionUpdate(e) => e.conversation_id.as_deref(),
            WebhookEvent::Unknown { .. } => None,
        }
    }
}

/// A session (one connection) opened; the agent may speak first.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionStart {
    pub conversation_id: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub turn_id: Option<String>,
    /// Who the call is with: fills the welcome's placeholders.
    #[serde(skip)]
    pub call: CallContext,
}

/// Who a call is with, as every webhook of it tells: the `custom_metadata` set at authorize (or
/// in the agent's configuration) and, for a phone call, the two numbers. Read leniently: a
/// `custom_metadata` that is not an object, or a number that is not a string, counts as absent
/// rather than refusing the event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallContext {
    pub custom_metadata: Option<Map<String, Value>>,
    pub from_phone_number: Option<String>,
    pub to_phone_number: Option<String>,
}

impl CallContext {
    /// Reads the fields from an event's JSON object (the typed event does not read them).
    fn of(object: &Map<String, Value>) -> Self {
        let string = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_string);
        CallContext {
            custom_metadata: object
                .get("custom_metadata")
                .and_then(Value::as_object)
                .cloned(),
            from_phone_number: string("from_phone_number"),
            to_phone_number: string("to_phone_number"),
        }
    }
}

/// The user said (or typed) something.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Message {
    pub conversation_id: String,
    #[serde(default)]
    pub session_id: Option<String>,
    pub turn_id: String,
    /// Empty when missing or null: such a turn is answered with just `response.end`.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub text: String,
    #[serde(default)]
    pub interruption_context: Option<InterruptionContext>,
    /// Who the call is with: fills the system prompt's placeholders.
    #[serde(skip)]
    pub call: CallContext,
}

/// Sent with a `message` when the user cut off the previous assistant turn.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct InterruptionContext {
    #[serde(default)]
    pub previous_turn_interrupted: Option<bool>,
    #[serde(default)]
    pub words_heard: Option<f64>,
    #[serde(default)]
    pub text_heard: Option<String>,
    #[serde(default)]
    pub assistant_turn_id: Option<String>,
}

impl InterruptionContext {
    /// Whether the context says a turn was cut off (absent flag: trust the other fields).
    pub fn applies(&self) -> bool {
        self.previous_turn_interrupted.unwrap_or(true)
            && (self.text_heard.is_some() || self.assistant_turn_id.is_some())
    }
}

/// Structured data from the client (`client.response.data`); answered with JSON, not SSE.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DataEvent {
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub turn_id: Option<String>,
    #[serde(default)]
    pub data: Value,
}

/// The session closed; carries the transcript and metrics.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionEnd {
    pub conversation_id: String,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub agent_id: Option<String>,
    /// ISO 8601 in the docs; kept as sent.
    #[serde(default)]
    pub started_at: Option<Value>,
    #[serde(default)]
    pub ended_at: Option<Value>,
    /// Milliseconds.
    #[serde(default)]
    pub duration: Option<f64>,
    #[serde(default)]
    pub transcription_duration_seconds: Option<f64>,
    #[serde(default)]
    pub tts_duration_seconds: Option<f64>,
    #[serde(default)]
    pub latency: Option<f64>,
    #[serde(default)]
    pub recording_status: Option<String>,
    /// Items `{role, text, timestamp}`; only their number is kept.
    #[serde(default)]
    pub transcript: Option<Vec<Value>>,
}

/// Asynchronous data is ready (for example a processed recording).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SessionUpdate {
    #[serde(default)]
    pub conversation_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub recording_status: Option<String>,
}

/// The upper-case type names of Layercode's older docs (`MESSAGE`, `SESSION_START`, …), each
/// with the name it has now. A pipeline still sending them is answered as if it used the new one.
const LEGACY_TYPES: [(&str, &str); 5] = [
    ("SESSION_START", "session.start"),
    ("MESSAGE", "message"),
    ("DATA", "data"),
    ("SESSION_END", "session.end"),
    ("SESSION_UPDATE", "session.update"),
];

/// Parses a verified webhook body. Errors are messages for a 400 response. A lone surrogate
/// escape (what `JSON.stringify` writes for half an emoji) becomes U+FFFD instead of a 400.
pub fn parse(body: &[u8]) -> Result<WebhookEvent, String> {
    parse_noting_legacy(body).map(|(event, _)| event)
}

/// Like [`parse`], also giving the legacy type name the body used, if it used one (see
/// `LEGACY_TYPES`), so the caller can log it: one of our own constants, never the body's text.
pub fn parse_noting_legacy(body: &[u8]) -> Result<(WebhookEvent, Option<&'static str>), String> {
    let json = replace_lone_surrogates(body);
    let value: Value =
        serde_json::from_slice(&json).map_err(|e| format!("invalid JSON body: {e}"))?;
    let Value::Object(ref object) = value else {
        return Err("the body must be a JSON object".to_string());
    };
    let call = CallContext::of(object);
    for field in CAPPED_FIELDS {
        if field
            .split('.')
            .try_fold(&value, |parent, key| parent.get(key))
            .and_then(Value::as_str)
            .is_some_and(|id| id.len() > MAX_ID_LEN)
        {
            return Err(format!("`{field}` is longer than {MAX_ID_LEN} bytes"));
        }
    }
    let (kind, legacy) = match object.get("type") {
        Some(Value::String(kind)) => match LEGACY_TYPES.iter().find(|(old, _)| old == kind) {
            Some((old, new)) => (new.to_string(), Some(*old)),
            None => (kind.clone(), None),
        },
        Some(_) => return Err("field `type` must be a string".to_string()),
        None => return Err("missing field `type`".to_string()),
    };
    let event = match kind.as_str() {
        "session.start" => WebhookEvent::SessionStart(SessionStart {
            call,
            ..typed(value, &kind)?
        }),
        "message" => WebhookEvent::Message(Message {
            call,
            ..typed(value, &kind)?
        }),
        "data" => WebhookEvent::Data(typed(value, &kind)?),
        "session.end" => WebhookEvent::SessionEnd(typed(value, &kind)?),
        "session.update" => WebhookEvent::SessionUpdate(typed(value, &kind)?),
        _ => WebhookEvent::Unknown { kind },
    };
    validate(&event)?;
    Ok((event, legacy))
}

/// A string that may also be missing or null (both read as empty).
fn null_as_empty<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.unwrap_or_default())
}

fn typed<T: DeserializeOwned>(value: Value, kind: &str) -> Result<T, String> {
    // serde's messages name the field and the expected type, never a secret.
    serde_json::from_value(value).map_err(|e| format!("invalid `{kind}` event: {e}"))
}

fn validate(event: &WebhookEvent) -> Result<(), String> {
    let conversation_id = match event {
        WebhookEvent::SessionStart(e) => Some(&e.conversation_id),
        WebhookEvent::Message(e) => Some(&e.conversation_id),
        WebhookEvent::SessionEnd(e) => Some(&e.conversation_id),
        _ => None,
    };
    if conversation_id.is_some_and(|id| id.trim().is_empty()) {
        return Err("`conversation_id` must not be empty".to_string());
    }
    if let WebhookEvent::Message(message) = event {
        if message.turn_id.trim().is_empty() {
            return Err("`turn_id` must not be empty".to_string());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(body: &str) -> Result<WebhookEvent, String> {
        parse(body.as_bytes())
    }

    #[test]
    fn message_with_interruption_context_parses() {
        let event = parse_str(
            r#"{"type":"message","session_id":"s1","conversation_id":"c1","turn_id":"t2",
                "text":"Wait","extra":{"ignored":true},
                "interruption_context":{"previous_turn_interrupted":true,"words_heard":3,
                "text_heard":"The capital of","assistant_turn_id":"t1"}}"#,
        )
        .unwrap();
        let WebhookEvent::Message(message) = event else {
            panic!("not a message")
        };
        assert_eq!(message.conversation_id, "c1");
        assert_eq!(message.turn_id, "t2");
        assert_eq!(message.text, "Wait");
        let context = message.interruption_context.unwrap();
        assert!(context.applies());
        assert_eq!(context.text_heard.as_deref(), Some("The capital of"));
        assert_eq!(context.assistant_turn_id.as_deref(), Some("t1"));
        assert_eq!(context.words_heard, Some(3.0));
    }

    #[test]
    fn who_the_call_is_with_is_read_leniently() {
        let WebhookEvent::Message(message) = parse_str(
            r#"{"type":"message","conversation_id":"c","turn_id":"t","text":"hi",
                "custom_metadata":{"name":"Ada","plan":{"tier":"pro"}},
                "from_phone_number":"+15551234567","to_phone_number":15557654321}"#,
        )
        .unwrap() else {
            panic!("not a message")
        };
        let call = message.call;
        assert_eq!(call.custom_metadata.unwrap()["name"], "Ada");
        assert_eq!(call.from_phone_number.as_deref(), Some("+15551234567"));
        assert_eq!(call.to_phone_number, None, "a number is not a phone field");
        let WebhookEvent::SessionStart(start) = parse_str(
            r#"{"type":"session.start","conversation_id":"c","custom_metadata":["not", "an object"],
                "from_phone_number":null}"#,
        )
        .unwrap() else {
            panic!("not session.start")
        };
        assert_eq!(start.call, CallContext::default());
    }

    #[test]
    fn legacy_upper_case_names_parse_as_their_current_names() {
        let body = |kind: &str| {
            format!(
                r#"{{"type":"{kind}","session_id":"s","conversation_id":"c","turn_id":"t",
                   "text":"Hi"}}"#
            )
        };
        let cases = [
            ("MESSAGE", Some("message")),
            ("SESSION_START", Some("session.start")),
            ("SESSION_END", Some("session.end")),
            ("SESSION_UPDATE", Some("session.update")),
            ("DATA", Some("data")),
            // Only the exact old spellings: anything else stays an unknown type.
            ("Message", None),
            ("SESSION.START", None),
            ("MESSAGES", None),
        ];
        for (kind, now) in cases {
            let (event, legacy) = parse_noting_legacy(body(kind).as_bytes()).unwrap();
            match now {
                Some(now) => {
                    assert_eq!(event.kind(), now, "{kind}");
                    assert_eq!(legacy, Some(kind));
                }
                None => {
                    assert_eq!(event, WebhookEvent::Unknown { kind: kind.into() });
                    assert_eq!(legacy, None);
                }
            }
        }
        let (event, legacy) = parse_noting_legacy(body("message").as_bytes()).unwrap();
        assert_eq!((event.kind(), legacy), ("message", None));
        // Read as the type it names, with that type's rules: a legacy message needs a turn id.
        let no_turn = r#"{"type":"MESSAGE","conversation_id":"c","turn_id":" ","text":"Hi"}"#;
        assert_eq!(
            parse(no_turn.as_bytes()).unwrap_err(),
            "`turn_id` must not be empty"
        );
    }

    #[test]
    fn every_known_type_parses() {
        let cases = [
            (
                r#"{"type":"session.start","session_id":"s","conversation_id":"c","turn_id":"t"}"#,
                "session.start",
            ),
            (
                r#"{"type":"data","session_id":"s","conversation_id":"c","turn_id":"t","data":{"k":1}}"#,
                "data",
            ),
            (
                r#"{"type":"session.end","session_id":"s","conversation_id":"c","duration":null,
                   "transcript":[{"role":"user","text":"hi","timestamp":1}]}"#,
                "session.end",
            ),
            (
                r#"{"type":"session.update","session_id":"s","conversation_id":"c","recording_status":"completed"}"#,
                "session.update",
            ),
            (
                r#"{"type":"agent.future_thing","x":1}"#,
                "agent.future_thing",
            ),
        ];
        for (body, kind) in cases {
            assert_eq!(parse_str(body).unwrap().kind(), kind);
        }
    }

    #[test]
    fn session_end_keeps_metrics_and_counts_the_transcript() {
        let WebhookEvent::SessionEnd(end) = parse_str(
            r#"{"type":"session.end","conversation_id":"c","session_id":"s","duration":61234,
               "transcription_duration_seconds":12.5,"tts_duration_seconds":null,
               "transcript":[{"role":"user","text":"a","timestamp":1},
                             {"role":"assistant","text":"b","timestamp":"2025-01-01T00:00:00Z"}]}"#,
        )
        .unwrap() else {
            panic!("not session.end")
        };
        assert_eq!(end.duration, Some(61234.0));
        assert_eq!(end.transcription_duration_seconds, Some(12.5));
        assert_eq!(end.tts_duration_seconds, None);
        assert_eq!(end.transcript.map(|t| t.len()), Some(2));
    }

    #[test]
    fn bad_bodies_get_clear_messages() {
        assert!(parse_str("{").unwrap_err().starts_with("invalid JSON body"));
        assert_eq!(
            parse_str("[1]").unwrap_err(),
            "the body must be a JSON object"
        );
        assert_eq!(
            parse_str(r#"{"text":"hi"}"#).unwrap_err(),
            "missing field `type`"
        );
        assert_eq!(
            parse_str(r#"{"type":5}"#).unwrap_err(),
            "field `type` must be a string"
        );
        let text_not_a_string =
            parse_str(r#"{"type":"message","conversation_id":"c","turn_id":"t","text":5}"#)
                .unwrap_err();
        assert!(
            text_not_a_string.contains("invalid type: integer"),
            "{text_not_a_string}"
        );
        let missing_conversation =
            parse_str(r#"{"type":"message","turn_id":"t","text":"hi"}"#).unwrap_err();
        assert!(missing_conversation.contains("conversation_id"));
        assert_eq!(
            parse_str(r#"{"type":"message","conversation_id":"c","turn_id":" ","text":"hi"}"#)
                .unwrap_err(),
            "`turn_id` must not be empty"
        );
        assert_eq!(
            parse_str(r#"{"type":"session.start","conversation_id":""}"#).unwrap_err(),
            "`conversation_id` must not be empty"
        );
        let long = format!(
            r#"{{"type":"session.start","conversation_id":"{}"}}"#,
            "c".repeat(300)
        );
        assert!(parse_str(&long).unwrap_err().contains("longer than 256"));
    }

    #[test]
    fn a_message_without_words_parses_with_its_text_empty_or_blank() {
        let cases = [
            (
                r#"{"type":"message","conversation_id":"c","turn_id":"t"}"#,
                "",
            ),
            (
                r#"{"type":"message","conversation_id":"c","turn_id":"t","text":null}"#,
                "",
            ),
            (
                r#"{"type":"message","conversation_id":"c","turn_id":"t","text":" \n"}"#,
                " \n",
            ),
        ];
        for (body, text) in cases {
            let Ok(WebhookEvent::Message(message)) = parse_str(body) else {
                panic!("not a message: {body}")
            };
            assert_eq!(message.text, text, "{body}");
        }
    }

    #[test]
    fn type_and_ids_are_capped_at_256_bytes_in_every_event() {
        let at_limit = "x".repeat(MAX_ID_LEN);
        let over = "x".repeat(MAX_ID_LEN + 1);
        let base = serde_json::json!({
            "type": "message", "conversation_id": "c", "session_id": "s", "turn_id": "t",
            "text": "hi", "interruption_context": {"previous_turn_interrupted": true,
                                                   "text_heard": "Hi", "assistant_turn_id": "a"}
        });
        for kind in [
            "message",
            "session.start",
            "data",
            "session.end",
            "agent.new_type",
        ] {
            for field in CAPPED_FIELDS {
                let mut event = base.clone();
                event["type"] = kind.into();
                let pointer = format!("/{}", field.replace('.', "/"));
                let set = |event: &mut serde_json::Value, value: &str| {
                    *event.pointer_mut(&pointer).expect("field in base") = value.into();
                };
                set(&mut event, &at_limit);
                let body = event.to_string();
                if field != "type" {
                    assert!(parse_str(&body).is_ok(), "{kind}.{field} at the limit");
                }
                set(&mut event, &over);
                assert_eq!(
                    parse_str(&event.to_string()).unwrap_err(),
                    format!("`{field}` is longer than 256 bytes"),
                    "{kind}.{field}"
                );
            }
        }
    }

    #[test]
    fn the_interrupted_turn_id_is_capped_too() {
        let with_id = |id: String| {
            serde_json::json!({
                "type": "message", "conversation_id": "c", "turn_id": "t2", "text": "hi",
                "interruption_context": {"previous_turn_interrupted": true, "words_heard": 1,
                                         "text_heard": "Hi", "assistant_turn_id": id}
            })
            .to_string()
        };
        assert!(parse_str(&with_id("x".repeat(MAX_ID_LEN))).is_ok());
        assert_eq!(
            parse_str(&with_id("x".repeat(MAX_ID_LEN + 1))).unwrap_err(),
            "`interruption_context.assistant_turn_id` is longer than 256 bytes"
        );
    }

    #[test]
    fn lone_surrogate_escapes_anywhere_are_read_lossily() {
        let WebhookEvent::Message(message) = parse_str(
            r#"{"type":"message","session_id":"s\udc00","conversation_id":"c","turn_id":"t",
                "text":"I love \ud83d and \ud83d\ude00"}"#,
        )
        .unwrap() else {
            panic!("not a message")
        };
        assert_eq!(message.text, "I love \u{FFFD} and 😀");
        assert_eq!(message.session_id.as_deref(), Some("s\u{FFFD}"));
    }

    #[test]
    fn interruption_without_a_flag_still_applies_but_an_explicit_false_does_not() {
        let heard = InterruptionContext {
            text_heard: Some("Hel".into()),
            ..Default::default()
        };
        assert!(heard.applies());
        let not_interrupted = InterruptionContext {
            previous_turn_interrupted: Some(false),
            text_heard: Some("Hel".into()),
            ..Default::default()
        };
        assert!(!not_interrupted.applies());
        assert!(!InterruptionContext::default().applies());
    }

    #[test]
    fn deeply_nested_json_is_rejected_not_crashed() {
        let deep = format!(
            r#"{{"type":"data","data":{}1{}}}"#,
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        assert!(parse_str(&deep).is_err());
    }
}

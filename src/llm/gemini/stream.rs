//! One event of the stream (a `GenerateContentResponse`): its text, finish reason, block
//! reason, in-stream error, usage, and every part verbatim with the function calls among them.

use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{sanitise, ErrorBody, UpstreamError};
use crate::llm::{FunctionCall, Usage};

/// Gemini's `usageMetadata` (the last event's are the totals), as Google names the counts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GeminiUsage {
    pub prompt_token_count: Option<u64>,
    pub candidates_token_count: Option<u64>,
    pub total_token_count: Option<u64>,
    pub thoughts_token_count: Option<u64>,
}

impl From<GeminiUsage> for Usage {
    fn from(usage: GeminiUsage) -> Usage {
        Usage {
            prompt_tokens: usage.prompt_token_count,
            output_tokens: usage.candidates_token_count,
            total_tokens: usage.total_token_count,
        }
    }
}
use crate::lossy_json::replace_lone_surrogates;

/// What one event of the stream says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResponseEvent {
    /// New text (a delta), thoughts excluded.
    pub text: String,
    pub finish_reason: Option<String>,
    /// `promptFeedback.blockReason` of a blocked prompt.
    pub block_reason: Option<String>,
    /// An error reported inside the stream.
    pub error: Option<UpstreamError>,
    pub usage: Option<GeminiUsage>,
    /// Every part of the candidate exactly as received (thoughts and signatures included).
    pub parts: Vec<Value>,
    /// The function calls among the parts.
    pub calls: Vec<FunctionCall>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResponseEvent {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<GeminiUsage>,
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    /// Kept as raw JSON: a follow-up request sends them back verbatim.
    #[serde(default)]
    parts: Vec<Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

/// Parses the JSON of one `data:` event. A lone surrogate escape (half an emoji) costs that
/// character, not the reply. `api_key` is redacted from any error code.
pub fn parse_event(data: &str, api_key: &str) -> Result<ResponseEvent, String> {
    let json = replace_lone_surrogates(data.as_bytes());
    let raw: RawResponseEvent =
        serde_json::from_slice(&json).map_err(|e| format!("unreadable event: {e}"))?;
    let mut event = ResponseEvent {
        usage: raw.usage_metadata,
        ..ResponseEvent::default()
    };
    if let Some(error) = raw.error {
        let http_status = error
            .code
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        event.error = Some(sanitise(http_status, error, api_key));
        return Ok(event);
    }
    if raw.candidates.is_empty() {
        event.block_reason = raw.prompt_feedback.and_then(|f| f.block_reason);
    }
    if let Some(candidate) = raw.candidates.into_iter().next() {
        event.finish_reason = candidate.finish_reason;
        let parts = candidate.content.map(|c| c.parts).unwrap_or_default();
        for part in &parts {
            let thought = part.get("thought").and_then(Value::as_bool) == Some(true);
            if let (false, Some(text)) = (thought, part.get("text").and_then(Value::as_str)) {
                event.text.push_str(text);
            }
            if let Some(call) = part.get("functionCall").and_then(function_call) {
                event.calls.push(call);
            }
        }
        event.parts = parts;
    }
    Ok(event)
}

fn function_call(call: &Value) -> Option<FunctionCall> {
    Some(FunctionCall {
        id: call.get("id").and_then(Value::as_str).map(str::to_string),
        name: call.get("name")?.as_str()?.to_string(),
        args: match call.get("args") {
            Some(args @ Value::Object(_)) => args.clone(),
            _ => json!({}),
        },
    })
}

/// The finish reason of a reply cut by `maxOutputTokens`, possibly mid-sentence.
pub const MAX_TOKENS: &str = "MAX_TOKENS";

/// Finish reasons of a reply stopped by a content policy (gemini-streaming.md §7), which can
/// leave a sentence half-spoken.
pub fn is_policy_stop(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY" | "RECITATION" | "LANGUAGE" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_text_finish_and_usage_are_read() {
        let event = parse_event(
            r#"{"candidates": [{"content": {"parts": [{"text": " is **Cheyenne**.\n"}],"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 10,"totalTokenCount": 17},"modelVersion": "gemini-3.1-flash-lite"}"#,
            "",
        )
        .unwrap();
        assert_eq!(event.text, " is **Cheyenne**.\n");
        assert_eq!(event.finish_reason.as_deref(), Some("STOP"));
        assert_eq!(event.usage.unwrap().total_token_count, Some(17));
    }

    #[test]
    fn thoughts_and_empty_parts_are_skipped() {
        let event = parse_event(
            r#"{"candidates":[{"content":{"parts":[{"text":"plan…","thought":true},{"text":""},{"text":"Hello"}]}}]}"#,
            "",
        )
        .unwrap();
        assert_eq!(event.text, "Hello");
        assert_eq!(event.finish_reason, None);
    }

    #[test]
    fn final_event_without_parts_and_candidate_without_content_are_fine() {
        let last = parse_event(
            r#"{"candidates":[{"content":{"role":"model"},"finishReason":"STOP"}]}"#,
            "",
        )
        .unwrap();
        assert_eq!(
            (last.text.as_str(), last.finish_reason.as_deref()),
            ("", Some("STOP"))
        );
        let recitation =
            parse_event(r#"{"candidates":[{"finishReason":"RECITATION"}]}"#, "").unwrap();
        assert_eq!(recitation.finish_reason.as_deref(), Some("RECITATION"));
    }

    #[test]
    fn blocked_prompt_is_reported() {
        let event = parse_event(
            r#"{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[]},"usageMetadata":{"promptTokenCount":5}}"#,
            "",
        )
        .unwrap();
        assert_eq!(event.block_reason.as_deref(), Some("SAFETY"));
        assert_eq!(event.text, "");
    }

    #[test]
    fn error_inside_the_stream_is_reported_as_codes() {
        let event = parse_event(
            r#"{"error":{"code":503,"message":"overloaded for key AIzaSECRET","status":"UNAVAILABLE"}}"#,
            "AIzaSECRET",
        )
        .unwrap();
        let error = event.error.unwrap();
        assert_eq!(
            error,
            UpstreamError {
                http_status: 503,
                status: "UNAVAILABLE".into(),
                reasons: vec![]
            }
        );
        assert_eq!(error.for_log(), "503 UNAVAILABLE");
        assert!(error.retryable());
    }

    #[test]
    fn calls_and_every_part_are_kept_verbatim() {
        let event = parse_event(
            r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"Checking."},{"functionCall":{"name":"shop_hours","args":{"city":"Paris"},"id":"fc_1"},"thoughtSignature":"c2ln"},{"functionCall":{"name":"end_call"}},{"text":"","thoughtSignature":"ZW5k"}]},"finishReason":"STOP"}]}"#,
            "",
        )
        .unwrap();
        assert_eq!(event.text, "Checking.");
        assert_eq!(event.parts.len(), 4);
        assert_eq!(
            event.parts[3],
            json!({"text": "", "thoughtSignature": "ZW5k"})
        );
        assert_eq!(event.parts[1]["thoughtSignature"], "c2ln");
        assert_eq!(
            event.calls,
            vec![
                FunctionCall {
                    id: Some("fc_1".into()),
                    name: "shop_hours".into(),
                    args: json!({"city": "Paris"})
                },
                FunctionCall {
                    id: None,
                    name: "end_call".into(),
                    args: json!({})
                },
            ]
        );
    }

    #[test]
    fn a_lone_surrogate_escape_costs_one_character_not_the_event() {
        let event = parse_event(
            r#"{"candidates":[{"content":{"parts":[{"text":"Smile \ud83d, \ud83d\ude00 \ude00"}]}}]}"#,
            "",
        )
        .unwrap();
        assert_eq!(event.text, "Smile \u{FFFD}, 😀 \u{FFFD}");
    }

    #[test]
    fn unreadable_events_are_errors() {
        assert!(parse_event("not json", "").is_err());
    }
}

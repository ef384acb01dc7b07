//! The OpenAI wire's errors as codes only (HTTP status, `error.type`, `error.code`) and whether
//! one is worth a retry. `error.message` is never read: providers quote the prompt back, and
//! OpenAI's 401 quotes (part of) the key.

use serde_json::Value;

use crate::lossy_json::replace_lone_surrogates;
use crate::redact::redact;

/// Real codes (`rate_limit_exceeded`, `invalid_api_key`) are far shorter than this.
const MAX_CODE_CHARS: usize = 64;

/// An upstream error as codes only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub http_status: u16,
    /// `error.type`, e.g. `invalid_request_error`.
    pub kind: Option<String>,
    /// `error.code`, e.g. `invalid_api_key` (OpenRouter: a number).
    pub code: Option<String>,
}

impl ApiError {
    /// Worth one quick retry before anything was spoken: a timeout, a rate limit, a server error.
    pub fn retryable(&self) -> bool {
        matches!(self.http_status, 408 | 409 | 429) || (500..=599).contains(&self.http_status)
    }

    /// The form the log line carries, codes only: `401 invalid_request_error invalid_api_key`,
    /// `HTTP_<status>` in place of both when the body had neither.
    pub fn for_log(&self) -> String {
        let mut line = self.http_status.to_string();
        if self.kind.is_none() && self.code.is_none() {
            line.push_str(&format!(" HTTP_{}", self.http_status));
        }
        for part in [&self.kind, &self.code].into_iter().flatten() {
            line.push(' ');
            line.push_str(part);
        }
        line
    }
}

/// Classifies a non-200 answer from its status and body (`{"error": {"type", "code", …}}`;
/// anything else, or `{"error": "a sentence"}`, leaves the status alone).
pub fn classify_error(http_status: u16, body: &str, api_key: &str) -> ApiError {
    let json = replace_lone_surrogates(body.trim().as_bytes());
    let error = serde_json::from_slice::<Value>(&json)
        .ok()
        .and_then(|v| v.get("error").cloned());
    match error {
        Some(error) => from_error_object(http_status, &error, api_key),
        None => ApiError {
            http_status,
            kind: None,
            code: None,
        },
    }
}

/// The codes of an `error` value (a string or anything else yields none).
pub(super) fn from_error_object(http_status: u16, error: &Value, api_key: &str) -> ApiError {
    let field = |name: &str| match error.get(name) {
        Some(Value::String(text)) => code(text, api_key),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    ApiError {
        http_status,
        kind: field("type"),
        code: field("code"),
    }
}

/// `raw` if it looks like a code (`snake_case`, `dotted.names`, digits; after redaction and a
/// length cap), so free text can never reach the log through a code field.
fn code(raw: &str, api_key: &str) -> Option<String> {
    let code = redact(raw, &[api_key], MAX_CODE_CHARS);
    let is_code = !code.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    is_code.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_become_codes() {
        let cases = [
            (
                401,
                r#"{"error": {"message": "Incorrect API key provided: sk-abc***xyz.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}"#,
                "401 invalid_request_error invalid_api_key",
                false,
            ),
            (
                404,
                r#"{"error": {"message": "The model `gpt-x` does not exist", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}"#,
                "404 invalid_request_error model_not_found",
                false,
            ),
            (
                429,
                r#"{"error": {"message": "Rate limit reached for gpt-4.1-mini", "type": "tokens", "param": null, "code": "rate_limit_exceeded"}}"#,
                "429 tokens rate_limit_exceeded",
                true,
            ),
            (
                503,
                r#"{"error": {"message": "The server is overloaded", "type": "server_error", "param": null, "code": null}}"#,
                "503 server_error",
                true,
            ),
            (
                402,
                r#"{"error": {"code": 402, "message": "Insufficient credits", "metadata": {}}}"#,
                "402 402",
                false,
            ),
            (
                404,
                r#"{"error": "model 'llama9' not found, try pulling it first"}"#,
                "404 HTTP_404",
                false,
            ),
            (502, "<html>Bad gateway</html>", "502 HTTP_502", true),
            (307, "", "307 HTTP_307", false),
            (408, "", "408 HTTP_408", true),
        ];
        for (status, body, logged, retryable) in cases {
            let error = classify_error(status, body, "sk-secret");
            assert_eq!(error.for_log(), logged, "{body}");
            assert_eq!(error.retryable(), retryable, "{body}");
        }
    }

    #[test]
    fn messages_free_text_and_keys_never_reach_the_log() {
        let quoted = "my card is 4111 1111 1111 1111";
        let body = json!({"error": {"message": quoted, "type": quoted, "code": "sk-secret-key"}});
        let error = classify_error(400, &body.to_string(), "sk-secret-key");
        assert_eq!(error.for_log(), "400 HTTP_400");
        let long = json!({"error": {"type": "a".repeat(5000)}});
        assert_eq!(
            classify_error(500, &long.to_string(), "")
                .kind
                .unwrap()
                .len(),
            64
        );
    }
}

//! Gemini's errors as codes only (HTTP status, Google's `status`, each `details[].reason`) and
//! whether one is worth a retry. Google's `message` is never read: some quote the caller back.

use serde::Deserialize;
use serde_json::Value;

use crate::lossy_json::replace_lone_surrogates;
use crate::redact::redact;

/// Google's codes (`RESOURCE_EXHAUSTED`, `API_KEY_INVALID`) are far shorter than this.
const MAX_CODE_CHARS: usize = 64;

/// An upstream error as codes only. Google's `message` is never kept: some 400s quote the
/// request back, caller's words included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError {
    pub http_status: u16,
    /// Google's `status`, e.g. `RESOURCE_EXHAUSTED`; `HTTP_<status>` when there is none.
    pub status: String,
    /// The `reason` of each `details[]` entry that has one, e.g. `API_KEY_INVALID`.
    pub reasons: Vec<String>,
}

impl UpstreamError {
    /// Worth one quick retry before anything was spoken: rate limit, overload, server error.
    /// Other 4xx (bad request, bad key, unknown model) would fail the same way again.
    pub fn retryable(&self) -> bool {
        matches!(self.http_status, 429 | 500 | 502 | 503 | 504)
    }

    /// The form the log line carries, codes only: `400 INVALID_ARGUMENT API_KEY_INVALID`.
    pub fn for_log(&self) -> String {
        let mut line = format!("{} {}", self.http_status, self.status);
        for reason in &self.reasons {
            line.push(' ');
            line.push_str(reason);
        }
        line
    }
}

/// Google's error object. Its `message` is deliberately not read (see `UpstreamError`).
#[derive(Deserialize)]
pub(super) struct ErrorBody {
    pub(super) code: Option<i64>,
    status: Option<String>,
    /// Typed entries (`ErrorInfo`, `RetryInfo`, `BadRequest`…); only `reason` is read.
    #[serde(default)]
    details: Vec<Value>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

/// Classifies a non-200 answer (or an unframed error body) from its status and JSON body.
pub fn classify_error(http_status: u16, body: &str, api_key: &str) -> UpstreamError {
    let json = replace_lone_surrogates(body.trim().as_bytes());
    match serde_json::from_slice::<ErrorEnvelope>(&json) {
        Ok(envelope) => sanitise(http_status, envelope.error, api_key),
        // A redirect, an HTML error page, an empty body: the status is all there is.
        Err(_) => UpstreamError {
            http_status,
            status: format!("HTTP_{http_status}"),
            reasons: Vec::new(),
        },
    }
}

pub(super) fn sanitise(http_status: u16, error: ErrorBody, api_key: &str) -> UpstreamError {
    let reasons = error
        .details
        .iter()
        .filter_map(|detail| detail.get("reason").and_then(Value::as_str))
        .filter_map(|reason| code(reason, api_key))
        .collect();
    UpstreamError {
        http_status,
        status: error
            .status
            .and_then(|status| code(&status, api_key))
            .unwrap_or_else(|| format!("HTTP_{http_status}")),
        reasons,
    }
}

/// `raw` if it looks like one of Google's codes (`UPPER_SNAKE_CASE`, after redaction and a
/// length cap), so free text can never reach the log through a code field.
pub(super) fn code(raw: &str, api_key: &str) -> Option<String> {
    let code = redact(raw, &[api_key], MAX_CODE_CHARS);
    let is_code = !code.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    is_code.then_some(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn error_bodies_are_classified() {
        let body = r#"{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "22s"}]}}"#;
        let error = classify_error(429, body, "k");
        assert_eq!(error.status, "RESOURCE_EXHAUSTED");
        assert!(error.retryable());
        let not_found = classify_error(
            404,
            r#"{"error":{"code":404,"message":"models/gemini-x is not found for API version v1beta","status":"NOT_FOUND"}}"#,
            "k",
        );
        assert_eq!(not_found.status, "NOT_FOUND");
        assert!(!not_found.retryable());
        let bad_key = classify_error(
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
               "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
            "k",
        );
        assert!(!bad_key.retryable());
        assert_eq!(bad_key.for_log(), "400 INVALID_ARGUMENT API_KEY_INVALID");
        let html = classify_error(502, "<html>Bad gateway</html>", "k");
        assert_eq!(html.status, "HTTP_502");
        assert!(html.retryable());
        let redirect = classify_error(307, "", "k");
        assert_eq!(redirect.for_log(), "307 HTTP_307");
        assert!(!redirect.retryable());
    }

    #[test]
    fn the_loggable_form_holds_codes_and_never_quoted_content() {
        let quoted = "my card is 4111 1111 1111 1111";
        let body = json!({"error": {
            "code": 400,
            "message": format!("Invalid value ({quoted})"),
            "status": "INVALID_ARGUMENT",
            "details": [
                {"@type": "type.googleapis.com/google.rpc.BadRequest",
                 "fieldViolations": [{"field": "contents", "description": quoted}]},
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "CONTENT_INVALID"},
                {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": quoted},
                "not an object",
                {"reason": "THE_KEY_IS_SECRET_KEY_1"}
            ]
        }});
        let error = classify_error(400, &body.to_string(), "SECRET_KEY_1");
        assert_eq!(error.for_log(), "400 INVALID_ARGUMENT CONTENT_INVALID");

        // Free text or a secret in the status field never passes for a code.
        let cases = [
            ("RESOURCE_EXHAUSTED", "429 RESOURCE_EXHAUSTED"),
            ("Quota exceeded for 4111", "429 HTTP_429"),
            ("SECRET_KEY_1", "429 HTTP_429"),
            ("", "429 HTTP_429"),
        ];
        for (status, expected) in cases {
            let body = json!({"error": {"code": 429, "message": quoted, "status": status}});
            let error = classify_error(429, &body.to_string(), "SECRET_KEY_1");
            assert_eq!(error.for_log(), expected, "{status:?}");
        }
        let long = json!({"error": {"status": "A".repeat(5000)}});
        assert_eq!(classify_error(500, &long.to_string(), "").status.len(), 64);
    }
}

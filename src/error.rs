//! One error type for every request path, mapped to `{"error": "..."}` responses in one place.
//!
//! A runtime failure (`worker::Error`) becomes [`AppError::Internal`] through `?`; its detail is
//! logged once, by [`AppError::to_response`], and never reaches the response body.

use worker::{console_error, Response};

/// Everything that can end a request before a stream has started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppError {
    /// Malformed input: invalid JSON, a missing or mistyped field.
    BadRequest(String),
    /// Missing or invalid webhook signature. The body stays generic on purpose.
    Unauthorized,
    /// Missing or wrong `CONVERSATIONS_API_KEY` bearer token; says nothing about the conversation.
    InvalidApiKey,
    /// Well-formed but not allowed (for example another agent's id).
    Forbidden(String),
    NotFound,
    /// The conversations API was asked for a conversation with nothing stored.
    ConversationNotFound,
    MethodNotAllowed,
    /// The request body did not arrive in time (a stalled or trickling client).
    RequestTimeout {
        limit_secs: u64,
    },
    PayloadTooLarge {
        limit_bytes: usize,
    },
    /// The body is not declared as JSON.
    UnsupportedMediaType,
    /// A required setting is not configured; names the setting, never a value.
    MissingSetting(&'static str),
    /// An upstream API answered with an error status; its sanitised message is relayed.
    UpstreamStatus {
        status: u16,
        message: String,
    },
    /// The upstream answered with something we must not pass on (a redirect, a success that
    /// is not JSON); says what, for the `error` field.
    UpstreamInvalid(&'static str),
    /// The upstream could not be reached.
    UpstreamUnreachable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// A failure of our own (storage, runtime); the detail goes to the log only, never to the
    /// body. It must hold no secret and no user speech.
    Internal(String),
}

impl From<worker::Error> for AppError {
    fn from(error: worker::Error) -> Self {
        AppError::Internal(error.to_string())
    }
}

impl AppError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            AppError::BadRequest(_) => 400,
            AppError::Unauthorized | AppError::InvalidApiKey => 401,
            AppError::Forbidden(_) => 403,
            AppError::NotFound | AppError::ConversationNotFound => 404,
            AppError::MethodNotAllowed => 405,
            AppError::RequestTimeout { .. } => 408,
            AppError::PayloadTooLarge { .. } => 413,
            AppError::UnsupportedMediaType => 415,
            AppError::MissingSetting(_) | AppError::Internal(_) => 500,
            AppError::UpstreamStatus { status, .. } => match *status {
                // Only relay real error statuses; anything odd is a bad gateway.
                400..=599 => *status,
                _ => 502,
            },
            AppError::UpstreamInvalid(_) | AppError::UpstreamUnreachable => 502,
            AppError::UpstreamTimeout => 504,
        }
    }

    /// The message for the `error` field of the response body.
    pub fn message(&self) -> String {
        match self {
            AppError::BadRequest(detail) => detail.clone(),
            AppError::Unauthorized => "invalid or missing layercode-signature".to_string(),
            AppError::Forbidden(detail) => detail.clone(),
            AppError::InvalidApiKey => "invalid or missing API key".to_string(),
            AppError::NotFound => "not found".to_string(),
            AppError::ConversationNotFound => "conversation not found".to_string(),
            AppError::MethodNotAllowed => "method not allowed".to_string(),
            AppError::RequestTimeout { limit_secs } => {
                format!("the request body did not arrive within {limit_secs} seconds")
            }
            AppError::PayloadTooLarge { limit_bytes } => {
                format!("request body is larger than {limit_bytes} bytes")
            }
            AppError::UnsupportedMediaType => {
                "the body must be JSON (Content-Type: application/json)".to_string()
            }
            AppError::MissingSetting(name) => format!("server is missing the setting {name}"),
            AppError::UpstreamStatus { message, .. } => message.clone(),
            AppError::UpstreamInvalid(what) => what.to_string(),
            AppError::UpstreamUnreachable => "upstream service unreachable".to_string(),
            AppError::UpstreamTimeout => "upstream service timed out".to_string(),
            AppError::Internal(_) => "internal error".to_string(),
        }
    }

    /// The JSON body `{"error": "..."}`.
    pub fn body(&self) -> String {
        serde_json::json!({ "error": self.message() }).to_string()
    }

    /// The HTTP response for this error. Every error becomes a response here, so this is
    /// where an internal failure's detail is logged, once.
    pub fn to_response(&self) -> worker::Result<Response> {
        if let AppError::Internal(detail) = self {
            let line = serde_json::json!({ "event": "error", "status": 500, "detail": detail });
            console_error!("{line}");
        }
        let mut response = json_response(self.status(), &self.body())?;
        if *self == AppError::InvalidApiKey {
            // RFC 6750: tells the client which credentials the route takes.
            response.headers_mut().set("www-authenticate", "Bearer")?;
        }
        Ok(response)
    }
}

/// A JSON response with the given status and an already-serialised body.
pub fn json_response(status: u16, body: &str) -> worker::Result<Response> {
    let mut response = Response::ok(body)?.with_status(status);
    response
        .headers_mut()
        .set("content-type", "application/json")?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_match_the_http_meaning() {
        assert_eq!(AppError::BadRequest("x".into()).status(), 400);
        assert_eq!(AppError::Unauthorized.status(), 401);
        assert_eq!(AppError::InvalidApiKey.status(), 401);
        assert_eq!(AppError::ConversationNotFound.status(), 404);
        assert_eq!(AppError::Forbidden("x".into()).status(), 403);
        assert_eq!(AppError::RequestTimeout { limit_secs: 1 }.status(), 408);
        assert_eq!(AppError::PayloadTooLarge { limit_bytes: 1 }.status(), 413);
        assert_eq!(AppError::UnsupportedMediaType.status(), 415);
        assert_eq!(AppError::UpstreamInvalid("x").status(), 502);
        assert_eq!(AppError::MissingSetting("LAYERCODE_API_KEY").status(), 500);
        assert_eq!(AppError::UpstreamUnreachable.status(), 502);
        assert_eq!(AppError::UpstreamTimeout.status(), 504);
        let upstream = |status| AppError::UpstreamStatus {
            status,
            message: String::new(),
        };
        assert_eq!(upstream(402).status(), 402);
        assert_eq!(upstream(503).status(), 503);
        assert_eq!(upstream(302).status(), 502);
    }

    #[test]
    fn bodies_are_json_with_an_error_field() {
        let body = AppError::MissingSetting("LAYERCODE_API_KEY").body();
        let value: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": "server is missing the setting LAYERCODE_API_KEY"})
        );
        assert_eq!(
            AppError::PayloadTooLarge { limit_bytes: 1024 }.message(),
            "request body is larger than 1024 bytes"
        );
        assert_eq!(
            AppError::RequestTimeout { limit_secs: 10 }.body(),
            r#"{"error":"the request body did not arrive within 10 seconds"}"#
        );
        assert_eq!(
            AppError::UnsupportedMediaType.body(),
            r#"{"error":"the body must be JSON (Content-Type: application/json)"}"#
        );
    }

    #[test]
    fn a_bad_api_key_says_nothing_about_the_conversation() {
        assert_eq!(
            AppError::InvalidApiKey.body(),
            r#"{"error":"invalid or missing API key"}"#
        );
    }

    #[test]
    fn internal_details_stay_out_of_the_body() {
        let body = AppError::Internal("sql: no such table messages".into()).body();
        assert_eq!(body, r#"{"error":"internal error"}"#);
    }
}

//! `POST /authorize`: turns the browser SDK's request into a Layercode `client_session_key`
//! using our `LAYERCODE_API_KEY`, which never leaves the server. CORS by allow-list.
//!
//! Only an allow-list of fields is forwarded. `config` (which would let any page rewrite the
//! agent's pipeline) and `custom_headers` (which would let it set the webhook's headers) are
//! dropped: they belong to the server, never to the browser.

use std::time::Duration;

use serde_json::{Map, Value};
use worker::{Env, Fetch, Headers, Method, Request, RequestInit, Response};

use crate::body;
use crate::config::{AllowedOrigins, Config, LAYERCODE_API_KEY};
use crate::deadline::within;
use crate::error::{json_response, AppError};

/// Browser requests are tiny; anything bigger is refused.
pub const MAX_AUTHORIZE_BODY_BYTES: usize = 64 * 1024;
/// How long Layercode may take to mint a key before we answer 504.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// The fields a browser may set, and the JSON type each must have.
const FORWARDED_FIELDS: [(&str, FieldType); 5] = [
    ("agent_id", FieldType::String),
    ("conversation_id", FieldType::String),
    ("sdk_version", FieldType::String),
    ("metadata", FieldType::Object),
    ("custom_metadata", FieldType::Object),
];

#[derive(Clone, Copy)]
enum FieldType {
    String,
    Object,
}

/// Handles `POST /authorize`; every answer, error or not, carries the CORS headers.
pub async fn handle(mut req: Request, env: Env) -> worker::Result<Response> {
    let config = Config::from_env(&env);
    let origin = req.headers().get("origin").ok().flatten();
    let response = match authorize(&mut req, &config).await {
        Ok(response) => response,
        Err(error) => error.to_response()?,
    };
    with_cors(response, origin.as_deref(), &config.allowed_origins)
}

/// Handles the CORS preflight `OPTIONS /authorize`.
pub fn preflight(req: &Request, env: &Env) -> worker::Result<Response> {
    let config = Config::from_env(env);
    let origin = req.headers().get("origin").ok().flatten();
    let Some(origin) = origin else {
        return Ok(Response::empty()?.with_status(204));
    };
    let Some(allowed) = config.allowed_origins.allow(&origin) else {
        let forbidden = AppError::Forbidden("origin not allowed".to_string()).to_response()?;
        return with_cors(forbidden, None, &config.allowed_origins);
    };
    let mut response = Response::empty()?.with_status(204);
    let headers = response.headers_mut();
    headers.set("access-control-allow-origin", &allowed)?;
    headers.set("access-control-allow-methods", "POST, OPTIONS")?;
    // Authorization: the SDK's authorizeSessionRequest hook may add the app's own auth header.
    headers.set(
        "access-control-allow-headers",
        "Content-Type, Authorization",
    )?;
    headers.set("access-control-max-age", "600")?;
    headers.set("vary", "Origin")?;
    Ok(response)
}

async fn authorize(req: &mut Request, config: &Config) -> Result<Response, AppError> {
    let api_key = config
        .layercode_api_key
        .as_deref()
        .ok_or(AppError::MissingSetting(LAYERCODE_API_KEY))?;
    let raw = body::read_limited(req, MAX_AUTHORIZE_BODY_BYTES).await?;
    // This is where an app authenticates its user (session cookie, JWT…) before minting a key.
    let forwarded = upstream_body(&raw, config.layercode_agent_id.as_deref())?;
    let url = format!(
        "{}/v1/agents/web/authorize_session",
        config.layercode_api_base_url
    );
    let mut upstream = call_upstream(&url, api_key, &forwarded.to_string()).await?;
    let status = upstream.status_code();
    let text = upstream
        .text()
        .await
        .map_err(|_| AppError::UpstreamUnreachable)?;
    if (200..300).contains(&status) {
        // Unchanged: the SDK needs client_session_key, conversation_id and config as sent.
        return json_response(status, &text).map_err(|e| AppError::Internal(e.to_string()));
    }
    Err(AppError::UpstreamStatus {
        status,
        message: upstream_error_message(status, &text, api_key),
    })
}

/// Validates the browser's JSON and builds the body sent to Layercode: allow-listed fields
/// only, with the agent pinned when `LAYERCODE_AGENT_ID` is set.
pub fn upstream_body(raw: &[u8], pinned_agent: Option<&str>) -> Result<Value, AppError> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")))?;
    let Value::Object(input) = value else {
        return Err(AppError::BadRequest(
            "the body must be a JSON object".to_string(),
        ));
    };
    let mut out = Map::new();
    for (name, kind) in FORWARDED_FIELDS {
        match (input.get(name), kind) {
            (None | Some(Value::Null), _) => {}
            (Some(v @ Value::String(_)), FieldType::String)
            | (Some(v @ Value::Object(_)), FieldType::Object) => {
                out.insert(name.to_string(), v.clone());
            }
            (Some(_), FieldType::String) => {
                return Err(AppError::BadRequest(format!("`{name}` must be a string")))
            }
            (Some(_), FieldType::Object) => {
                return Err(AppError::BadRequest(format!("`{name}` must be an object")))
            }
        }
    }
    let requested = out
        .get("agent_id")
        .and_then(Value::as_str)
        .map(str::to_string);
    match (pinned_agent, requested) {
        (Some(pinned), Some(requested)) if requested != pinned => {
            return Err(AppError::Forbidden(
                "this server does not authorize sessions for that agent_id".to_string(),
            ))
        }
        (Some(pinned), _) => {
            out.insert("agent_id".to_string(), Value::String(pinned.to_string()));
        }
        (None, Some(requested)) if !requested.trim().is_empty() => {}
        (None, _) => return Err(AppError::BadRequest("`agent_id` is required".to_string())),
    }
    Ok(Value::Object(out))
}

async fn call_upstream(url: &str, api_key: &str, body: &str) -> Result<Response, AppError> {
    let headers = Headers::new();
    let internal = |e: worker::Error| AppError::Internal(e.to_string());
    headers
        .set("authorization", &format!("Bearer {api_key}"))
        .map_err(internal)?;
    headers
        .set("content-type", "application/json")
        .map_err(internal)?;
    // Compression buys nothing for a small JSON answer, and a body that merely claims to be
    // gzip is one more way for the call to fail.
    headers
        .set("accept-encoding", "identity")
        .map_err(internal)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let request = Request::new_with_init(url, &init).map_err(internal)?;
    let fetch = Fetch::Request(request);
    let outcome = match within(UPSTREAM_TIMEOUT, fetch.send()).await {
        Some(Ok(response)) => Ok(response),
        Some(Err(_)) => Err(AppError::UpstreamUnreachable),
        None => Err(AppError::UpstreamTimeout),
    };
    outcome
}

/// Layercode's `{"error": "..."}` message, or a generic one; never containing the API key.
pub fn upstream_error_message(status: u16, body: &str, api_key: &str) -> String {
    let message = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| match v.get("error") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .unwrap_or_else(|| format!("Layercode answered with status {status}"));
    let message: String = message.chars().take(300).collect();
    if api_key.is_empty() {
        message
    } else {
        message.replace(api_key, "[redacted]")
    }
}

fn with_cors(
    mut response: Response,
    origin: Option<&str>,
    allowed: &AllowedOrigins,
) -> worker::Result<Response> {
    let headers = response.headers_mut();
    // Answers differ per origin, so caches must key on it.
    headers.set("vary", "Origin")?;
    if let Some(allow) = origin.and_then(|o| allowed.allow(o)) {
        headers.set("access-control-allow-origin", &allow)?;
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value, pinned: Option<&str>) -> Result<Value, AppError> {
        upstream_body(value.to_string().as_bytes(), pinned)
    }

    #[test]
    fn only_allow_listed_fields_are_forwarded() {
        let forwarded = body(
            json!({
                "agent_id": "ag_1", "metadata": {"user": "u1"}, "sdk_version": "2.7.0",
                "conversation_id": "lc_conv_1", "custom_metadata": {"plan": "pro"},
                "config": {"plugins": []}, "custom_headers": {"x-admin": "1"}, "extra": 1
            }),
            None,
        )
        .unwrap();
        assert_eq!(
            forwarded,
            json!({
                "agent_id": "ag_1", "metadata": {"user": "u1"}, "sdk_version": "2.7.0",
                "conversation_id": "lc_conv_1", "custom_metadata": {"plan": "pro"}
            })
        );
    }

    #[test]
    fn null_conversation_id_is_dropped() {
        let forwarded = body(json!({"agent_id": "a", "conversation_id": null}), None).unwrap();
        assert_eq!(forwarded, json!({"agent_id": "a"}));
    }

    #[test]
    fn pinned_agent_fills_in_and_refuses_others() {
        assert_eq!(
            body(json!({"metadata": {}}), Some("ag_pinned")).unwrap(),
            json!({"agent_id": "ag_pinned", "metadata": {}})
        );
        assert_eq!(
            body(json!({"agent_id": "ag_pinned"}), Some("ag_pinned")).unwrap(),
            json!({"agent_id": "ag_pinned"})
        );
        assert_eq!(
            body(json!({"agent_id": "ag_other"}), Some("ag_pinned"))
                .unwrap_err()
                .status(),
            403
        );
    }

    #[test]
    fn agent_id_is_required_without_a_pin() {
        let error = body(json!({"metadata": {}}), None).unwrap_err();
        assert_eq!(
            error,
            AppError::BadRequest("`agent_id` is required".to_string())
        );
        assert_eq!(
            body(json!({"agent_id": " "}), None).unwrap_err().status(),
            400
        );
    }

    #[test]
    fn wrong_types_and_bad_json_are_400() {
        assert_eq!(
            body(json!({"agent_id": 5}), None).unwrap_err(),
            AppError::BadRequest("`agent_id` must be a string".to_string())
        );
        assert_eq!(
            body(json!({"agent_id": "a", "metadata": "x"}), None).unwrap_err(),
            AppError::BadRequest("`metadata` must be an object".to_string())
        );
        assert_eq!(body(json!([1]), None).unwrap_err().status(), 400);
        assert_eq!(upstream_body(b"{", None).unwrap_err().status(), 400);
    }

    #[test]
    fn upstream_errors_keep_their_message_without_the_key() {
        assert_eq!(
            upstream_error_message(402, r#"{"error":"Insufficient balance"}"#, "sk_1"),
            "Insufficient balance"
        );
        assert_eq!(
            upstream_error_message(400, r#"{"error":"bad token sk_1"}"#, "sk_1"),
            "bad token [redacted]"
        );
        assert_eq!(
            upstream_error_message(500, "<html>", "sk_1"),
            "Layercode answered with status 500"
        );
    }
}

//! `POST /authorize`: turns the browser SDK's request into a Layercode `client_session_key`
//! using our `LAYERCODE_API_KEY`, which never leaves the server. CORS by allow-list.
//!
//! Only an allow-list of fields is forwarded. `config` (which would let any page rewrite the
//! agent's pipeline) and `custom_headers` (which would let it set the webhook's headers) are
//! dropped: they belong to the server, never to the browser.
//!
//! The preflight alone guards nothing (a `text/plain` POST needs none), so the POST itself is
//! refused from an origin that is not allowed and must declare a JSON body. Layercode's answer
//! is read within one deadline, a redirect is never followed (it would carry the key), and only
//! a JSON object, with our key redacted from it, reaches the browser.
//!
//! A conversation is resumed only for the caller that started it (`ownership`): a request
//! naming a `conversation_id` without that proof is refused before Layercode is called.

use std::time::Duration;

use serde_json::{Map, Value};
use worker::{AbortController, AbortSignal, Env, Fetch, Request, Response};

use crate::config::{AllowedOrigins, Config, LAYERCODE_API_KEY};
use crate::deadline::within;
use crate::edge::body;
use crate::edge::conversations_api::MAX_ID_BYTES;
use crate::edge::ownership::{self, Caller};
use crate::error::{json_response, AppError};
use crate::redact::redact;
use crate::upstream::json_post;

/// Browser requests are tiny; anything bigger is refused.
pub const MAX_AUTHORIZE_BODY_BYTES: usize = 64 * 1024;
/// How long the whole exchange with Layercode (headers and body) may take before we answer 504.
pub const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(10);
/// Layercode's error messages are relayed to the browser cut to this length.
const MAX_UPSTREAM_MESSAGE_CHARS: usize = 300;
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

/// Handles `POST /authorize`. Every answer, error or not, carries the CORS headers, so this
/// route turns its own errors into responses (with [`AppError::to_response`], like the router).
pub async fn handle(mut req: Request, env: Env) -> Result<Response, AppError> {
    let config = Config::from_env(&env);
    let origin = req.headers().get("origin").ok().flatten();
    let response = authorize(&mut req, &env, &config, origin.as_deref())
        .await
        .or_else(|error| error.to_response())?;
    Ok(with_cors(
        response,
        origin.as_deref(),
        &config.allowed_origins,
    )?)
}

/// Handles the CORS preflight `OPTIONS /authorize`.
pub fn preflight(req: &Request, env: &Env) -> Result<Response, AppError> {
    let config = Config::from_env(env);
    let origin = req.headers().get("origin").ok().flatten();
    let Some(origin) = origin else {
        return Ok(Response::empty()?.with_status(204));
    };
    let Some(allowed) = config.allowed_origins.allow(&origin) else {
        let forbidden = AppError::Forbidden("origin not allowed".to_string()).to_response()?;
        return Ok(with_cors(forbidden, None, &config.allowed_origins)?);
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

async fn authorize(
    req: &mut Request,
    env: &Env,
    config: &Config,
    origin: Option<&str>,
) -> Result<Response, AppError> {
    // A `text/plain` POST needs no preflight, so the preflight alone guards nothing.
    let url = req.inner().url();
    if !origin_allowed(origin, origin_of(&url), &config.allowed_origins) {
        return Err(AppError::Forbidden("origin not allowed".to_string()));
    }
    let content_type = req.headers().get("content-type").ok().flatten();
    if !is_json_content_type(content_type.as_deref()) {
        return Err(AppError::UnsupportedMediaType);
    }
    let api_key = config
        .layercode_api_key
        .as_deref()
        .ok_or(AppError::MissingSetting(LAYERCODE_API_KEY))?;
    let raw = body::read_limited(req, MAX_AUTHORIZE_BODY_BYTES).await?;
    let forwarded = upstream_body(&raw, config.layercode_agent_id.as_deref())?;
    // Who is calling (`ownership::caller` is where a deployment's own login plugs in), and
    // whether they may resume the conversation they name: decided before Layercode is called.
    let caller = ownership::caller(req, config)?;
    let resumed = forwarded.get("conversation_id").and_then(Value::as_str);
    if let Some(conversation_id) = resumed {
        ownership::check_resume(req, env, config, &caller, conversation_id).await?;
    }
    let url = format!(
        "{}/v1/agents/web/authorize_session",
        config.layercode_api_base_url
    );
    let answer = exchange(&url, api_key, &forwarded.to_string()).await?;
    let body = browser_body(&answer, api_key)?;
    let mut response = json_response(answer.status, &body)?;
    if let Some(cookie) = grant(env, config, &caller, &body, resumed.is_none()).await? {
        response.headers_mut().append("set-cookie", &cookie)?;
    }
    Ok(response)
}

/// Ties the conversation of a granted session to its caller (see `ownership::grant`); the
/// cookie to set, if any.
async fn grant(
    env: &Env,
    config: &Config,
    caller: &Caller,
    body: &str,
    new: bool,
) -> Result<Option<String>, AppError> {
    let answer: Value = serde_json::from_slice(body.as_bytes()).unwrap_or_default();
    match answer["conversation_id"].as_str() {
        Some(conversation_id) if !conversation_id.is_empty() => {
            ownership::grant(env, config, caller, conversation_id, new).await
        }
        // Without an id the SDK cannot resume anything: there is nothing to prove.
        _ => Ok(None),
    }
}

/// Whether a request with this `Origin` header may be served: none (not a browser), the
/// worker's own origin (a same-origin page sends `Origin` on a POST too), or an allowed one.
pub fn origin_allowed(
    origin: Option<&str>,
    own_origin: Option<&str>,
    allowed: &AllowedOrigins,
) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    own_origin.is_some_and(|own| own.eq_ignore_ascii_case(origin))
        || allowed.allow(origin).is_some()
}

/// The origin (`scheme://host[:port]`) of an already-serialised WHATWG URL, as the runtime
/// gives it (scheme and host lower case, default port left out, like an `Origin` header).
/// Parsing it with the `url` crate would add ~80 KB of IDNA tables to the gzipped wasm.
pub fn origin_of(url: &str) -> Option<&str> {
    let authority_start = url.find("://")? + 3;
    let authority_len = url
        .get(authority_start..)?
        .find(['/', '?', '#'])
        .unwrap_or(url.len() - authority_start);
    let origin = url.get(..authority_start + authority_len)?;
    // With credentials in it, the authority is not an origin.
    (authority_len > 0 && !origin.contains('@')).then_some(origin)
}

/// `application/json` (parameters such as `; charset=utf-8` allowed) or another
/// `application/…+json` type.
pub fn is_json_content_type(content_type: Option<&str>) -> bool {
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(|media_type| media_type.trim().to_ascii_lowercase())
        .unwrap_or_default();
    media_type == "application/json"
        || (media_type.starts_with("application/") && media_type.ends_with("+json"))
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
    // A conversation id names a Durable Object when its owner is checked: Layercode's are short.
    if out
        .get("conversation_id")
        .and_then(Value::as_str)
        .is_some_and(|id| id.len() > MAX_ID_BYTES)
    {
        return Err(AppError::BadRequest(format!(
            "`conversation_id` is longer than {MAX_ID_BYTES} bytes"
        )));
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

/// Layercode's answer, read whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamAnswer {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: String,
}

/// Calls Layercode and reads its whole answer, headers and body within one deadline (504
/// past it).
async fn exchange(url: &str, api_key: &str, body: &str) -> Result<UpstreamAnswer, AppError> {
    let request = json_post(
        url,
        Some(("authorization", &format!("Bearer {api_key}"))),
        body,
    )?;
    let controller = AbortController::default();
    let answer = within(UPSTREAM_TIMEOUT, read_answer(request, &controller.signal())).await;
    match answer {
        Some(answer) => answer,
        None => {
            // Close the connection still waiting on headers or body.
            controller.abort();
            Err(AppError::UpstreamTimeout)
        }
    }
}

async fn read_answer(request: Request, signal: &AbortSignal) -> Result<UpstreamAnswer, AppError> {
    let mut response = Fetch::Request(request)
        .send_with_signal(signal)
        .await
        .map_err(|_| AppError::UpstreamUnreachable)?;
    let content_type = response.headers().get("content-type").ok().flatten();
    let body = response
        .text()
        .await
        .map_err(|_| AppError::UpstreamUnreachable)?;
    Ok(UpstreamAnswer {
        status: response.status_code(),
        content_type,
        body,
    })
}

/// What the browser gets for Layercode's answer: a 2xx JSON object with the API key redacted,
/// or an error. A redirect, a 2xx that is not JSON and one without a `client_session_key` are
/// 502: none of them is a session.
pub fn browser_body(answer: &UpstreamAnswer, api_key: &str) -> Result<String, AppError> {
    match answer.status {
        200..=299 => success_body(answer, api_key),
        300..=399 => Err(AppError::UpstreamInvalid(
            "Layercode answered with a redirect, which is not followed",
        )),
        status => Err(AppError::UpstreamStatus {
            status,
            message: upstream_error_message(status, &answer.body, api_key),
        }),
    }
}

fn success_body(answer: &UpstreamAnswer, api_key: &str) -> Result<String, AppError> {
    let not_json = AppError::UpstreamInvalid("Layercode answered with a body that is not JSON");
    if !is_json_content_type(answer.content_type.as_deref()) {
        return Err(not_json);
    }
    // `from_slice`, not `from_str` (here and below): the wasm then holds one copy of serde_json's
    // parser, not a second one for `StrRead` (about 2 KB gzipped).
    let value = match serde_json::from_slice::<Value>(answer.body.as_bytes()) {
        Ok(value @ Value::Object(_)) => value,
        _ => return Err(not_json),
    };
    // A 2xx the browser SDK cannot start a session with is Layercode's failure, not a success.
    if value["client_session_key"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(AppError::UpstreamInvalid(
            "Layercode answered without a client_session_key",
        ));
    }
    let redacted = redact_strings(&value, api_key);
    if redacted != value {
        return Ok(redacted.to_string());
    }
    // Unchanged: the SDK needs client_session_key, conversation_id and config as sent.
    Ok(answer.body.clone())
}

/// `value` with the key redacted from every string and object key, however it was escaped.
/// serde_json's nesting limit bounds the recursion.
fn redact_strings(value: &Value, api_key: &str) -> Value {
    let clean = |text: &str| redact(text, &[api_key], usize::MAX);
    match value {
        Value::String(text) => Value::String(clean(text)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|item| redact_strings(item, api_key))
                .collect(),
        ),
        Value::Object(fields) => {
            let mut clean_fields = serde_json::Map::new();
            for (name, field) in fields {
                clean_fields.insert(clean(name), redact_strings(field, api_key));
            }
            Value::Object(clean_fields)
        }
        other => other.clone(),
    }
}

/// Layercode's `{"error": "..."}` message, or a generic one; never containing the API key.
pub fn upstream_error_message(status: u16, body: &str, api_key: &str) -> String {
    let message = serde_json::from_slice::<Value>(body.as_bytes())
        .ok()
        .and_then(|v| match v.get("error") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Object(o)) => o.get("message").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .unwrap_or_else(|| format!("Layercode answered with status {status}"));
    redact(&message, &[api_key], MAX_UPSTREAM_MESSAGE_CHARS)
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
    fn a_conversation_id_longer_than_any_real_one_is_400() {
        let long = "c".repeat(257);
        assert_eq!(
            body(json!({"agent_id": "a", "conversation_id": long}), None).unwrap_err(),
            AppError::BadRequest("`conversation_id` is longer than 256 bytes".to_string())
        );
        let longest = "c".repeat(256);
        assert!(body(json!({"agent_id": "a", "conversation_id": longest}), None).is_ok());
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

    #[test]
    fn a_key_straddling_the_message_cut_is_redacted_whole() {
        let key = "sk_live_0123456789";
        let body = json!({ "error": format!("{}{key} is invalid", "x".repeat(295)) });
        assert_eq!(
            upstream_error_message(401, &body.to_string(), key),
            format!("{}[reda", "x".repeat(295))
        );
    }

    #[test]
    fn origins_are_allowed_when_absent_our_own_or_listed() {
        let list = AllowedOrigins::List(vec!["https://app.example".to_string()]);
        let own = Some("https://worker.example");
        let cases = [
            (None, &list, true),
            (Some("https://worker.example"), &list, true),
            (Some("HTTPS://WORKER.EXAMPLE"), &list, true),
            (Some("https://app.example"), &list, true),
            (Some("https://evil.example"), &list, false),
            (Some("null"), &list, false),
            (Some(""), &list, false),
            (Some("https://evil.example"), &AllowedOrigins::None, false),
            (Some("https://worker.example"), &AllowedOrigins::None, true),
            (Some("https://evil.example"), &AllowedOrigins::Any, true),
        ];
        for (origin, allowed, expected) in cases {
            assert_eq!(
                origin_allowed(origin, own, allowed),
                expected,
                "{origin:?} with {allowed:?}"
            );
        }
        assert!(!origin_allowed(Some(""), None, &AllowedOrigins::None));
    }

    #[test]
    fn the_origin_of_a_url_is_its_scheme_host_and_port() {
        let cases = [
            (
                "https://worker.example/authorize",
                Some("https://worker.example"),
            ),
            (
                "http://127.0.0.1:8787/api/authorize?x=1",
                Some("http://127.0.0.1:8787"),
            ),
            ("https://worker.example", Some("https://worker.example")),
            ("https://worker.example?q", Some("https://worker.example")),
            ("https://user:pw@worker.example/", None),
            ("https:///path", None),
            ("/authorize", None),
            ("", None),
        ];
        for (url, origin) in cases {
            assert_eq!(origin_of(url), origin, "{url}");
        }
    }

    #[test]
    fn only_json_content_types_are_json() {
        let cases = [
            (Some("application/json"), true),
            (Some("application/json; charset=utf-8"), true),
            (Some(" Application/JSON ;charset=UTF-8"), true),
            (Some("application/vnd.api+json"), true),
            (Some("text/plain"), false),
            (Some("text/plain; application/json"), false),
            (Some("application/x-www-form-urlencoded"), false),
            (Some("multipart/form-data; boundary=x"), false),
            (Some("text/json+html"), false),
            (Some(""), false),
            (None, false),
        ];
        for (content_type, expected) in cases {
            assert_eq!(
                is_json_content_type(content_type),
                expected,
                "{content_type:?}"
            );
        }
    }

    fn answer(status: u16, content_type: &str, body: &str) -> UpstreamAnswer {
        UpstreamAnswer {
            status,
            content_type: Some(content_type.to_string()),
            body: body.to_string(),
        }
    }

    const SESSION: &str = r#"{"client_session_key":"lc_sess","conversation_id":"c","config":{}}"#;

    #[test]
    fn a_json_success_passes_through_unchanged() {
        let ok = answer(200, "application/json; charset=utf-8", SESSION);
        assert_eq!(browser_body(&ok, "sk_1").unwrap(), SESSION);
    }

    #[test]
    fn redirects_and_successes_that_are_not_sessions_are_502() {
        let not_json = "Layercode answered with a body that is not JSON";
        let cases = [
            (
                answer(302, "text/html", ""),
                "Layercode answered with a redirect, which is not followed",
            ),
            (
                answer(307, "application/json", SESSION),
                "Layercode answered with a redirect, which is not followed",
            ),
            (answer(200, "text/html", "<html>Sign in</html>"), not_json),
            (answer(200, "text/html", SESSION), not_json),
            (
                answer(200, "application/json", "<html>Sign in</html>"),
                not_json,
            ),
            (answer(200, "application/json", ""), not_json),
            (answer(200, "application/json", "[1]"), not_json),
            (answer(201, "application/json", "\"key\""), not_json),
            // JSON, but no session in it (one example backend answers errors with a 200).
            (
                answer(
                    200,
                    "application/json",
                    r#"{"error":"insufficient balance"}"#,
                ),
                "Layercode answered without a client_session_key",
            ),
            (
                answer(200, "application/json", r#"{"client_session_key":""}"#),
                "Layercode answered without a client_session_key",
            ),
            (
                answer(200, "application/json", r#"{"client_session_key":7}"#),
                "Layercode answered without a client_session_key",
            ),
            (
                UpstreamAnswer {
                    content_type: None,
                    ..answer(200, "", SESSION)
                },
                not_json,
            ),
        ];
        for (upstream, message) in cases {
            let error = browser_body(&upstream, "sk_1").unwrap_err();
            assert_eq!(error.status(), 502, "{upstream:?}");
            assert_eq!(error.message(), message, "{upstream:?}");
        }
    }

    #[test]
    fn the_key_is_redacted_from_a_success_however_it_is_escaped() {
        let cases = [
            r#"{"client_session_key":"lc_sess","debug":"Bearer sk_1"}"#,
            r#"{"client_session_key":"lc_sess","debug":"Bearer \u0073k_1"}"#,
            r#"{"client_session_key":"lc_sess","debug":["Bearer sk_1"]}"#,
        ];
        for body in cases {
            let redacted = browser_body(&answer(200, "application/json", body), "sk_1").unwrap();
            assert!(!redacted.contains("sk_1"), "{redacted}");
            let value: Value = serde_json::from_str(&redacted).unwrap();
            assert_eq!(value["client_session_key"], "lc_sess");
            assert!(redacted.contains("Bearer [redacted]"), "{redacted}");
        }
        let key_as_name = r#"{"client_session_key":"lc_sess","sk_1":true}"#;
        let redacted = browser_body(&answer(200, "application/json", key_as_name), "sk_1").unwrap();
        assert_eq!(
            redacted,
            r#"{"[redacted]":true,"client_session_key":"lc_sess"}"#
        );
    }

    #[test]
    fn error_statuses_keep_their_status_and_redacted_message() {
        let error = browser_body(
            &answer(
                402,
                "application/json",
                r#"{"error":"no balance for sk_1"}"#,
            ),
            "sk_1",
        )
        .unwrap_err();
        assert_eq!(
            error,
            AppError::UpstreamStatus {
                status: 402,
                message: "no balance for [redacted]".to_string()
            }
        );
    }
}

//! HTTP to the worker: the health check, signed webhook POSTs, and reading an SSE reply.
//!
//! Blocking I/O on the calling thread is enough: one turn is in flight at a time. ureq's
//! per-read timeout is the turn timeout, so a stream that goes silent fails instead of hanging,
//! and dropping a [`ReplyReader`] mid-body closes the connection, which is exactly how
//! Layercode signals barge-in to the backend.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use layercode_gemini_worker::{signature, sse::SseDecoder};
use serde_json::Value;
use ureq::http::Response;
use ureq::{Body, BodyReader};

/// Error bodies are short JSON; never read more than this of one.
const ERROR_BODY_LIMIT: u64 = 64 * 1024;

/// Why a request did not give us what we wanted. The `Display` text is what the user reads.
#[derive(Debug)]
pub enum ClientError {
    /// Connection refused, DNS failure, connect timeout.
    Unreachable { base: String, cause: String },
    /// 401: the secrets differ.
    Unauthorized,
    /// Any other non-200, with the `error` field of the body when there is one.
    Status { code: u16, message: String },
    /// Nothing arrived for the per-read timeout.
    Timeout(Duration),
    /// Anything else (a broken connection, a TLS error, a reply that is not SSE).
    Other(String),
}

impl ClientError {
    /// Errors that would fail every later request too, so the run stops.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ClientError::Unreachable { .. } | ClientError::Unauthorized
        )
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Unreachable { base, cause } => write!(
                f,
                "cannot reach the backend at {base}: is it running? start it with \
                 ./scripts/dev.sh ({cause})"
            ),
            ClientError::Unauthorized => write!(
                f,
                "the backend rejected the signature (401): the secret does not match the \
                 worker's LAYERCODE_WEBHOOK_SECRET"
            ),
            ClientError::Status { code, message } => write!(f, "HTTP {code}: {message}"),
            ClientError::Timeout(after) => write!(f, "no data within {} s", after.as_secs_f64()),
            ClientError::Other(message) => f.write_str(message),
        }
    }
}

/// A backend: where to send webhooks and how to sign them.
pub struct Backend {
    agent: ureq::Agent,
    /// `http(s)://host[:port]`, for `/health` and messages.
    pub base: String,
    /// Where webhooks go (`{base}/agent` unless the user gave a full webhook URL).
    pub agent_url: String,
    secret: String,
    /// The per-read timeout: how long any read, including a silent stream, may block.
    read_timeout: Duration,
}

impl Backend {
    /// `url` may be a base URL or the full webhook URL (`…/agent` or `…/api/agent`).
    pub fn new(url: &str, secret: String, read_timeout: Duration) -> Result<Backend, String> {
        let (base, agent_url) = split_url(url)?;
        let config = ureq::Agent::config_builder()
            // Non-200 answers carry the `{"error": …}` we want to show.
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_per_read(Some(read_timeout))
            .build();
        Ok(Backend {
            agent: config.into(),
            base,
            agent_url,
            secret,
            read_timeout,
        })
    }

    /// `GET {base}/health` as JSON (Ok(None) when it answered but not 200 JSON).
    pub fn health(&self) -> Result<Option<Value>, ClientError> {
        let url = format!("{}/health", self.base);
        let response = self.agent.get(&url).call().map_err(|e| self.classify(e))?;
        if response.status() != 200 {
            return Ok(None);
        }
        let text = read_limited(response)?;
        Ok(serde_json::from_str(&text).ok())
    }

    /// Signs and POSTs one webhook event; any 200 is returned, anything else is an error.
    fn post(&self, event: &Value) -> Result<Response<Body>, ClientError> {
        // Signed over exactly the bytes sent, with the current time.
        let body = serde_json::to_vec(event).map_err(|e| ClientError::Other(e.to_string()))?;
        let header = signature::sign(&self.secret, unix_secs(), &body);
        let response = self
            .agent
            .post(&self.agent_url)
            .header("content-type", "application/json")
            .header("layercode-signature", &header)
            .send(&body[..])
            .map_err(|e| self.classify(e))?;
        match response.status().as_u16() {
            200 => Ok(response),
            401 => Err(ClientError::Unauthorized),
            code => {
                let text = read_limited(response).unwrap_or_default();
                Err(ClientError::Status {
                    code,
                    message: error_message(&text),
                })
            }
        }
    }

    /// Sends a JSON-answered event (`session.end`) and returns the body.
    pub fn send(&self, event: &Value) -> Result<String, ClientError> {
        read_limited(self.post(event)?)
    }

    /// Sends `session.start` or `message` and opens the SSE reply.
    pub fn open_reply(&self, event: &Value) -> Result<ReplyReader, ClientError> {
        let response = self.post(event)?;
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        if !content_type.starts_with("text/event-stream") {
            let text = read_limited(response).unwrap_or_default();
            return Err(ClientError::Other(format!(
                "expected a text/event-stream reply, got {content_type:?}: {}",
                text.chars().take(200).collect::<String>()
            )));
        }
        Ok(ReplyReader {
            reader: response.into_body().into_reader(),
            decoder: SseDecoder::new(),
            ready: VecDeque::new(),
            done: false,
            read_timeout: self.read_timeout,
        })
    }

    /// Sorts a ureq error into what the user should be told.
    fn classify(&self, error: ureq::Error) -> ClientError {
        let unreachable_io = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::ConnectionRefused
                    | io::ErrorKind::AddrNotAvailable
                    | io::ErrorKind::HostUnreachable
                    | io::ErrorKind::NetworkUnreachable
            )
            // A failed DNS lookup has no ErrorKind of its own; std's message is fixed.
            || e.to_string().contains("failed to lookup address")
        };
        let unreachable = match &error {
            ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => true,
            ureq::Error::Io(e) => unreachable_io(e),
            _ => false,
        };
        match error {
            e if unreachable => ClientError::Unreachable {
                base: self.base.clone(),
                cause: e.to_string(),
            },
            ureq::Error::Timeout(_) => ClientError::Timeout(self.read_timeout),
            other => ClientError::Other(other.to_string()),
        }
    }
}

/// The `error` field of a JSON error body, else the body itself (shortened).
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")) {
        Some(Value::String(message)) => message.clone(),
        Some(other) => other.to_string(),
        None if body.trim().is_empty() => "(empty body)".to_string(),
        None => body.trim().chars().take(300).collect(),
    }
}

fn read_limited(response: Response<Body>) -> Result<String, ClientError> {
    response
        .into_body()
        .into_with_config()
        .limit(ERROR_BODY_LIMIT)
        .read_to_string()
        .map_err(|e| ClientError::Other(e.to_string()))
}

/// Splits a user-given URL into the base and the webhook URL.
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let url = url.trim().trim_end_matches('/');
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(format!(
            "--url must start with http:// or https://, got {url:?}"
        ));
    };
    if !matches!(scheme, "http" | "https") || rest.is_empty() {
        return Err(format!(
            "--url must start with http:// or https://, got {url:?}"
        ));
    }
    for webhook_path in ["/api/agent", "/agent"] {
        if let Some(base) = url.strip_suffix(webhook_path) {
            if base.len() > scheme.len() + 3 {
                return Ok((base.to_string(), url.to_string()));
            }
        }
    }
    Ok((url.to_string(), format!("{url}/agent")))
}

/// One event of the reply, as the simulator cares about it.
#[derive(Debug, PartialEq)]
pub enum ReplyEvent {
    Tts {
        content: String,
        turn_id: Option<String>,
    },
    End {
        turn_id: Option<String>,
    },
    /// `response.data`: JSON for the browser app (tool status lines, `end_call`).
    Data {
        content: Value,
        turn_id: Option<String>,
    },
    /// Another well-formed event (something new).
    Other {
        kind: String,
    },
    /// A data payload that is not a JSON object with a string `type`.
    Invalid(String),
}

impl ReplyEvent {
    fn parse(payload: &str) -> ReplyEvent {
        let Ok(Value::Object(event)) = serde_json::from_str::<Value>(payload) else {
            return ReplyEvent::Invalid(payload.to_string());
        };
        let text = |key: &str| event.get(key).and_then(Value::as_str).map(str::to_string);
        match (text("type").as_deref(), text("content")) {
            (Some("response.tts"), Some(content)) => ReplyEvent::Tts {
                content,
                turn_id: text("turn_id"),
            },
            (Some("response.end"), _) => ReplyEvent::End {
                turn_id: text("turn_id"),
            },
            (Some("response.data"), _) => ReplyEvent::Data {
                content: event.get("content").cloned().unwrap_or_default(),
                turn_id: text("turn_id"),
            },
            (Some(kind), _) if kind != "response.tts" => ReplyEvent::Other {
                kind: kind.to_string(),
            },
            _ => ReplyEvent::Invalid(payload.to_string()),
        }
    }
}

/// An open SSE reply. Dropping it closes the connection.
pub struct ReplyReader {
    reader: BodyReader<'static>,
    decoder: SseDecoder,
    /// Decoded payloads not yet handed out (one read can complete several events).
    ready: VecDeque<String>,
    done: bool,
    read_timeout: Duration,
}

impl ReplyReader {
    /// The next event; Ok(None) at the end of the body. Blocks until one arrives or the
    /// per-read timeout passes (then `ClientError::Timeout`).
    pub fn next_event(&mut self) -> Result<Option<ReplyEvent>, ClientError> {
        let mut buf = [0u8; 4096];
        loop {
            if let Some(payload) = self.ready.pop_front() {
                return Ok(Some(ReplyEvent::parse(&payload)));
            }
            if self.done {
                return Ok(None);
            }
            match self.reader.read(&mut buf) {
                Ok(0) => {
                    self.done = true;
                    // A last event without its blank line still counts.
                    if let Some(rest) = self.decoder.finish() {
                        let rest = rest.strip_prefix("data:").unwrap_or(&rest);
                        self.ready.push_back(rest.trim_start().to_string());
                    }
                }
                Ok(n) => self.ready.extend(self.decoder.push(&buf[..n])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    return Err(match ureq::Error::from(e) {
                        ureq::Error::Timeout(_) => ClientError::Timeout(self.read_timeout),
                        other => ClientError::Other(format!("the stream broke: {other}")),
                    })
                }
            }
        }
    }
}

/// Seconds since the Unix epoch (0 if the clock is before 1970, which only fails the signature).
pub fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let pair = |b: &str, a: &str| Ok((b.to_string(), a.to_string()));
        let local = "http://127.0.0.1:8787";
        assert_eq!(split_url(local), pair(local, "http://127.0.0.1:8787/agent"));
        assert_eq!(
            split_url("http://127.0.0.1:8787/"),
            pair(local, "http://127.0.0.1:8787/agent")
        );
        assert_eq!(
            split_url("http://127.0.0.1:8787/agent"),
            pair(local, "http://127.0.0.1:8787/agent")
        );
        assert_eq!(
            split_url("https://w.example.dev/api/agent/"),
            pair("https://w.example.dev", "https://w.example.dev/api/agent")
        );
        assert!(split_url("127.0.0.1:8787").is_err());
        assert!(split_url("ftp://x").is_err());
        assert!(split_url("http://").is_err());
    }

    #[test]
    fn reply_events() {
        assert_eq!(
            ReplyEvent::parse(r#"{"type":"response.tts","content":"Hi","turn_id":"t"}"#),
            ReplyEvent::Tts {
                content: "Hi".into(),
                turn_id: Some("t".into())
            }
        );
        assert_eq!(
            ReplyEvent::parse(r#"{"type":"response.end"}"#),
            ReplyEvent::End { turn_id: None }
        );
        assert_eq!(
            ReplyEvent::parse(r#"{"type":"response.data","content":{"a":1},"turn_id":"t"}"#),
            ReplyEvent::Data {
                content: serde_json::json!({"a": 1}),
                turn_id: Some("t".into())
            }
        );
        assert_eq!(
            ReplyEvent::parse(r#"{"type":"response.new"}"#),
            ReplyEvent::Other {
                kind: "response.new".into()
            }
        );
        for bad in ["[DONE]", r#"{"type":"response.tts"}"#, r#"{"content":"x"}"#] {
            assert_eq!(ReplyEvent::parse(bad), ReplyEvent::Invalid(bad.into()));
        }
    }

    #[test]
    fn error_messages() {
        assert_eq!(error_message(r#"{"error":"bad request"}"#), "bad request");
        assert_eq!(error_message(r#"{"error":{"code":1}}"#), r#"{"code":1}"#);
        assert_eq!(error_message(" oops \n"), "oops");
        assert_eq!(error_message(""), "(empty body)");
    }
}

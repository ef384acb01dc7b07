//! Google Gemini over `streamGenerateContent?alt=sse`: building a request that is always valid,
//! reading the streamed events (each one `GenerateContentResponse`), and classifying failures.
//!
//! Request building and event parsing are pure (tested natively); `send` and `EventReader`
//! are the thin runtime layer over the Workers fetch API. ("Chunk" is kept for what it means in
//! the Streams API and the SSE decoder: a piece of the body's bytes, cut wherever the network
//! cut it.)

use std::collections::VecDeque;

use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use std::cell::RefCell;
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;

use worker::{AbortSignal, ByteStream, Fetch, Response};

use crate::engine::{self, Failure, Finish, FunctionCall, ModelStep, OpenError, Piece, ToolStep};
use crate::history::{HistoryMessage, Role};
use crate::lossy_json::replace_lone_surrogates;
use crate::redact::redact;
use crate::sse::SseDecoder;
use crate::upstream::json_post;

/// Caps a spoken reply; the system prompt asks for far less.
const MAX_OUTPUT_TOKENS: u32 = 1024;
/// Stands in for the caller when the window starts with the agent (e.g. after a welcome message),
/// because Gemini requires the conversation to start with a user turn.
pub const CALL_STARTED_BRIDGE: &str = "(The caller joined the call.)";
/// Google's codes (`RESOURCE_EXHAUSTED`, `API_KEY_INVALID`) are far shorter than this.
const MAX_CODE_CHARS: usize = 64;

/// The streaming endpoint for a model.
pub fn stream_url(base_url: &str, model: &str) -> String {
    format!("{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse")
}

/// The JSON request body: system prompt, the conversation, and voice-friendly generation options.
pub fn request_body(system_prompt: &str, model: &str, history: &[HistoryMessage]) -> Value {
    let mut generation_config = json!({ "maxOutputTokens": MAX_OUTPUT_TOKENS });
    if let Some(thinking) = thinking_config(model) {
        generation_config["thinkingConfig"] = thinking;
    }
    json!({
        "systemInstruction": { "parts": [{ "text": system_prompt }] },
        "contents": build_contents(history),
        "generationConfig": generation_config,
    })
}

/// [`request_body`] plus the tools the model may call (`tools[].functionDeclarations`, each
/// `{name, description, parametersJsonSchema}`) and `toolConfig` mode `AUTO`.
pub fn request_body_with_tools(
    system_prompt: &str,
    model: &str,
    history: &[HistoryMessage],
    declarations: Vec<Value>,
) -> Value {
    let mut body = request_body(system_prompt, model, history);
    body["tools"] = json!([{ "functionDeclarations": declarations }]);
    body["toolConfig"] = json!({ "functionCallingConfig": { "mode": "AUTO" } });
    body
}

/// The request after tool rounds: `base` with each round appended as the model's parts
/// verbatim, then one `user` content holding one `functionResponse` per call, in order (the id
/// only where the model gave one). `calling_allowed` false sets mode `NONE`, so the model must
/// answer in words.
pub fn follow_up_body(base: &Value, steps: &[ToolStep], calling_allowed: bool) -> Value {
    let mut body = base.clone();
    if let Some(contents) = body["contents"].as_array_mut() {
        for step in steps {
            contents.push(json!({ "role": "model", "parts": step.model_parts }));
            let responses: Vec<Value> = step
                .responses
                .iter()
                .map(|r| {
                    let mut answer = json!({ "name": r.name, "response": r.response });
                    if let Some(id) = &r.id {
                        answer["id"] = json!(id);
                    }
                    json!({ "functionResponse": answer })
                })
                .collect();
            contents.push(json!({ "role": "user", "parts": responses }));
        }
    }
    if !calling_allowed {
        body["toolConfig"] = json!({ "functionCallingConfig": { "mode": "NONE" } });
    }
    body
}

/// Thinking costs seconds before the first word, so it is off (2.5) or minimal (3.x).
/// Unknown families get no `thinkingConfig`: a wrong field is a 400.
pub fn thinking_config(model: &str) -> Option<Value> {
    let model = model.trim_start_matches("models/");
    if model.starts_with("gemini-2.5-pro") {
        Some(json!({ "thinkingBudget": 128 })) // 2.5 Pro cannot switch thinking off
    } else if model.starts_with("gemini-2.5") {
        Some(json!({ "thinkingBudget": 0 }))
    } else if model.contains("-pro") && model.starts_with("gemini-3") {
        Some(json!({ "thinkingLevel": "LOW" })) // 3 Pro offers only LOW and HIGH
    } else if model.starts_with("gemini-3") {
        // Upper case, as the REST reference and the official SDKs write the enum.
        Some(json!({ "thinkingLevel": "MINIMAL" }))
    } else {
        None
    }
}

/// Turns stored history into Gemini `contents`: user/model roles only, starting with a user
/// turn, alternating (adjacent same-role messages are merged), and no empty text part, ever.
pub fn build_contents(history: &[HistoryMessage]) -> Vec<Value> {
    let mut turns: Vec<(Role, String)> = Vec::new();
    for message in history {
        let text = message.text.trim();
        if text.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some((role, merged)) if *role == message.role => {
                merged.push('\n');
                merged.push_str(text);
            }
            _ => turns.push((message.role, text.to_string())),
        }
    }
    if turns
        .first()
        .is_some_and(|(role, _)| *role == Role::Assistant)
    {
        turns.insert(0, (Role::User, CALL_STARTED_BRIDGE.to_string()));
    }
    turns
        .into_iter()
        .map(|(role, text)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({ "role": role, "parts": [{ "text": text }] })
        })
        .collect()
}

/// Token counts Gemini reports (the last event's are the totals).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    pub prompt_token_count: Option<u64>,
    pub candidates_token_count: Option<u64>,
    pub total_token_count: Option<u64>,
    pub thoughts_token_count: Option<u64>,
}

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
    pub usage: Option<Usage>,
    /// Every part of the candidate exactly as received (thoughts and signatures included).
    pub parts: Vec<Value>,
    /// The function calls among the parts.
    pub calls: Vec<FunctionCall>,
}

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

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawResponseEvent {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<Usage>,
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

/// Google's error object. Its `message` is deliberately not read (see `UpstreamError`).
#[derive(Deserialize)]
struct ErrorBody {
    code: Option<i64>,
    status: Option<String>,
    /// Typed entries (`ErrorInfo`, `RetryInfo`, `BadRequest`…); only `reason` is read.
    #[serde(default)]
    details: Vec<Value>,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
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

fn sanitise(http_status: u16, error: ErrorBody, api_key: &str) -> UpstreamError {
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
fn code(raw: &str, api_key: &str) -> Option<String> {
    let code = redact(raw, &[api_key], MAX_CODE_CHARS);
    let is_code = !code.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    is_code.then_some(code)
}

/// Sends the streaming request. Returns the response whatever its status.
pub async fn send(
    url: &str,
    api_key: &str,
    body: &str,
    signal: &AbortSignal,
) -> worker::Result<Response> {
    // The header keeps the key out of URLs and therefore out of logs. A redirect comes back as
    // a non-200 answer, which fails the turn.
    let request = json_post(url, ("x-goog-api-key", api_key), body)?;
    Fetch::Request(request).send_with_signal(signal).await
}

/// Reads a streaming response event by event.
pub struct EventReader {
    bytes: ByteStream,
    decoder: SseDecoder,
    ready: VecDeque<String>,
    ended: bool,
}

/// One step of the stream.
pub enum StreamItem {
    /// The JSON text of one event.
    Event(String),
    /// The body ended; carries leftover bytes of an unfinished event, if any.
    End(Option<String>),
    /// An event was larger than any real one (`sse::MAX_EVENT_BYTES`): the stream is refused.
    Oversized,
}

impl EventReader {
    pub fn new(response: &mut Response) -> worker::Result<Self> {
        Ok(EventReader {
            bytes: response.stream()?,
            decoder: SseDecoder::new(),
            ready: VecDeque::new(),
            ended: false,
        })
    }

    /// The next event, or the end of the body. Network errors surface as `Err`.
    pub async fn next(&mut self) -> worker::Result<StreamItem> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(StreamItem::Event(event));
            }
            if self.ended {
                return Ok(StreamItem::End(None));
            }
            match self.bytes.next().await {
                Some(bytes) => {
                    self.ready.extend(self.decoder.push(&bytes?));
                    if self.decoder.overflowed() {
                        return Ok(StreamItem::Oversized);
                    }
                }
                None => {
                    self.ended = true;
                    return Ok(StreamItem::End(self.decoder.finish()));
                }
            }
        }
    }
}

/// Finish reasons of a reply stopped by a content policy (gemini-streaming.md §7), which can
/// leave a sentence half-spoken.
pub fn is_policy_stop(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY" | "RECITATION" | "LANGUAGE" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII"
    )
}

/// What the log line reports about the calls to Gemini of one turn.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallReport {
    /// Requests actually sent (a retry makes two).
    pub requests: u32,
    /// HTTP status of the last answer.
    pub status: Option<u16>,
    /// The last upstream error as codes (`UpstreamError::for_log`), never Google's message.
    pub error: Option<String>,
    /// The last usage counts Gemini reported.
    pub usage: Option<Usage>,
}

/// Gemini as the turn engine's [`engine::Model`]: one prepared request, opened once per attempt.
pub struct GeminiModel {
    url: String,
    api_key: String,
    body: String,
    signal: AbortSignal,
    report: Rc<RefCell<CallReport>>,
    /// Runs once, right after the first request has been handed to the runtime.
    on_sent: Option<Box<dyn FnOnce()>>,
    /// The first request of a turn with tools, which every follow-up extends.
    first_body: Option<Value>,
}

impl GeminiModel {
    /// `signal` aborts every request of the turn (its controller stays with the caller).
    pub fn new(url: String, api_key: String, body: String, signal: AbortSignal) -> Self {
        GeminiModel {
            url,
            api_key,
            body,
            signal,
            report: Rc::default(),
            on_sent: None,
            first_body: None,
        }
    }

    /// Lets the model be asked again after tool calls: `first_body` is the turn's first request.
    pub fn with_follow_ups(mut self, first_body: Value) -> Self {
        self.first_body = Some(first_body);
        self
    }

    /// Calls `hook` once the first request is on its way (before its answer).
    pub fn on_sent(mut self, hook: impl FnOnce() + 'static) -> Self {
        self.on_sent = Some(Box::new(hook));
        self
    }

    pub fn report(&self) -> CallReport {
        self.report.borrow().clone()
    }
}

impl engine::Model for GeminiModel {
    type Stream = GeminiStream;

    async fn open(&mut self) -> Result<GeminiStream, OpenError> {
        self.report.borrow_mut().requests += 1;
        let mut sending = pin!(send(&self.url, &self.api_key, &self.body, &self.signal));
        // The first poll hands the request to the runtime; the hook runs right after.
        let first = poll_fn(|cx| Poll::Ready(sending.as_mut().poll(cx))).await;
        if let Some(hook) = self.on_sent.take() {
            hook();
        }
        let sent = match first {
            Poll::Ready(result) => result,
            Poll::Pending => sending.await,
        };
        let mut response = match sent {
            Ok(response) => response,
            // Nothing reached Gemini: trying again is harmless.
            Err(_) => {
                return Err(OpenError {
                    failure: Failure::Unreachable,
                    retryable: true,
                })
            }
        };
        let status = response.status_code();
        self.report.borrow_mut().status = Some(status);
        if status != 200 {
            let body = response.text().await.unwrap_or_default();
            let error = classify_error(status, &body, &self.api_key);
            let retryable = error.retryable();
            self.report.borrow_mut().error = Some(error.for_log());
            return Err(OpenError {
                failure: Failure::Http(status),
                retryable,
            });
        }
        match EventReader::new(&mut response) {
            Ok(reader) => Ok(GeminiStream {
                reader,
                api_key: self.api_key.clone(),
                report: self.report.clone(),
                step: ModelStep::default(),
            }),
            Err(_) => Err(OpenError {
                failure: Failure::NoBody,
                retryable: false,
            }),
        }
    }

    fn follow_up(&mut self, steps: &[ToolStep], calling_allowed: bool) {
        if let Some(first) = &self.first_body {
            self.body = follow_up_body(first, steps, calling_allowed).to_string();
        }
    }
}

/// One streamed Gemini reply, read piece by piece.
pub struct GeminiStream {
    reader: EventReader,
    api_key: String,
    report: Rc<RefCell<CallReport>>,
    /// The parts and calls received so far.
    step: ModelStep,
}

impl engine::ReplyStream for GeminiStream {
    fn take_step(&mut self) -> ModelStep {
        std::mem::take(&mut self.step)
    }

    async fn next(&mut self) -> Result<Option<Piece>, Failure> {
        let data = match self.reader.next().await {
            Err(_) => return Err(Failure::Network),
            Ok(StreamItem::End(None)) => return Ok(None),
            Ok(StreamItem::Oversized) => return Err(Failure::OversizedEvent),
            Ok(StreamItem::End(Some(leftover))) => {
                // An unframed error body, or an event cut off by the end of the body.
                let error = classify_error(200, &leftover, &self.api_key);
                self.report.borrow_mut().error = Some(error.for_log());
                return Err(Failure::IncompleteStream);
            }
            Ok(StreamItem::Event(data)) => data,
        };
        let event = parse_event(&data, &self.api_key).map_err(|_| Failure::UnreadableEvent)?;
        let mut report = self.report.borrow_mut();
        if event.usage.is_some() {
            report.usage = event.usage;
        }
        if let Some(error) = event.error {
            report.error = Some(error.for_log());
            return Err(Failure::StreamError);
        }
        if let Some(reason) = event.block_reason {
            let reason = code(&reason, &self.api_key);
            report.error = Some(format!(
                "BLOCKED: {}",
                reason.as_deref().unwrap_or("UNKNOWN")
            ));
            return Err(Failure::Blocked);
        }
        drop(report);
        self.step.parts.extend(event.parts);
        self.step.calls.extend(event.calls);
        Ok(Some(Piece {
            text: event.text,
            finish: event.finish_reason.map(|reason| Finish {
                policy: is_policy_stop(&reason),
                reason,
            }),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(contents: &[Value]) -> Vec<(String, String)> {
        contents
            .iter()
            .map(|c| {
                (
                    c["role"].as_str().unwrap().to_string(),
                    c["parts"][0]["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn pair(role: &str, text: &str) -> (String, String) {
        (role.to_string(), text.to_string())
    }

    #[test]
    fn url_uses_the_sse_streaming_endpoint() {
        assert_eq!(
            stream_url("http://127.0.0.1:9", "gemini-2.5-flash-lite"),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn body_has_system_prompt_contents_and_thinking_off_for_2_5() {
        let body = request_body(
            "Be brief.",
            "gemini-2.5-flash-lite",
            &[HistoryMessage::user("Hi")],
        );
        assert_eq!(
            body,
            json!({
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                "generationConfig": {"maxOutputTokens": 1024, "thinkingConfig": {"thinkingBudget": 0}}
            })
        );
    }

    #[test]
    fn thinking_config_follows_the_model_family() {
        assert_eq!(
            thinking_config("gemini-2.5-flash"),
            Some(json!({"thinkingBudget": 0}))
        );
        assert_eq!(
            thinking_config("gemini-2.5-pro"),
            Some(json!({"thinkingBudget": 128}))
        );
        assert_eq!(
            thinking_config("gemini-3.1-flash-lite"),
            Some(json!({"thinkingLevel": "MINIMAL"}))
        );
        assert_eq!(
            thinking_config("gemini-3-pro-preview"),
            Some(json!({"thinkingLevel": "LOW"}))
        );
        assert_eq!(thinking_config("gemini-2.0-flash"), None);
        assert_eq!(thinking_config("learnlm-2.0"), None);
    }

    #[test]
    fn contents_start_with_a_user_turn_after_a_welcome() {
        let contents = build_contents(&[
            HistoryMessage::assistant("Hi! How can I help?"),
            HistoryMessage::user("What time is it?"),
        ]);
        assert_eq!(
            texts(&contents),
            vec![
                pair("user", CALL_STARTED_BRIDGE),
                pair("model", "Hi! How can I help?"),
                pair("user", "What time is it?"),
            ]
        );
    }

    #[test]
    fn contents_merge_same_roles_and_drop_empty_messages() {
        let contents = build_contents(&[
            HistoryMessage::user("Hello"),
            HistoryMessage::assistant(""),
            HistoryMessage::assistant("  "),
            HistoryMessage::user("Are you there?"),
            HistoryMessage::assistant("Yes."),
            HistoryMessage::assistant("Sorry, go on."),
            HistoryMessage::user("Tell me a joke"),
        ]);
        assert_eq!(
            texts(&contents),
            vec![
                pair("user", "Hello\nAre you there?"),
                pair("model", "Yes.\nSorry, go on."),
                pair("user", "Tell me a joke"),
            ]
        );
    }

    #[test]
    fn contents_always_alternate_and_never_hold_empty_text() {
        // Every combination of up to 6 messages of either role, empty or not.
        for mask in 0u32..(1 << 12) {
            let history: Vec<_> = (0..6)
                .map(|i| {
                    let role = if mask >> (2 * i) & 1 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    };
                    let text = if mask >> (2 * i + 1) & 1 == 0 {
                        "words"
                    } else {
                        ""
                    };
                    HistoryMessage {
                        role,
                        text: text.to_string(),
                    }
                })
                .chain(std::iter::once(HistoryMessage::user("now")))
                .collect();
            let contents = texts(&build_contents(&history));
            assert_eq!(contents.first().unwrap().0, "user");
            assert_eq!(contents.last().unwrap().0, "user");
            assert!(contents.iter().all(|(_, text)| !text.is_empty()));
            assert!(contents.windows(2).all(|w| w[0].0 != w[1].0));
        }
    }

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
    fn tools_are_declared_and_follow_ups_answer_every_call() {
        use crate::engine::FunctionResponse;
        let declarations = vec![json!({"name": "shop_hours", "description": "Hours.",
            "parametersJsonSchema": {"type": "object"}})];
        let first = request_body_with_tools(
            "Be brief.",
            "gemini-3-flash-preview",
            &[HistoryMessage::user("Is Paris open?")],
            declarations.clone(),
        );
        assert_eq!(
            first["tools"],
            json!([{"functionDeclarations": declarations}])
        );
        assert_eq!(first["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
        let parts = vec![
            json!({"functionCall": {"name": "shop_hours", "args": {}, "id": "fc_1"}, "thoughtSignature": "c2ln"}),
            json!({"functionCall": {"name": "shop_hours", "args": {}}}),
        ];
        let step = ToolStep {
            model_parts: parts.clone(),
            responses: vec![
                FunctionResponse {
                    name: "shop_hours".into(),
                    id: Some("fc_1".into()),
                    response: json!({"output": {"open": true}}),
                },
                FunctionResponse {
                    name: "shop_hours".into(),
                    id: None,
                    response: json!({"error": "timeout"}),
                },
            ],
        };
        let next = follow_up_body(&first, std::slice::from_ref(&step), true);
        let contents = next["contents"].as_array().unwrap();
        assert_eq!(contents.len(), 3);
        assert_eq!(contents[1], json!({"role": "model", "parts": parts}));
        assert_eq!(
            contents[2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "shop_hours", "id": "fc_1", "response": {"output": {"open": true}}}},
                {"functionResponse": {"name": "shop_hours", "response": {"error": "timeout"}}}
            ]})
        );
        assert_eq!(next["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
        let last = follow_up_body(&first, &[step.clone(), step], false);
        assert_eq!(last["contents"].as_array().unwrap().len(), 5);
        assert_eq!(last["toolConfig"]["functionCallingConfig"]["mode"], "NONE");
        assert_eq!(last["systemInstruction"], first["systemInstruction"]);
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

//! A loopback stand-in for Gemini's `POST /v1beta/models/{model}:streamGenerateContent?alt=sse`
//! that speaks the real stream format (gemini-streaming.md §4, §5, §8, §10): `data: <json>`
//! events separated by a blank line, chunked transfer encoding, no `[DONE]`, end of body = end
//! of stream.

use super::mock_server::{redirect_reply, Cue, Mock, MockReply, MockServer, RecordedRequest};
use std::time::Duration;

pub use super::mock_server::StreamEnd;

/// Event separator used by a [`GeminiReply::Stream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// `\n\n`, as Google AI sends it.
    Lf,
    /// `\r\n\r\n`, as Vertex AI has been seen sending it.
    Crlf,
}

impl Framing {
    fn separator(self) -> &'static str {
        match self {
            Framing::Lf => "\n\n",
            Framing::Crlf => "\r\n\r\n",
        }
    }
}

/// One scripted answer to one Gemini request.
#[derive(Clone, Debug)]
pub enum GeminiReply {
    /// 200 `text/event-stream`, chunked; each event is written as `data: <json><separator>` and
    /// flushed as its own chunk after its delay; then the body ends (`Close`) or stalls (`Hang`).
    Stream {
        /// (delay before writing, the event's data JSON), in order.
        events: Vec<(Duration, String)>,
        /// Event separator.
        framing: Framing,
        /// Whether the body then ends cleanly or stalls.
        then: StreamEnd,
    },
    /// Raw body pieces, each its own chunk after its delay (for split-framing tests); still 200
    /// `text/event-stream`, chunked, ended cleanly.
    Raw {
        /// (delay before writing, bytes) per chunk.
        pieces: Vec<(Duration, Vec<u8>)>,
    },
    /// 200 `text/event-stream`, chunked; each piece is written once its [`Cue`] comes (a delay,
    /// or a [`super::mock_server::Gate`] the test opens after seeing what must come first), then
    /// the body ends (`Close`) or stalls (`Hang`). See [`gemini_fixtures::cued`].
    Cued {
        /// (what the piece waits for, bytes) per chunk.
        pieces: Vec<(Cue, Vec<u8>)>,
        /// Whether the body then ends cleanly or stalls.
        then: StreamEnd,
    },
    /// Any status with a JSON body (`application/json; charset=UTF-8`, like Google).
    Status {
        /// HTTP status, e.g. 429.
        status: u16,
        /// The JSON body, sent as is (see [`gemini_fixtures::error_body`]).
        body: String,
    },
    /// Like `Status`, but the body (chunked) only comes `body_after` the headers.
    SlowStatus {
        /// HTTP status, e.g. 503.
        status: u16,
        /// The JSON body.
        body: String,
        /// Delay between the headers and the body.
        body_after: Duration,
    },
    /// A redirect to `location` (which a client must not follow with the key and prompt).
    Redirect {
        /// HTTP status, e.g. 307.
        status: u16,
        /// The `Location` header value.
        location: String,
    },
    /// Read the request, never answer (until the client goes away or the mock is dropped).
    Hang,
    /// 200 `text/event-stream` labelled with `Content-Encoding: <encoding>`, whose body is
    /// written as is, whether or not it really is in that encoding (see [`super::gzip`]).
    Encoded {
        /// The `Content-Encoding` header value, e.g. `gzip`.
        encoding: String,
        /// (what the piece waits for, bytes) per chunk.
        pieces: Vec<(Cue, Vec<u8>)>,
    },
}

impl From<GeminiReply> for MockReply {
    fn from(reply: GeminiReply) -> MockReply {
        let sse = |pieces, end| MockReply::Chunked {
            status: 200,
            content_type: "text/event-stream".into(),
            pieces,
            end,
        };
        let cued = |pieces, end| MockReply::Cued {
            status: 200,
            content_type: "text/event-stream".into(),
            pieces,
            end,
        };
        match reply {
            GeminiReply::Stream {
                events,
                framing,
                then,
            } => {
                let sep = framing.separator();
                let pieces = events
                    .into_iter()
                    .map(|(d, json)| (d, format!("data: {json}{sep}").into_bytes()))
                    .collect();
                sse(pieces, then)
            }
            GeminiReply::Raw { pieces } => sse(pieces, StreamEnd::Close),
            GeminiReply::Cued { pieces, then } => cued(pieces, then),
            GeminiReply::Status { status, body } => MockReply::Full {
                status,
                content_type: "application/json; charset=UTF-8".into(),
                body: body.into_bytes(),
            },
            GeminiReply::SlowStatus {
                status,
                body,
                body_after,
            } => MockReply::Chunked {
                status,
                content_type: "application/json; charset=UTF-8".into(),
                pieces: vec![(body_after, body.into_bytes())],
                end: StreamEnd::Close,
            },
            GeminiReply::Redirect { status, location } => redirect_reply(status, &location),
            GeminiReply::Hang => MockReply::Hang,
            GeminiReply::Encoded { encoding, pieces } => MockReply::WithHeaders {
                headers: vec![("Content-Encoding".into(), encoding)],
                reply: Box::new(cued(pieces, StreamEnd::Close)),
            },
        }
    }
}

/// The Gemini mock. Unscripted requests get a short successful stream ("Hello from the mock.").
pub type MockGemini = Mock<GeminiReply>;

/// What an unscripted request gets: the text of [`MockGemini`]'s default reply.
pub const DEFAULT_GEMINI_TEXT: &str = "Hello from the mock.";

impl Mock<GeminiReply> {
    /// Starts the mock on `127.0.0.1:<free port>`.
    pub fn start() -> MockGemini {
        let default = || gemini_fixtures::reply(&[DEFAULT_GEMINI_TEXT], Duration::ZERO).into();
        Mock::new(MockServer::start("MockGemini", default))
    }

    /// Starts the mock in responder mode: every unscripted request is answered with
    /// `responder(&request)`, so concurrent turns can each get their own reply, chosen from the
    /// request content (e.g. a tag in the last user message). [`Mock::push`] still queues
    /// replies that take precedence.
    pub fn start_with(
        responder: impl Fn(&RecordedRequest) -> GeminiReply + Send + Sync + 'static,
    ) -> MockGemini {
        Mock::new(MockServer::start_with_responder(
            "MockGemini",
            move |request| responder(request).into(),
        ))
    }

    /// Starts a mock that enforces Gemini 3's signature rule (gemini-tools.md §4): a request
    /// whose current turn holds a function call without its `thoughtSignature` gets the real
    /// API's 400 (see [`gemini_fixtures::missing_signature`]); any other request gets the next
    /// of `replies`, then the default reply. [`Mock::push`] would bypass the check: do not use
    /// it on this mock.
    pub fn start_requiring_signatures(replies: Vec<GeminiReply>) -> MockGemini {
        let replies = std::sync::Mutex::new(std::collections::VecDeque::from(replies));
        MockGemini::start_with(move |request| {
            if gemini_fixtures::missing_signature(&request.json()) {
                return gemini_fixtures::missing_signature_reply();
            }
            let next = replies.lock().ok().and_then(|mut queue| queue.pop_front());
            next.unwrap_or_else(|| gemini_fixtures::reply(&[DEFAULT_GEMINI_TEXT], Duration::ZERO))
        })
    }

    /// Starts a mock that writes summaries the deterministic way (`mock_summary`) and answers
    /// every other request with `reply(&request)`; [`Mock::push`] still comes first.
    pub fn start_summarising(
        reply: impl Fn(&RecordedRequest) -> GeminiReply + Send + Sync + 'static,
    ) -> MockGemini {
        MockGemini::start_with(move |request| {
            let json = request.json();
            if super::mock_summary::is_summary_request(&json) {
                gemini_fixtures::summary_reply(&json)
            } else {
                reply(request)
            }
        })
    }

    /// Per request (arrival order): the instant the first body chunk was written, if it was.
    pub fn first_chunk_sent_at(&self) -> Vec<Option<std::time::Instant>> {
        self.timings().iter().map(|t| t.first_chunk_at).collect()
    }
}

pub mod gemini_fixtures {
    use super::{Cue, Framing, GeminiReply, StreamEnd};
    use std::time::Duration;

    /// `modelVersion` in every fixture event.
    pub const MODEL_VERSION: &str = "gemini-2.5-flash-lite";
    /// `responseId` in every fixture event.
    pub const RESPONSE_ID: &str = "mockResp0000000000000001";
    const PROMPT_TOKENS: usize = 7;

    /// The request path for `model`, as the worker must call it.
    pub fn stream_path(model: &str) -> String {
        format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
    }

    fn quote(s: &str) -> String {
        serde_json::to_string(s).expect("string serialises")
    }

    /// `usageMetadata` in Google's key order and spacing; candidate counts only at the end.
    fn usage(candidate_tokens: Option<usize>) -> String {
        let p = PROMPT_TOKENS;
        let prompt_details =
            format!(r#""promptTokensDetails": [{{"modality": "TEXT","tokenCount": {p}}}]"#);
        match candidate_tokens {
            None => {
                format!(r#"{{"promptTokenCount": {p},"totalTokenCount": {p},{prompt_details}}}"#)
            }
            Some(c) => format!(
                r#"{{"promptTokenCount": {p},"candidatesTokenCount": {c},"totalTokenCount": {},{prompt_details},"candidatesTokensDetails": [{{"modality": "TEXT","tokenCount": {c}}}]}}"#,
                p + c
            ),
        }
    }

    fn tail() -> String {
        format!(
            r#""modelVersion": {},"responseId": {}"#,
            quote(MODEL_VERSION),
            quote(RESPONSE_ID)
        )
    }

    /// One streamed event exactly in Google's shape: `candidates[0].content.parts[0].text`, role
    /// `model`, `usageMetadata`, `modelVersion`, `responseId`; with `finishReason` (and the
    /// candidate token counts) when given.
    pub fn text_event(text: &str, finish_reason: Option<&str>) -> String {
        let content = format!(
            r#""content": {{"parts": [{{"text": {}}}],"role": "model"}}"#,
            quote(text)
        );
        let (finish, tokens) = match finish_reason {
            Some(r) => (
                format!(r#","finishReason": {}"#, quote(r)),
                Some(text.split_whitespace().count().max(1)),
            ),
            None => (String::new(), None),
        };
        format!(
            r#"{{"candidates": [{{{content}{finish}}}],"usageMetadata": {},{}}}"#,
            usage(tokens),
            tail()
        )
    }

    /// An event with any parts (a JSON array: function calls with `thoughtSignature`s,
    /// signature-only empty text parts…), with `finishReason` when given.
    pub fn parts_event(parts: &str, finish_reason: Option<&str>) -> String {
        let finish = finish_reason
            .map(|r| format!(r#","finishReason": {}"#, quote(r)))
            .unwrap_or_default();
        format!(
            r#"{{"candidates": [{{"content": {{"parts": {parts},"role": "model"}}{finish}}}],"usageMetadata": {},{}}}"#,
            usage(None),
            tail()
        )
    }

    /// A final event without parts: `"content": {"role": "model"}` plus `finishReason`.
    pub fn finish_only_event(reason: &str) -> String {
        format!(
            r#"{{"candidates": [{{"content": {{"role": "model"}},"finishReason": {}}}],"usageMetadata": {},{}}}"#,
            quote(reason),
            usage(Some(1)),
            tail()
        )
    }

    /// A blocked prompt: `promptFeedback.blockReason` (+ safety ratings) and no `candidates`.
    pub fn blocked_prompt_event(reason: &str) -> String {
        let ratings = [
            "HARASSMENT",
            "HATE_SPEECH",
            "SEXUALLY_EXPLICIT",
            "DANGEROUS_CONTENT",
        ]
        .iter()
        .map(|c| {
            let p = if reason == "SAFETY" && *c == "DANGEROUS_CONTENT" {
                "HIGH"
            } else {
                "NEGLIGIBLE"
            };
            format!(r#"{{"category": "HARM_CATEGORY_{c}","probability": "{p}"}}"#)
        })
        .collect::<Vec<_>>()
        .join(",");
        format!(
            r#"{{"promptFeedback": {{"blockReason": {},"safetyRatings": [{ratings}]}},"usageMetadata": {},{}}}"#,
            quote(reason),
            usage(None),
            tail()
        )
    }

    /// An error delivered inside the stream: `{"error": {"code", "message", "status"}}`.
    pub fn error_event(code: u16, status: &str, message: &str) -> String {
        format!(
            r#"{{"error": {{"code": {code},"message": {},"status": {}}}}}"#,
            quote(message),
            quote(status)
        )
    }

    /// Google's non-200 body (gemini-streaming.md §8), pretty-printed as Google serves it, with
    /// `details` where Google adds them: `RetryInfo` (22s) on 429 and `ErrorInfo` with
    /// `API_KEY_INVALID` on a 400 whose message mentions the API key.
    pub fn error_body(code: u16, status: &str, message: &str) -> String {
        let details = match (code, message.contains("API key")) {
            (429, _) => Some(
                r#"      {
        "@type": "type.googleapis.com/google.rpc.RetryInfo",
        "retryDelay": "22s"
      }"#,
            ),
            (400, true) => Some(
                r#"      {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
        "metadata": {
          "service": "generativelanguage.googleapis.com"
        }
      }"#,
            ),
            _ => None,
        };
        let details = details
            .map(|d| format!(",\n    \"details\": [\n{d}\n    ]"))
            .unwrap_or_default();
        format!(
            "{{\n  \"error\": {{\n    \"code\": {code},\n    \"message\": {},\n    \"status\": {}{details}\n  }}\n}}\n",
            quote(message),
            quote(status)
        )
    }

    /// [`GeminiReply::Status`] with [`error_body`].
    pub fn error_reply(code: u16, status: &str, message: &str) -> GeminiReply {
        GeminiReply::Status {
            status: code,
            body: error_body(code, status, message),
        }
    }

    /// Whether Gemini 3 would refuse `request` for a lost signature: in its current turn (the
    /// contents after the last user text), a model content whose first `functionCall` part has
    /// no `thoughtSignature` (parallel calls: only the first carries one). Gemini 2.5 accepts it.
    pub fn missing_signature(request: &serde_json::Value) -> bool {
        let empty = Vec::new();
        let contents = request["contents"].as_array().unwrap_or(&empty);
        let user_text = |c: &serde_json::Value| {
            c["role"] == "user"
                && c["parts"]
                    .as_array()
                    .is_some_and(|parts| parts.iter().any(|p| p.get("text").is_some()))
        };
        let turn_start = contents.iter().rposition(user_text).map_or(0, |i| i + 1);
        contents[turn_start..]
            .iter()
            .filter(|c| c["role"] == "model")
            .filter_map(|c| {
                let parts = c["parts"].as_array()?;
                parts.iter().find(|p| p.get("functionCall").is_some())
            })
            .any(|call| call.get("thoughtSignature").is_none())
    }

    /// The 400 Gemini 3 answers to a function call replayed without its signature.
    pub fn missing_signature_reply() -> GeminiReply {
        error_reply(
            400,
            "INVALID_ARGUMENT",
            "Function call is missing a thought_signature in functionCall parts. This is \
             required for tools to work correctly, and missing thought_signature may lead to \
             degraded model performance. Additional data, function call `default_api:shop_hours` \
             , position 2. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures \
             for more details.",
        )
    }

    /// A complete successful stream: one event per part (the first at once, then `gap` apart),
    /// the last carrying `finishReason: STOP`; LF framing; body closed.
    pub fn reply(parts: &[&str], gap: Duration) -> GeminiReply {
        let last = parts.len().saturating_sub(1);
        let events = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let delay = if i == 0 { Duration::ZERO } else { gap };
                (delay, text_event(p, (i == last).then_some("STOP")))
            })
            .collect();
        stream(events)
    }

    /// A stream of `events` (delay before each, its data JSON), LF framing, body closed after
    /// the last.
    pub fn stream(events: Vec<(Duration, String)>) -> GeminiReply {
        GeminiReply::Stream {
            events,
            framing: Framing::Lf,
            then: StreamEnd::Close,
        }
    }

    /// A stream of `events` each written once its cue comes (a delay, or a gate the test
    /// opens), LF framing, body closed after the last.
    pub fn cued(events: Vec<(Cue, String)>) -> GeminiReply {
        let pieces = events
            .into_iter()
            .map(|(cue, json)| (cue, format!("data: {json}\n\n").into_bytes()))
            .collect();
        GeminiReply::Cued {
            pieces,
            then: StreamEnd::Close,
        }
    }

    /// One model round that only calls: `parts` (a JSON array of `functionCall` parts) then
    /// `STOP`, in one event.
    pub fn call_round(parts: &str) -> GeminiReply {
        stream(vec![(Duration::ZERO, parts_event(parts, Some("STOP")))])
    }

    /// The mock's summary for a summary request (`mock_summary`), streamed in two events like
    /// a real model writing it.
    pub fn summary_reply(request: &serde_json::Value) -> GeminiReply {
        let summary = super::super::mock_summary::mock_summary(request);
        let cut = summary
            .char_indices()
            .nth(summary.chars().count() / 2)
            .map_or(0, |(at, _)| at);
        let (first, second) = summary.split_at(cut);
        reply(&[first, second], Duration::ZERO)
    }

    /// The text the Wyoming fixture's deltas concatenate to.
    pub const WYOMING_TEXT: &str = "The capital of Wyoming is **Cheyenne**.\n";

    /// Byte-for-byte copy of gemini-streaming.md §10 (`streaming-success-basic-reply-short.txt`
    /// from FirebaseExtended/vertexai-sdk-test-data): three events, LF framing.
    pub fn wyoming_fixture_lf() -> Vec<u8> {
        concat!(
            r#"data: {"candidates": [{"content": {"parts": [{"text": "The"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-3.1-flash-lite"}"#,
            "\n\n",
            r#"data: {"candidates": [{"content": {"parts": [{"text": " capital of Wyoming"}],"role": "model"}}],"usageMetadata": {"promptTokenCount": 7,"totalTokenCount": 7,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}]},"modelVersion": "gemini-3.1-flash-lite"}"#,
            "\n\n",
            r#"data: {"candidates": [{"content": {"parts": [{"text": " is **Cheyenne**.\n"}],"role": "model"},"finishReason": "STOP"}],"usageMetadata": {"promptTokenCount": 7,"candidatesTokenCount": 10,"totalTokenCount": 17,"promptTokensDetails": [{"modality": "TEXT","tokenCount": 7}],"candidatesTokensDetails": [{"modality": "TEXT","tokenCount": 10}]},"modelVersion": "gemini-3.1-flash-lite"}"#,
            "\n\n",
        )
        .as_bytes()
        .to_vec()
    }

    /// The same fixture with CRLF separators (`\r\n\r\n`), as Vertex AI frames it. Safe to
    /// derive by replacement: the JSON itself holds no raw newlines (its `\n` is escaped).
    pub fn wyoming_fixture_crlf() -> Vec<u8> {
        String::from_utf8(wyoming_fixture_lf())
            .expect("fixture is UTF-8")
            .replace("\n\n", "\r\n\r\n")
            .into_bytes()
    }

    /// `bytes` cut into `piece_len`-byte pieces, `gap` apart: separators, CRLF pairs and
    /// multi-byte characters end up straddling chunk boundaries.
    pub fn raw_split(bytes: &[u8], piece_len: usize, gap: Duration) -> GeminiReply {
        let pieces = bytes
            .chunks(piece_len.max(1))
            .map(|p| (gap, p.to_vec()))
            .collect();
        GeminiReply::Raw { pieces }
    }
}

//! A loopback stand-in for an OpenAI-compatible `POST {base}/chat/completions` that speaks the
//! real streamed format byte for byte (openai-chat-streaming.md §2–§4): chunked transfer
//! encoding, one `data: <chunk>` event per blank line (LF or CRLF framing), the usage chunk with
//! empty `choices`, `data: [DONE]`, comment lines, tool-call fragments cut anywhere, reasoning
//! deltas, and error bodies. Every request is recorded (see [`Mock`]).

use super::mock_server::{redirect_reply, Cue, Mock, MockReply, MockServer, RecordedRequest};
use std::time::Duration;

pub use super::mock_server::StreamEnd;

/// Event separator of an [`OpenAiReply::Stream`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Separator {
    /// `\n\n`, as OpenAI sends it.
    Lf,
    /// `\r\n\r\n`, as some servers frame it.
    Crlf,
}

impl Separator {
    fn text(self) -> &'static str {
        match self {
            Separator::Lf => "\n\n",
            Separator::Crlf => "\r\n\r\n",
        }
    }
}

/// One scripted answer to one request.
#[derive(Clone, Debug)]
pub enum OpenAiReply {
    /// 200 `text/event-stream`, chunked: each line (`data: …`, `: comment`) is written with the
    /// separator and flushed as its own chunk after its delay; then the body ends or stalls.
    Stream {
        /// (delay before writing, the whole line without its separator), in order.
        lines: Vec<(Duration, String)>,
        separator: Separator,
        then: StreamEnd,
    },
    /// Like `Stream`, but each line is written once its [`Cue`] comes: a delay, or a
    /// [`super::mock_server::Gate`] the test opens once it has seen what must come first.
    Cued {
        /// (what the line waits for, the whole line without its separator), in order.
        lines: Vec<(Cue, String)>,
        separator: Separator,
        then: StreamEnd,
    },
    /// Raw body pieces, each its own chunk after its delay (a stream cut at awkward places).
    Raw {
        pieces: Vec<(Duration, Vec<u8>)>,
        then: StreamEnd,
    },
    /// Any status with a JSON body (`application/json`).
    Status { status: u16, body: String },
    /// A redirect to `location`.
    Redirect { status: u16, location: String },
    /// Read the request, never answer.
    Hang,
}

impl From<OpenAiReply> for MockReply {
    fn from(reply: OpenAiReply) -> MockReply {
        let sse = |pieces, end| MockReply::Chunked {
            status: 200,
            content_type: "text/event-stream; charset=utf-8".into(),
            pieces,
            end,
        };
        match reply {
            OpenAiReply::Stream {
                lines,
                separator,
                then,
            } => {
                let sep = separator.text();
                let pieces = lines
                    .into_iter()
                    .map(|(d, line)| (d, format!("{line}{sep}").into_bytes()))
                    .collect();
                sse(pieces, then)
            }
            OpenAiReply::Cued {
                lines,
                separator,
                then,
            } => {
                let sep = separator.text();
                MockReply::Cued {
                    status: 200,
                    content_type: "text/event-stream; charset=utf-8".into(),
                    pieces: lines
                        .into_iter()
                        .map(|(cue, line)| (cue, format!("{line}{sep}").into_bytes()))
                        .collect(),
                    end: then,
                }
            }
            OpenAiReply::Raw { pieces, then } => sse(pieces, then),
            OpenAiReply::Status { status, body } => MockReply::Full {
                status,
                content_type: "application/json".into(),
                body: body.into_bytes(),
            },
            OpenAiReply::Redirect { status, location } => redirect_reply(status, &location),
            OpenAiReply::Hang => MockReply::Hang,
        }
    }
}

/// The mock. Unscripted requests get a short successful stream ("Hello from the OpenAI mock.").
pub type MockOpenAi = Mock<OpenAiReply>;

/// The text of [`MockOpenAi`]'s default reply.
pub const DEFAULT_OPENAI_TEXT: &str = "Hello from the OpenAI mock.";

impl Mock<OpenAiReply> {
    /// Starts the mock on `127.0.0.1:<free port>`.
    pub fn start() -> MockOpenAi {
        let default = || openai_fixtures::reply(&[DEFAULT_OPENAI_TEXT], Duration::ZERO).into();
        Mock::new(MockServer::start("MockOpenAi", default))
    }

    /// Every unscripted request answered by `responder(&request)` (scripted ones first).
    pub fn start_with(
        responder: impl Fn(&RecordedRequest) -> OpenAiReply + Send + Sync + 'static,
    ) -> MockOpenAi {
        Mock::new(MockServer::start_with_responder(
            "MockOpenAi",
            move |request| responder(request).into(),
        ))
    }

    /// Starts a mock that writes summaries the deterministic way (`mock_summary`), as the mock
    /// Gemini's `start_summarising` does, and answers every other request with
    /// `reply(&request)`; [`Mock::push`] still comes first.
    pub fn start_summarising(
        reply: impl Fn(&RecordedRequest) -> OpenAiReply + Send + Sync + 'static,
    ) -> MockOpenAi {
        MockOpenAi::start_with(move |request| {
            let json = request.json();
            if super::mock_summary::is_summary_request(&json) {
                openai_fixtures::summary_reply(&json)
            } else {
                reply(request)
            }
        })
    }

    /// The value of an entry's `base_url` for this mock (`…/v1`).
    pub fn v1(&self) -> String {
        format!("{}/v1", self.base_url())
    }
}

pub mod openai_fixtures {
    use super::{OpenAiReply, Separator, StreamEnd};
    use std::time::Duration;

    pub const CHAT_PATH: &str = "/v1/chat/completions";
    pub const MODEL: &str = "gpt-4.1-mini";

    fn quote(s: &str) -> String {
        serde_json::to_string(s).expect("string serialises")
    }

    /// One chunk exactly in OpenAI's shape, `choice` being the inside of `choices[0]` after
    /// `"index":0,`; `usage` null, as every chunk but the last carries it with
    /// `include_usage`.
    pub fn chunk(choice: &str) -> String {
        format!(
            r#"data: {{"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":1765000000,"model":"{MODEL}","system_fingerprint":"fp_mock","choices":[{{"index":0,{choice},"logprobs":null}}],"usage":null,"obfuscation":"x1"}}"#
        )
    }

    /// The first chunk: the role, empty content.
    pub fn role_chunk() -> String {
        chunk(r#""delta":{"role":"assistant","content":"","refusal":null},"finish_reason":null"#)
    }

    /// A content delta.
    pub fn text_chunk(text: &str) -> String {
        chunk(&format!(
            r#""delta":{{"content":{}}},"finish_reason":null"#,
            quote(text)
        ))
    }

    /// A reasoning delta under `field` (`reasoning_content` or `reasoning`): never spoken.
    pub fn reasoning_chunk(field: &str, text: &str) -> String {
        chunk(&format!(
            r#""delta":{{"{field}":{}}},"finish_reason":null"#,
            quote(text)
        ))
    }

    /// The finish chunk: an empty delta and `finish_reason`.
    pub fn finish_chunk(reason: &str) -> String {
        chunk(&format!(
            r#""delta":{{}},"finish_reason":{}"#,
            quote(reason)
        ))
    }

    /// The usage chunk: `choices: []`.
    pub fn usage_chunk(prompt: u64, completion: u64) -> String {
        format!(
            r#"data: {{"id":"chatcmpl-mock1","object":"chat.completion.chunk","created":1765000000,"model":"{MODEL}","system_fingerprint":"fp_mock","choices":[],"usage":{{"prompt_tokens":{prompt},"completion_tokens":{completion},"total_tokens":{},"prompt_tokens_details":{{"cached_tokens":0}},"completion_tokens_details":{{"reasoning_tokens":0}}}},"obfuscation":"y2"}}"#,
            prompt + completion
        )
    }

    pub const DONE: &str = "data: [DONE]";

    /// The first fragment of call `index`: id, name, empty arguments.
    pub fn call_start(index: u32, id: &str, name: &str) -> String {
        chunk(&format!(
            r#""delta":{{"tool_calls":[{{"index":{index},"id":{},"type":"function","function":{{"name":{},"arguments":""}}}}]}},"finish_reason":null"#,
            quote(id),
            quote(name)
        ))
    }

    /// A later fragment of call `index`: a piece of its arguments text.
    pub fn call_arguments(index: u32, piece: &str) -> String {
        chunk(&format!(
            r#""delta":{{"tool_calls":[{{"index":{index},"function":{{"arguments":{}}}}}]}},"finish_reason":null"#,
            quote(piece)
        ))
    }

    /// `lines`, each `gap` after the one before (the first at once), LF, body closed.
    pub fn stream(lines: Vec<String>, gap: Duration) -> OpenAiReply {
        OpenAiReply::Stream {
            lines: lines
                .into_iter()
                .enumerate()
                .map(|(i, l)| (if i == 0 { Duration::ZERO } else { gap }, l))
                .collect(),
            separator: Separator::Lf,
            then: StreamEnd::Close,
        }
    }

    /// A whole reply: role, one chunk per part, `stop`, usage, `[DONE]`.
    pub fn reply(parts: &[&str], gap: Duration) -> OpenAiReply {
        stream(reply_lines(parts, "stop"), gap)
    }

    /// The lines of a whole reply ending with `finish`.
    pub fn reply_lines(parts: &[&str], finish: &str) -> Vec<String> {
        let mut lines = vec![role_chunk()];
        lines.extend(parts.iter().map(|p| text_chunk(p)));
        lines.push(finish_chunk(finish));
        lines.push(usage_chunk(31, parts.len() as u64));
        lines.push(DONE.to_string());
        lines
    }

    /// The mock's summary for a summary request (`mock_summary`), streamed in two content
    /// chunks like a real model writing it.
    pub fn summary_reply(request: &serde_json::Value) -> OpenAiReply {
        stream(summary_lines(request), Duration::ZERO)
    }

    /// The lines of [`summary_reply`].
    pub fn summary_lines(request: &serde_json::Value) -> Vec<String> {
        let summary = super::super::mock_summary::mock_summary(request);
        let cut = summary
            .char_indices()
            .nth(summary.chars().count() / 2)
            .map_or(0, |(at, _)| at);
        let (first, second) = summary.split_at(cut);
        reply_lines(&[first, second], "stop")
    }

    /// One round that calls `calls` (id, name, arguments JSON), the arguments of each cut into
    /// `cut`-byte pieces and the fragments of different calls interleaved, then `tool_calls`.
    pub fn call_round(calls: &[(&str, &str, &str)], cut: usize) -> OpenAiReply {
        let mut lines = vec![role_chunk()];
        let pieces: Vec<Vec<String>> = calls
            .iter()
            .map(|(_, _, args)| {
                let chars: Vec<char> = args.chars().collect();
                chars
                    .chunks(cut.max(1))
                    .map(|c| c.iter().collect())
                    .collect()
            })
            .collect();
        for (i, (id, name, _)) in calls.iter().enumerate() {
            lines.push(call_start(i as u32, id, name));
        }
        let longest = pieces.iter().map(Vec::len).max().unwrap_or(0);
        for p in 0..longest {
            for (i, call_pieces) in pieces.iter().enumerate() {
                if let Some(piece) = call_pieces.get(p) {
                    lines.push(call_arguments(i as u32, piece));
                }
            }
        }
        lines.push(finish_chunk("tool_calls"));
        lines.push(usage_chunk(40, 12));
        lines.push(DONE.to_string());
        stream(lines, Duration::ZERO)
    }

    /// OpenAI's non-2xx body.
    pub fn error_body(message: &str, kind: &str, code: Option<&str>) -> String {
        let code = code.map(quote).unwrap_or_else(|| "null".into());
        format!(
            "{{\n    \"error\": {{\n        \"message\": {},\n        \"type\": {},\n        \"param\": null,\n        \"code\": {code}\n    }}\n}}\n",
            quote(message),
            quote(kind)
        )
    }

    /// [`OpenAiReply::Status`] with [`error_body`].
    pub fn error_reply(status: u16, message: &str, kind: &str, code: Option<&str>) -> OpenAiReply {
        OpenAiReply::Status {
            status,
            body: error_body(message, kind, code),
        }
    }

    /// The 401 OpenAI answers to a bad key (the message quotes part of the key).
    pub fn bad_key() -> OpenAiReply {
        error_reply(
            401,
            "Incorrect API key provided: sk-test***key. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Some("invalid_api_key"),
        )
    }

    /// The 429 of a rate limit.
    pub fn rate_limited() -> OpenAiReply {
        error_reply(
            429,
            "Rate limit reached for gpt-4.1-mini in organization org-x on tokens per min (TPM): Limit 30000, Used 30000, Requested 400.",
            "tokens",
            Some("rate_limit_exceeded"),
        )
    }

    /// `bytes` cut into `len`-byte pieces, `gap` apart.
    pub fn raw_split(bytes: &[u8], len: usize, gap: Duration) -> OpenAiReply {
        OpenAiReply::Raw {
            pieces: bytes
                .chunks(len.max(1))
                .map(|p| (gap, p.to_vec()))
                .collect(),
            then: StreamEnd::Close,
        }
    }

    /// The whole body of `lines` with `separator`, as bytes (to cut with [`raw_split`]).
    pub fn body(lines: &[String], separator: Separator) -> Vec<u8> {
        let sep = separator.text();
        lines
            .iter()
            .map(|l| format!("{l}{sep}"))
            .collect::<String>()
            .into_bytes()
    }
}

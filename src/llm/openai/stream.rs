//! The streamed chat completion, one `data:` payload at a time: text to speak (`delta.content`),
//! reasoning never spoken (`delta.reasoning_content`, `delta.reasoning`), tool-call fragments
//! assembled by `index` ([`CallAssembler`]), the finish reason, usage (on the final chunk with
//! empty `choices`, or on any chunk), `[DONE]`, and errors inside the stream.
//!
//! [`ChatStream`] is the whole state of one reply and pure, so every split of a recorded stream
//! is checked natively (`tests`); `model` only feeds it the payloads the SSE decoder returns.

use serde_json::{json, Value};

use super::error::{from_error_object, ApiError};
use crate::llm::{Failure, Finish, FunctionCall, ModelStep, Piece, Usage};
use crate::lossy_json::replace_lone_surrogates;

/// The payload that ends the stream. Never parsed as JSON.
pub const DONE: &str = "[DONE]";

/// One tool-call fragment of a delta.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fragment {
    pub index: u64,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: Option<String>,
}

/// One call as assembled: its id and name from its first fragment, and every `arguments` piece
/// in arrival order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssembledCall {
    pub index: u64,
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Assembles tool calls from their fragments, by `index`. A fragment whose non-empty `id`
/// differs from the one its index already holds starts a new call: some servers reuse index 0
/// for every parallel call (and Ollama sends each call whole, in one fragment).
#[derive(Debug, Clone, Default)]
pub struct CallAssembler {
    calls: Vec<AssembledCall>,
}

impl CallAssembler {
    pub fn push(&mut self, fragment: Fragment) {
        let id = fragment.id.filter(|id| !id.is_empty());
        let same_index = self.calls.iter().rposition(|c| c.index == fragment.index);
        let at = match same_index {
            Some(at)
                if !id.as_ref().is_some_and(|id| {
                    !self.calls[at].id.is_empty() && *id != self.calls[at].id
                }) =>
            {
                at
            }
            _ => {
                self.calls.push(AssembledCall {
                    index: fragment.index,
                    ..AssembledCall::default()
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[at];
        if let Some(id) = id {
            if call.id.is_empty() {
                call.id = id;
            }
        }
        if let Some(name) = fragment.name.filter(|name| !name.is_empty()) {
            if call.name.is_empty() {
                call.name = name;
            }
        }
        if let Some(arguments) = fragment.arguments {
            call.arguments.push_str(&arguments);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The calls, in the order their first fragments came.
    pub fn finish(self) -> Vec<AssembledCall> {
        self.calls
    }
}

/// A call's arguments: empty means none (`{}`); a JSON object is the arguments; anything else
/// (cut off, not JSON, not an object) is kept as the model's text, so the call is answered
/// with an error and never run.
pub fn parse_arguments(raw: &str) -> Value {
    let raw = raw.trim();
    if raw.is_empty() {
        return json!({});
    }
    let repaired = replace_lone_surrogates(raw.as_bytes());
    match serde_json::from_slice::<Value>(&repaired) {
        Ok(args @ Value::Object(_)) => args,
        _ => Value::String(raw.to_string()),
    }
}

/// What one payload said.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Chunk {
    /// `delta.content` (and `delta.refusal`, which is what the model says when it refuses).
    pub text: String,
    pub refusal: bool,
    /// `delta.reasoning_content`: never spoken, but sent back with a tool round (DeepSeek
    /// requires it). `delta.reasoning` (Groq, Ollama, OpenRouter) is not even kept.
    pub reasoning_content: String,
    pub fragments: Vec<Fragment>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub error: Option<ApiError>,
    /// The `[DONE]` payload.
    pub done: bool,
}

/// Parses one `data:` payload. A lone surrogate escape (half an emoji) costs that character,
/// not the reply. `api_key` is redacted from any error code.
pub fn parse_chunk(data: &str, api_key: &str) -> Result<Chunk, String> {
    if data.trim() == DONE {
        return Ok(Chunk {
            done: true,
            ..Chunk::default()
        });
    }
    // Read as a `Value` rather than typed structs: the worker parses `Value`s everywhere
    // already, so this costs the wasm almost nothing, and a chunk is small.
    let json = replace_lone_surrogates(data.as_bytes());
    let raw: Value = serde_json::from_slice(&json).map_err(|e| format!("unreadable chunk: {e}"))?;
    if !raw.is_object() {
        return Err("a chunk must be a JSON object".to_string());
    }
    let text =
        |value: &Value, key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
    let count = |key: &str| raw["usage"].get(key).and_then(Value::as_u64);
    let mut chunk = Chunk {
        usage: raw["usage"].is_object().then(|| Usage {
            prompt_tokens: count("prompt_tokens"),
            output_tokens: count("completion_tokens"),
            total_tokens: count("total_tokens"),
        }),
        ..Chunk::default()
    };
    if let Some(error) = raw.get("error").filter(|e| !e.is_null()) {
        let status = error
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(500);
        chunk.error = Some(from_error_object(status, error, api_key));
        return Ok(chunk);
    }
    // The usage chunk has `choices: []`.
    let Some(choice) = raw["choices"].get(0) else {
        return Ok(chunk);
    };
    chunk.finish_reason = text(choice, "finish_reason");
    let delta = &choice["delta"];
    chunk.text = text(delta, "content").unwrap_or_default();
    if let Some(refusal) = text(delta, "refusal").filter(|r| !r.is_empty()) {
        chunk.refusal = true;
        chunk.text.push_str(&refusal);
    }
    chunk.reasoning_content = text(delta, "reasoning_content").unwrap_or_default();
    if let Some(calls) = delta["tool_calls"].as_array() {
        chunk.fragments = calls
            .iter()
            .map(|call| Fragment {
                index: call["index"].as_u64().unwrap_or(0),
                id: text(call, "id"),
                name: text(&call["function"], "name"),
                arguments: text(&call["function"], "arguments"),
            })
            .collect();
    }
    Ok(chunk)
}

/// Finish reasons and what they mean for the turn (openai-chat-streaming.md §2.4).
pub fn finish(reason: &str, refused: bool) -> Finish {
    Finish {
        policy: reason == "content_filter" || refused,
        token_limit: reason == "length",
        reason: reason.to_string(),
    }
}

/// What feeding a payload gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update {
    Piece(Piece),
    /// The stream is over (`[DONE]`, or the body ended after a finish reason).
    End,
}

/// Why the stream failed, and the codes for the log, if any.
pub type StreamFailure = (Failure, Option<String>);

/// The state of one streamed reply.
#[derive(Debug, Default)]
pub struct ChatStream {
    /// Names calls that came without an id, uniquely within the turn (`call_<round>_<i>`).
    round: u32,
    text: String,
    reasoning_content: String,
    refused: bool,
    calls: CallAssembler,
    calls_begun: bool,
    finish_reason: Option<String>,
    ended: bool,
    step: Option<ModelStep>,
    pub usage: Option<Usage>,
}

impl ChatStream {
    pub fn new(round: u32) -> Self {
        ChatStream {
            round,
            ..ChatStream::default()
        }
    }

    /// Whether a tool call has begun (its first fragment arrived).
    pub fn calling(&self) -> bool {
        self.calls_begun
    }

    /// Feeds one payload.
    pub fn push(&mut self, data: &str, api_key: &str) -> Result<Update, StreamFailure> {
        if self.ended {
            return Ok(Update::End);
        }
        let chunk =
            parse_chunk(data, api_key).map_err(|_| (Failure::UnreadableEvent, None::<String>))?;
        if chunk.usage.is_some() {
            self.usage = chunk.usage;
        }
        if let Some(error) = chunk.error {
            return Err((Failure::StreamError, Some(error.for_log())));
        }
        if chunk.done {
            self.ended = true;
            if self.finish_reason.is_none() {
                // `[DONE]` without a finish reason is still a complete stream: as `stop`.
                self.finish_reason = Some("stop".to_string());
                self.close_round();
                return Ok(Update::Piece(Piece {
                    text: String::new(),
                    finish: Some(finish("stop", self.refused)),
                }));
            }
            return Ok(Update::End);
        }
        if self.finish_reason.is_some() {
            // After the finish only usage (and `[DONE]`) is expected; nothing else counts.
            return Ok(Update::Piece(Piece::default()));
        }
        self.refused |= chunk.refusal;
        self.text.push_str(&chunk.text);
        self.reasoning_content.push_str(&chunk.reasoning_content);
        for fragment in chunk.fragments {
            self.calls_begun = true;
            self.calls.push(fragment);
        }
        let finish = match chunk.finish_reason {
            Some(reason) if reason == "error" => {
                return Err((
                    Failure::StreamError,
                    Some("finish_reason error".to_string()),
                ))
            }
            Some(reason) => {
                self.finish_reason = Some(reason.clone());
                self.close_round();
                Some(finish(&reason, self.refused))
            }
            None => None,
        };
        Ok(Update::Piece(Piece {
            text: chunk.text,
            finish,
        }))
    }

    /// The body ended, with the leftover of an unfinished event if any. After a finish reason
    /// the stream is complete even without `[DONE]`; without one it broke.
    pub fn end_of_body(
        &mut self,
        leftover: Option<&str>,
        api_key: &str,
    ) -> Result<Update, StreamFailure> {
        if let Some(leftover) = leftover {
            // The last event without its blank line: `data: [DONE]`, or a final chunk.
            let payload = leftover
                .strip_prefix("data:")
                .map(|p| p.strip_prefix(' ').unwrap_or(p));
            match payload {
                Some(payload) if !self.ended => return self.push(payload, api_key),
                Some(_) => {}
                None => {
                    let error = super::error::classify_error(200, leftover, api_key);
                    return Err((Failure::IncompleteStream, Some(error.for_log())));
                }
            }
        }
        Ok(self.end())
    }

    /// The end of the body: without a finish reason (or `[DONE]`) before it, a break, which
    /// the engine tells by the missing finish.
    fn end(&mut self) -> Update {
        self.ended = true;
        Update::End
    }

    /// Builds the round's step: the calls (arguments parsed) and the `assistant` message the
    /// follow-up request sends back.
    fn close_round(&mut self) {
        if self.step.is_some() {
            return;
        }
        let assembled = std::mem::take(&mut self.calls).finish();
        let mut calls = Vec::with_capacity(assembled.len());
        let mut tool_calls = Vec::with_capacity(assembled.len());
        for (i, call) in assembled.into_iter().enumerate() {
            let id = if call.id.is_empty() {
                format!("call_{}_{i}", self.round)
            } else {
                call.id
            };
            let arguments = if call.arguments.trim().is_empty() {
                "{}".to_string()
            } else {
                call.arguments
            };
            calls.push(FunctionCall {
                id: Some(id.clone()),
                name: call.name.clone(),
                args: parse_arguments(&arguments),
            });
            tool_calls.push(json!({
                "id": id,
                "type": "function",
                "function": {"name": call.name, "arguments": arguments},
            }));
        }
        let content = if self.text.is_empty() {
            Value::Null
        } else {
            Value::String(self.text.clone())
        };
        let mut message = json!({"role": "assistant", "content": content});
        if !tool_calls.is_empty() {
            message["tool_calls"] = json!(tool_calls);
        }
        if !self.reasoning_content.is_empty() {
            message["reasoning_content"] = json!(self.reasoning_content);
        }
        self.step = Some(ModelStep {
            parts: vec![message],
            calls,
        });
    }

    /// The round, once the stream has ended: empty if it never finished.
    pub fn take_step(&mut self) -> ModelStep {
        self.step.take().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::SseDecoder;

    /// A recorded-shape stream: role chunk, reasoning deltas, text split mid-word, two parallel
    /// calls whose fragments interleave and cut their arguments inside a key, an escape and a
    /// `\u` escape, the finish, the usage chunk with empty `choices`, `[DONE]`; CRLF framing and
    /// a comment line.
    fn recorded() -> String {
        let head = r#""id":"chatcmpl-1","object":"chat.completion.chunk","created":1765000000,"model":"gpt-4.1-mini""#;
        let chunk = |choice: &str| {
            format!(r#"data: {{{head},"choices":[{{"index":0,{choice}}}],"usage":null}}"#)
        };
        let lines = [
            ": OPENROUTER PROCESSING".to_string(),
            chunk(r#""delta":{"role":"assistant","content":""},"finish_reason":null"#),
            chunk(r#""delta":{"reasoning_content":"The caller wants"},"finish_reason":null"#),
            chunk(r#""delta":{"reasoning":" hours."},"finish_reason":null"#),
            chunk(r#""delta":{"content":"Let me ch"},"finish_reason":null"#),
            chunk(r#""delta":{"content":"eck. 😀"},"finish_reason":null"#),
            chunk(
                r#""delta":{"tool_calls":[{"index":0,"id":"call_a1","type":"function","function":{"name":"shop_hours","arguments":""}}]},"finish_reason":null"#,
            ),
            chunk(
                r#""delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"ci"}}]},"finish_reason":null"#,
            ),
            chunk(
                r#""delta":{"tool_calls":[{"index":1,"id":"call_b2","type":"function","function":{"name":"weather","arguments":"{\"note\": \"a \\\""}}]},"finish_reason":null"#,
            ),
            chunk(
                r#""delta":{"tool_calls":[{"index":0,"function":{"arguments":"ty\": \"Par"}}]},"finish_reason":null"#,
            ),
            chunk(
                r#""delta":{"tool_calls":[{"index":1,"function":{"arguments":"quote\\\" \\u00e9\"}"}}]},"finish_reason":null"#,
            ),
            chunk(
                r#""delta":{"tool_calls":[{"index":0,"function":{"arguments":"is\"}"}}]},"finish_reason":null"#,
            ),
            chunk(r#""delta":{},"finish_reason":"tool_calls""#),
            format!(
                r#"data: {{{head},"choices":[],"usage":{{"prompt_tokens":31,"completion_tokens":9,"total_tokens":40}}}}"#
            ),
            "data: [DONE]".to_string(),
        ];
        lines.iter().map(|line| format!("{line}\r\n\r\n")).collect()
    }

    /// Everything a stream gives, in a comparable form.
    #[derive(Debug, PartialEq)]
    struct Heard {
        pieces: Vec<Piece>,
        end: bool,
        step: ModelStep,
        usage: Option<Usage>,
    }

    fn play(chunks: &[&[u8]]) -> Heard {
        let mut decoder = SseDecoder::new();
        let mut stream = ChatStream::new(1);
        let mut pieces = Vec::new();
        let mut end = false;
        let mut feed = |data: &str, stream: &mut ChatStream| match stream.push(data, "") {
            Ok(Update::Piece(piece)) if piece != Piece::default() => pieces.push(piece),
            Ok(Update::Piece(_)) => {}
            Ok(Update::End) => end = true,
            Err(failure) => panic!("{failure:?}"),
        };
        for chunk in chunks {
            for data in decoder.push(chunk) {
                feed(&data, &mut stream);
            }
        }
        let leftover = decoder.finish();
        if let Ok(Update::End) = stream.end_of_body(leftover.as_deref(), "") {
            end = true;
        }
        // Merge text pieces: how the bytes were cut must not matter for what is said.
        let mut merged: Vec<Piece> = Vec::new();
        for piece in pieces {
            match merged.last_mut() {
                Some(last) if last.finish.is_none() => {
                    last.text.push_str(&piece.text);
                    last.finish = piece.finish;
                }
                _ => merged.push(piece),
            }
        }
        Heard {
            pieces: merged,
            end,
            step: stream.take_step(),
            usage: stream.usage.clone(),
        }
    }

    #[test]
    fn the_recorded_stream_says_its_text_and_assembles_both_calls() {
        let bytes = recorded();
        let heard = play(&[bytes.as_bytes()]);
        assert_eq!(
            heard.pieces,
            vec![Piece {
                text: "Let me check. 😀".into(),
                finish: Some(finish("tool_calls", false)),
            }]
        );
        assert!(heard.end);
        assert_eq!(
            heard.usage,
            Some(Usage {
                prompt_tokens: Some(31),
                output_tokens: Some(9),
                total_tokens: Some(40)
            })
        );
        assert_eq!(
            heard.step.calls,
            vec![
                FunctionCall {
                    id: Some("call_a1".into()),
                    name: "shop_hours".into(),
                    args: json!({"city": "Paris"}),
                },
                FunctionCall {
                    id: Some("call_b2".into()),
                    name: "weather".into(),
                    args: json!({"note": "a \"quote\" é"}),
                },
            ]
        );
        assert_eq!(
            heard.step.parts,
            vec![json!({
                "role": "assistant",
                "content": "Let me check. 😀",
                "tool_calls": [
                    {"id": "call_a1", "type": "function",
                     "function": {"name": "shop_hours", "arguments": "{\"city\": \"Paris\"}"}},
                    {"id": "call_b2", "type": "function",
                     "function": {"name": "weather", "arguments": "{\"note\": \"a \\\"quote\\\" \\u00e9\"}"}}
                ],
                "reasoning_content": "The caller wants"
            })]
        );
    }

    #[test]
    fn every_split_point_gives_the_same_events() {
        let bytes = recorded().into_bytes();
        let whole = play(&[&bytes]);
        for cut in 0..=bytes.len() {
            let (a, b) = bytes.split_at(cut);
            assert_eq!(play(&[a, b]), whole, "split at byte {cut}");
        }
        let lf = recorded().replace("\r\n", "\n").into_bytes();
        for cut in (0..=lf.len()).step_by(7) {
            let (a, b) = lf.split_at(cut);
            assert_eq!(play(&[a, b]), whole, "LF framing, split at byte {cut}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(play(&singles), whole, "one byte at a time");
    }

    #[test]
    fn mangled_streams_never_panic() {
        // Bytes flipped, dropped and repeated anywhere in the recorded stream, cut anywhere:
        // whatever comes of it is an answer or a failure, never a panic.
        const ALPHABET: &[u8] = b"{}[]\\\":,0a \r\n";
        let bytes = recorded().into_bytes();
        let mut rng = crate::test_rng::Rng::new(19);
        for _ in 0..400 {
            let mut mangled = bytes.clone();
            for _ in 0..1 + rng.below(6) {
                let at = rng.below(mangled.len());
                match rng.below(3) {
                    0 => mangled[at] = ALPHABET[rng.below(ALPHABET.len())],
                    1 => {
                        mangled.remove(at);
                    }
                    _ => {
                        let piece = mangled[at..(at + rng.below(40)).min(mangled.len())].to_vec();
                        mangled.splice(at..at, piece);
                    }
                }
            }
            mangled.truncate(rng.below(mangled.len() + 1));
            let mut decoder = SseDecoder::new();
            let mut stream = ChatStream::new(1);
            for data in decoder.push(&mangled) {
                let _ = stream.push(&data, "");
            }
            let _ = stream.end_of_body(decoder.finish().as_deref(), "");
            let _ = stream.take_step();
        }
    }

    #[test]
    fn fragments_assemble_by_index_and_a_new_id_at_a_used_index_is_a_new_call() {
        let fragment =
            |index, id: Option<&str>, name: Option<&str>, arguments: Option<&str>| Fragment {
                index,
                id: id.map(str::to_string),
                name: name.map(str::to_string),
                arguments: arguments.map(str::to_string),
            };
        let mut calls = CallAssembler::default();
        // Ollama: each call whole; LM Studio-like: index 0 reused, told apart by id.
        calls.push(fragment(0, Some("a"), Some("one"), Some("{\"x\":1}")));
        calls.push(fragment(0, Some("b"), Some("two"), Some("{}")));
        // A later fragment repeating the same id and an empty name is part of the same call.
        calls.push(fragment(0, Some("b"), Some(""), Some("")));
        calls.push(fragment(3, None, Some("three"), None));
        calls.push(fragment(3, Some(""), None, Some("{\"y\"")));
        calls.push(fragment(3, None, None, Some(":2}")));
        let assembled = calls.finish();
        let summary: Vec<(&str, &str, &str)> = assembled
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("a", "one", "{\"x\":1}"),
                ("b", "two", "{}"),
                ("", "three", "{\"y\":2}"),
            ]
        );
    }

    #[test]
    fn arguments_that_do_not_parse_are_kept_as_text() {
        assert_eq!(parse_arguments(""), json!({}));
        assert_eq!(parse_arguments(" {\"a\": [1]} "), json!({"a": [1]}));
        assert_eq!(parse_arguments("{\"a\": "), json!("{\"a\":"));
        assert_eq!(parse_arguments("[1, 2]"), json!("[1, 2]"));
        assert_eq!(parse_arguments("\"Paris\""), json!("\"Paris\""));
    }

    #[test]
    fn a_call_without_an_id_is_given_one() {
        let data = r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"name":"end_call","arguments":""}}]},"finish_reason":"stop"}]}"#;
        let mut stream = ChatStream::new(2);
        stream.push(data, "").unwrap();
        let step = stream.take_step();
        assert_eq!(step.calls[0].id.as_deref(), Some("call_2_0"));
        assert_eq!(step.calls[0].args, json!({}));
        assert_eq!(
            step.parts[0]["tool_calls"][0]["function"]["arguments"],
            "{}"
        );
        assert_eq!(step.parts[0]["content"], Value::Null);
    }

    #[test]
    fn finish_reasons_map_to_the_turn() {
        assert_eq!(
            finish("stop", false),
            Finish {
                reason: "stop".into(),
                policy: false,
                token_limit: false
            }
        );
        assert!(finish("length", false).token_limit);
        assert!(finish("content_filter", false).policy);
        assert!(
            finish("stop", true).policy,
            "a refusal delta is a policy stop"
        );
        let mut stream = ChatStream::new(1);
        let failed = stream.push(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"error"}]}"#,
            "",
        );
        assert_eq!(failed.unwrap_err().0, Failure::StreamError);
    }

    #[test]
    fn errors_inside_the_stream_fail_it_as_codes() {
        let mut stream = ChatStream::new(1);
        let failed = stream.push(
            r#"{"error":{"message":"Provider overloaded: sk-xyz","code":502,"metadata":{}}}"#,
            "sk-xyz",
        );
        assert_eq!(
            failed.unwrap_err(),
            (Failure::StreamError, Some("502 502".to_string()))
        );
        let mut stream = ChatStream::new(1);
        let failed = stream.push(r#"{"error":{"message":"boom","type":"server_error"}}"#, "");
        assert_eq!(
            failed.unwrap_err(),
            (Failure::StreamError, Some("500 server_error".to_string()))
        );
        assert_eq!(
            ChatStream::new(1).push("{not json", "").unwrap_err().0,
            Failure::UnreadableEvent
        );
    }

    #[test]
    fn how_the_body_ends_decides_complete_or_broken() {
        // A finish reason, then the body ends without [DONE]: complete.
        let mut stream = ChatStream::new(1);
        stream
            .push(
                r#"{"choices":[{"index":0,"delta":{"content":"Hi."},"finish_reason":"stop"}]}"#,
                "",
            )
            .unwrap();
        assert_eq!(stream.end_of_body(None, ""), Ok(Update::End));
        // [DONE] without its blank line at the very end, and without a finish: as `stop`.
        let mut stream = ChatStream::new(1);
        assert_eq!(
            stream.end_of_body(Some("data: [DONE]"), ""),
            Ok(Update::Piece(Piece {
                text: String::new(),
                finish: Some(finish("stop", false))
            }))
        );
        assert_eq!(stream.end_of_body(None, ""), Ok(Update::End));
        // The body just ends: no finish, a break.
        let mut stream = ChatStream::new(1);
        stream
            .push(
                r#"{"choices":[{"index":0,"delta":{"content":"Half a"},"finish_reason":null}]}"#,
                "",
            )
            .unwrap();
        assert_eq!(stream.end_of_body(None, ""), Ok(Update::End));
        assert_eq!(stream.take_step(), ModelStep::default());
        // An unframed error body.
        let mut stream = ChatStream::new(1);
        let failed = stream.end_of_body(
            Some(r#"{"error": {"message": "x", "type": "invalid_request_error"}}"#),
            "",
        );
        assert_eq!(
            failed.unwrap_err(),
            (
                Failure::IncompleteStream,
                Some("200 invalid_request_error".to_string())
            )
        );
    }
}

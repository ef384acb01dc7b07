//! An offline stand-in for Gemini's `streamGenerateContent?alt=sse` and for any OpenAI-compatible
//! `POST …/chat/completions`, for local development without a key: `MOCK_GEMINI=1
//! ./scripts/dev.sh` starts it and points the worker's Gemini at it; a `MODELS` entry whose
//! `base_url` is `http://127.0.0.1:8790/v1` talks to it over the OpenAI wire.
//!
//! It answers every request with a reply built from the caller's last message, streamed word by
//! word in the wire's real SSE format (OpenAI's with a usage chunk and `[DONE]`), slowly enough
//! to interrupt, and names the model it was asked for. Loopback only; std only.
//!
//! When the request declares tools (`TOOLS`), it also plays a model that calls them, so the
//! tool loop can be seen without a key: a message containing "check" or a declared tool's name
//! gets a `functionCall` of that tool (the first declared one for "check"), with arguments made
//! up from its schema; a message with "bye" calls `end_call` when it is declared. The follow-up
//! request, holding the `functionResponse`, is answered by saying the result in words.
//!
//! A summary request (a long call's running summary), on either wire, is answered at once with a summary written
//! the test harness's way (`tests/common/mock_summary.rs`): what the caller said, oldest first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

#[path = "../../tests/common/mock_summary.rs"]
mod mock_summary;

const DEFAULT_PORT: u16 = 8790;
/// Pause between words, like a model writing.
const WORD_GAP: Duration = Duration::from_millis(80);
/// Largest request body read (history windows are far smaller).
const MAX_BODY: usize = 4 * 1024 * 1024;

fn main() {
    let port = port_from_args().unwrap_or(DEFAULT_PORT);
    let listener = match TcpListener::bind(("127.0.0.1", port)) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("mock-gemini: cannot listen on 127.0.0.1:{port}: {e}");
            std::process::exit(1);
        }
    };
    // The bound address, not the asked one: `--port 0` lets the kernel pick a free port, and
    // whoever started us reads it from this line.
    match listener.local_addr() {
        Ok(addr) => eprintln!("mock-gemini: offline Gemini stand-in on http://{addr}"),
        Err(e) => {
            eprintln!("mock-gemini: cannot read the bound address: {e}");
            std::process::exit(1);
        }
    }
    for stream in listener.incoming().flatten() {
        thread::spawn(move || {
            if let Err(e) = serve(stream) {
                eprintln!("mock-gemini: {e}");
            }
        });
    }
}

fn port_from_args() -> Option<u16> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--port")?;
    args.get(at + 1)?.parse().ok()
}

fn serve(stream: TcpStream) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut content_length = 0usize;
    let mut line = String::new();
    reader.read_line(&mut line)?; // request line
    let path = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("content-length") {
                content_length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; content_length.min(MAX_BODY)];
    reader.read_exact(&mut body)?;
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let openai_wire = path
        .split('?')
        .next()
        .unwrap_or_default()
        .ends_with("/chat/completions");
    if mock_summary::is_summary_request(&request) {
        let summary = mock_summary::mock_summary(&request);
        return if openai_wire {
            openai::stream_whole(stream, &summary)
        } else {
            stream_call(stream, serde_json::json!({ "text": summary }))
        };
    }
    if openai_wire {
        let asked = openai::read(&request);
        let model = request["model"].as_str().unwrap_or("a model").to_string();
        return match answer_to(&asked, &model) {
            Answer::Call(part) => openai::stream_call(stream, &part),
            Answer::Words(reply) => openai::stream_reply(stream, &reply, &model),
        };
    }
    let model = path
        .split("/models/")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .unwrap_or("gemini")
        .to_string();
    match answer(&request, &model) {
        Answer::Call(part) => stream_call(stream, part),
        Answer::Words(reply) => stream_reply(stream, &reply),
    }
}

/// What a request asks, whatever its wire.
struct Asked {
    /// Each declared tool as Gemini writes it: `{name, description, parametersJsonSchema}`.
    declared: Vec<serde_json::Value>,
    last_user_text: String,
    calling_allowed: bool,
    /// When the request ends with tool answers: (name, `{"output"|"error": …}`) per call.
    tool_results: Option<Vec<(String, serde_json::Value)>>,
}

/// What the mock model does with one request.
enum Answer {
    /// One `functionCall` part, then the round ends.
    Call(serde_json::Value),
    /// A reply in words.
    Words(String),
}

fn answer(request: &serde_json::Value, model: &str) -> Answer {
    let asked = Asked {
        declared: declared_tools(request),
        last_user_text: last_user_text(request),
        calling_allowed: request["toolConfig"]["functionCallingConfig"]["mode"] != "NONE",
        tool_results: tool_results(request),
    };
    answer_to(&asked, model)
}

fn answer_to(asked: &Asked, model: &str) -> Answer {
    let declared = &asked.declared;
    if let Some(results) = &asked.tool_results {
        return Answer::Words(results_in_words(results));
    }
    let text = &asked.last_user_text;
    if asked.calling_allowed {
        if let Some(tool) = tool_asked_for(declared, text) {
            return Answer::Call(call_part(tool, text));
        }
    }
    let mut reply = reply_for(text, model);
    if let Some(name) = declared
        .iter()
        .filter_map(|t| t["name"].as_str())
        .find(|n| *n != END_CALL)
    {
        reply.push_str(&format!(" Say check to hear me call the {name} tool."));
    }
    Answer::Words(reply)
}

const END_CALL: &str = "end_call";

/// The request's function declarations (empty without tools).
fn declared_tools(request: &serde_json::Value) -> Vec<serde_json::Value> {
    request["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["functionDeclarations"].as_array())
        .flatten()
        .cloned()
        .collect()
}

/// The tool a message asks for: one named in it ("shop_hours" or "shop hours"), `end_call` for
/// a goodbye, else the first declared tool for "check".
fn tool_asked_for<'a>(
    declared: &'a [serde_json::Value],
    text: &str,
) -> Option<&'a serde_json::Value> {
    let text = text.to_lowercase();
    let name = |t: &serde_json::Value| t["name"].as_str().unwrap_or_default().to_lowercase();
    declared
        .iter()
        .find(|t| {
            let n = name(t);
            !n.is_empty() && (text.contains(&n) || text.contains(&n.replace('_', " ")))
        })
        .or_else(|| {
            text.contains("bye")
                .then(|| declared.iter().find(|t| name(t) == END_CALL))
                .flatten()
        })
        .or_else(|| {
            text.contains("check")
                .then(|| declared.iter().find(|t| name(t) != END_CALL))
                .flatten()
        })
}

/// A `functionCall` part for `tool`, its required arguments made up from the schema: a string
/// is the message's last word ("check the hours in Paris" → "Paris"), an enum its first value.
fn call_part(tool: &serde_json::Value, text: &str) -> serde_json::Value {
    let schema = &tool["parametersJsonSchema"];
    let last_word = text
        .split_whitespace()
        .last()
        .unwrap_or("something")
        .trim_matches(|c: char| !c.is_alphanumeric());
    let mut args = serde_json::Map::new();
    for name in schema["required"].as_array().into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        let property = &schema["properties"][name];
        let value = match (property["enum"].get(0), property["type"].as_str()) {
            (Some(first), _) => first.clone(),
            (None, Some("integer" | "number")) => 1.into(),
            (None, Some("boolean")) => true.into(),
            (None, Some("array")) => serde_json::json!([]),
            (None, Some("object")) => serde_json::json!({}),
            (None, _) => last_word.into(),
        };
        args.insert(name.to_string(), value);
    }
    serde_json::json!({
        "functionCall": {"name": tool["name"], "args": args, "id": "mock_call_1"},
        // Gemini 3 signs its calls; the worker must send this back verbatim.
        "thoughtSignature": "bW9jay1zaWduYXR1cmU="
    })
}

/// When the request ends with Gemini `functionResponse`s: each (name, response).
fn tool_results(request: &serde_json::Value) -> Option<Vec<(String, serde_json::Value)>> {
    let last = request["contents"].as_array()?.last()?;
    let results: Vec<(String, serde_json::Value)> = last["parts"]
        .as_array()?
        .iter()
        .filter_map(|p| p.get("functionResponse"))
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("the").to_string(),
                r["response"].clone(),
            )
        })
        .collect();
    (!results.is_empty()).then_some(results)
}

/// A sentence saying each tool answer.
fn results_in_words(results: &[(String, serde_json::Value)]) -> String {
    results
        .iter()
        .map(|(name, response)| {
            let spoken = name.replace('_', " ");
            if name == END_CALL {
                "Goodbye, thanks for calling.".to_string()
            } else if let Some(error) = response.get("error") {
                format!("The {spoken} tool failed: {}.", in_words(error))
            } else {
                format!("The {spoken} tool says: {}.", in_words(&response["output"]))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A JSON value as plain words: `{"open": true, "until": "19:00"}` → "open true, until 19:00".
fn in_words(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.trim_end_matches('.').to_string(),
        serde_json::Value::Object(fields) => fields
            .iter()
            .map(|(k, v)| format!("{} {}", k.replace('_', " "), in_words(v)))
            .collect::<Vec<_>>()
            .join(", "),
        serde_json::Value::Array(items) => {
            items.iter().map(in_words).collect::<Vec<_>>().join(", ")
        }
        serde_json::Value::Null => "nothing".to_string(),
        other => other.to_string(),
    }
}

/// One SSE event carrying `part` (a call, or a whole summary), finishing the round.
fn stream_call(mut stream: TcpStream, part: serde_json::Value) -> std::io::Result<()> {
    let response = serde_json::json!({
        "candidates": [{"content": {"parts": [part], "role": "model"}, "finishReason": "STOP"}],
        "modelVersion": "mock-gemini"
    });
    let event = format!("data: {response}\n\n");
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
          transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    write!(stream, "{:x}\r\n{event}\r\n0\r\n\r\n", event.len())?;
    stream.flush()
}

/// The text of the last `user` entry with text in the request's `contents`.
fn last_user_text(request: &serde_json::Value) -> String {
    request["contents"]
        .as_array()
        .and_then(|contents| {
            contents
                .iter()
                .rev()
                .find(|c| c["role"] == "user" && c["parts"][0]["text"].is_string())
        })
        .and_then(|c| c["parts"][0]["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn reply_for(user_text: &str, model: &str) -> String {
    let heard = user_text.lines().last().unwrap_or_default().trim();
    format!(
        "You said: {heard}. I am the offline mock model {model}, so I simply echo what I hear, one \
         word at a time, the way a real model streams its answer. Talk over me to try a barge-in."
    )
}

/// The OpenAI chat completions wire: what a request asks, and the streamed answers.
mod openai {
    use super::Asked;
    use serde_json::{json, Value};
    use std::io::Write;
    use std::net::TcpStream;
    use std::thread;

    pub fn read(request: &Value) -> Asked {
        let empty = Vec::new();
        let messages = request["messages"].as_array().unwrap_or(&empty);
        let declared = request["tools"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|t| {
                let f = &t["function"];
                json!({"name": f["name"], "description": f["description"],
                       "parametersJsonSchema": f["parameters"]})
            })
            .collect();
        let last_user_text = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        // Tool answers: the `tool` messages after the last assistant message with calls.
        let tool_results =
            (messages.last().map(|m| &m["role"]) == Some(&json!("tool"))).then(|| {
                let start = messages
                    .iter()
                    .rposition(|m| m["role"] == "assistant")
                    .unwrap_or(0);
                let calls = messages[start]["tool_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                messages[start + 1..]
                    .iter()
                    .map(|m| {
                        let name = calls
                            .iter()
                            .find(|c| c["id"] == m["tool_call_id"])
                            .and_then(|c| c["function"]["name"].as_str())
                            .unwrap_or("the")
                            .to_string();
                        let answer = m["content"]
                            .as_str()
                            .and_then(|c| serde_json::from_str(c).ok())
                            .unwrap_or(Value::Null);
                        (name, answer)
                    })
                    .collect()
            });
        Asked {
            declared,
            last_user_text,
            calling_allowed: request["tool_choice"] != "none",
            tool_results,
        }
    }

    fn head(stream: &mut TcpStream) -> std::io::Result<()> {
        stream.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
              transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
    }

    fn event(stream: &mut TcpStream, data: &str) -> std::io::Result<()> {
        let event = format!("data: {data}\n\n");
        write!(stream, "{:x}\r\n{event}\r\n", event.len())?;
        stream.flush()
    }

    fn chunk(delta: Value, finish: Option<&str>) -> String {
        json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 0,
               "model": "mock", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
               "usage": null})
        .to_string()
    }

    fn end(stream: &mut TcpStream, words: usize) -> std::io::Result<()> {
        let usage = json!({"id": "chatcmpl-mock", "object": "chat.completion.chunk",
            "created": 0, "model": "mock", "choices": [],
            "usage": {"prompt_tokens": 20, "completion_tokens": words, "total_tokens": 20 + words}});
        event(stream, &usage.to_string())?;
        event(stream, "[DONE]")?;
        stream.write_all(b"0\r\n\r\n")
    }

    /// The call as fragments: id and name first, then the arguments in two pieces.
    pub fn stream_call(mut stream: TcpStream, part: &Value) -> std::io::Result<()> {
        let call = &part["functionCall"];
        let arguments = call["args"].to_string();
        let (a, b) = arguments.split_at(arguments.len() / 2);
        head(&mut stream)?;
        event(
            &mut stream,
            &chunk(json!({"role": "assistant", "content": null}), None),
        )?;
        let first = json!({"tool_calls": [{"index": 0, "id": "mock_call_1", "type": "function",
            "function": {"name": call["name"], "arguments": ""}}]});
        event(&mut stream, &chunk(first, None))?;
        for piece in [a, b] {
            let more = json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
            event(&mut stream, &chunk(more, None))?;
        }
        event(&mut stream, &chunk(json!({}), Some("tool_calls")))?;
        end(&mut stream, 1)
    }

    /// `text` in one chunk (a whole summary), then the end.
    pub fn stream_whole(mut stream: TcpStream, text: &str) -> std::io::Result<()> {
        head(&mut stream)?;
        event(
            &mut stream,
            &chunk(json!({"role": "assistant", "content": text}), None),
        )?;
        event(&mut stream, &chunk(json!({}), Some("stop")))?;
        end(&mut stream, text.split(' ').count())
    }

    pub fn stream_reply(mut stream: TcpStream, reply: &str, _model: &str) -> std::io::Result<()> {
        head(&mut stream)?;
        event(
            &mut stream,
            &chunk(json!({"role": "assistant", "content": ""}), None),
        )?;
        let words = super::word_deltas(reply);
        for text in &words {
            // A write error means the worker hung up (barge-in): stop quietly.
            if event(&mut stream, &chunk(json!({"content": text}), None)).is_err() {
                return Ok(());
            }
            thread::sleep(super::WORD_GAP);
        }
        event(&mut stream, &chunk(json!({}), Some("stop")))?;
        end(&mut stream, words.len())
    }
}

/// The reply as a model streams it, a word per delta: "Hi there" is "Hi", " there".
fn word_deltas(reply: &str) -> Vec<String> {
    reply
        .split(' ')
        .enumerate()
        .map(|(i, word)| {
            if i == 0 {
                word.to_string()
            } else {
                format!(" {word}")
            }
        })
        .collect()
}

fn stream_reply(mut stream: TcpStream, reply: &str) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
          transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    let words = word_deltas(reply);
    for (i, text) in words.iter().enumerate() {
        let mut candidate = serde_json::json!({
            "content": { "parts": [{ "text": text }], "role": "model" }
        });
        if i + 1 == words.len() {
            candidate["finishReason"] = "STOP".into();
        }
        let response =
            serde_json::json!({ "candidates": [candidate], "modelVersion": "mock-gemini" });
        let event = format!("data: {response}\n\n");
        // A write error means the worker hung up (barge-in): stop quietly.
        if write!(stream, "{:x}\r\n{event}\r\n", event.len()).is_err() {
            return Ok(());
        }
        stream.flush()?;
        thread::sleep(WORD_GAP);
    }
    stream.write_all(b"0\r\n\r\n")
}

//! An offline stand-in for Gemini's `streamGenerateContent?alt=sse`, for local development
//! without a Google key: `MOCK_GEMINI=1 ./scripts/dev.sh` starts it and points the worker at it.
//!
//! It answers every request with a reply built from the caller's last message, streamed word by
//! word in Gemini's real SSE format, slowly enough to interrupt. Loopback only; std only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

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
    eprintln!("mock-gemini: offline Gemini stand-in on http://127.0.0.1:{port}");
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
    let reply = reply_for(&last_user_text(&body));
    stream_reply(stream, &reply)
}

/// The text of the last `user` entry in the request's `contents`.
fn last_user_text(body: &[u8]) -> String {
    let request: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    request["contents"]
        .as_array()
        .and_then(|contents| contents.iter().rev().find(|c| c["role"] == "user"))
        .and_then(|c| c["parts"][0]["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn reply_for(user_text: &str) -> String {
    let heard = user_text.lines().last().unwrap_or_default().trim();
    format!(
        "You said: {heard}. I am the offline mock model, so I simply echo what I hear, one \
         word at a time, the way a real model streams its answer. Talk over me to try a barge-in."
    )
}

fn stream_reply(mut stream: TcpStream, reply: &str) -> std::io::Result<()> {
    stream.write_all(
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n\
          transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
    )?;
    let words: Vec<&str> = reply.split(' ').collect();
    for (i, word) in words.iter().enumerate() {
        let text = if i == 0 {
            word.to_string()
        } else {
            format!(" {word}")
        };
        let mut candidate = serde_json::json!({
            "content": { "parts": [{ "text": text }], "role": "model" }
        });
        if i + 1 == words.len() {
            candidate["finishReason"] = "STOP".into();
        }
        let chunk = serde_json::json!({ "candidates": [candidate], "modelVersion": "mock-gemini" });
        let event = format!("data: {chunk}\n\n");
        // A write error means the worker hung up (barge-in): stop quietly.
        if write!(stream, "{:x}\r\n{event}\r\n", event.len()).is_err() {
            return Ok(());
        }
        stream.flush()?;
        thread::sleep(WORD_GAP);
    }
    stream.write_all(b"0\r\n\r\n")
}

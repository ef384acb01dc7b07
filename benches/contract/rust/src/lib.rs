//! The contract's floor, variant `hop_sql`, in Rust/wasm: a measurement twin of
//! `../worker.js` (see that file and BENCHMARKS.md, "The contract's floor"), written with the
//! same crates as our worker, so the bench can tell the cost of Rust/wasm from the cost of our
//! implementation of the contract.
//!
//! The Worker checks the Layercode signature, answers `data` itself and forwards every other
//! event's raw body to the conversation's SQLite Durable Object. The object records
//! `session.end`; a `message` reads the last 40 messages (one SQL read), calls Gemini, stores
//! the user message and an empty reply once the request has left, streams one `response.tts`
//! frame per event, then `response.end`, and stores the reply.

use std::pin::pin;
use std::task::Poll;

use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use worker::js_sys::{Date, Uint8Array};
use worker::wasm_bindgen_futures::{spawn_local, JsFuture};
use worker::web_sys::{TransformStream, WritableStreamDefaultWriter};
use worker::{
    console_error, durable_object, event, Context, DurableObject, Env, Error, Fetch, Headers,
    Method, Request, RequestInit, Response, ResponseBuilder, Result, SqlStorage, State,
};

const WINDOW: i64 = 40;
const TOLERANCE_SECS: f64 = 300.0;

#[event(fetch)]
async fn fetch(mut req: Request, env: Env, _ctx: Context) -> Result<Response> {
    let path = req.path();
    if path == "/health" {
        return Response::ok("ok");
    }
    if req.method() != Method::Post || path != "/agent" {
        return json(r#"{"error":"not found"}"#, 404);
    }
    let raw = req.bytes().await?;
    let header = req.headers().get("layercode-signature")?;
    let secret = env.secret("LAYERCODE_WEBHOOK_SECRET").map(|s| s.to_string());
    if !secret.is_ok_and(|secret| verify(&secret, header.as_deref(), &raw)) {
        return json(r#"{"error":"invalid signature"}"#, 401);
    }
    let event: Event = serde_json::from_slice(&raw)?;
    if event.kind == "data" {
        return json(r#"{"status":"ok"}"#, 200);
    }
    let name = event
        .conversation_id
        .ok_or_else(|| Error::RustError("no conversation_id".into()))?;
    let stub = env.durable_object("CONVERSATIONS")?.id_from_name(&name)?.get_stub()?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_body(Some(Uint8Array::from(raw.as_slice()).into()));
    let url = format!("https://conversation/{}", event.kind);
    stub.fetch_with_request(Request::new_with_init(&url, &init)?).await
}

/// The fields of a webhook this floor reads; the others are ignored.
#[derive(Deserialize)]
struct Event {
    #[serde(rename = "type", default)]
    kind: String,
    conversation_id: Option<String>,
    turn_id: Option<String>,
    text: Option<String>,
    session_id: Option<String>,
}

#[durable_object]
pub struct Conversation {
    sql: SqlStorage,
    env: Env,
}

impl DurableObject for Conversation {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        let schema = "CREATE TABLE IF NOT EXISTS messages (seq INTEGER PRIMARY KEY, turn_id TEXT, \
                      role TEXT, text TEXT);\
                      CREATE TABLE IF NOT EXISTS sessions (session_id TEXT PRIMARY KEY)";
        if let Err(e) = sql.exec(schema, None) {
            console_error!("contract-floor schema failed: {e}");
        }
        Conversation { sql, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let path = req.path();
        let event: Event = serde_json::from_slice(&req.bytes().await?)?;
        if path == "/session.end" {
            self.sql.exec(
                "INSERT OR REPLACE INTO sessions (session_id) VALUES (?)",
                vec![event.session_id.into()],
            )?;
            return json(r#"{"status":"ok"}"#, 200);
        }
        // Any other event is a turn, as in the JS (the bench sends only `message`).
        let mut contents = self.history()?;
        let text = event.text.unwrap_or_default();
        contents.push(Content {
            role: "user".into(),
            parts: vec![Part { text: text.clone() }],
        });
        let turn = Turn {
            sql: self.sql.clone(),
            url: format!(
                "{}/v1beta/models/{}:streamGenerateContent?alt=sse",
                self.env.var("GEMINI_API_BASE_URL")?,
                self.env.var("GEMINI_MODEL")?
            ),
            api_key: self.env.secret("GOOGLE_GENERATIVE_AI_API_KEY")?.to_string(),
            body: serde_json::to_string(&Body { contents })?,
            turn_id: event.turn_id,
            text,
        };
        let transform = TransformStream::new()?;
        let writer = transform.writable().get_writer()?;
        spawn_local(turn.run(writer));
        Ok(ResponseBuilder::new()
            .with_header("content-type", "text/event-stream")?
            .stream(transform.readable()))
    }
}

impl Conversation {
    /// The window of history the model sees, oldest first (one query, as the JS).
    fn history(&self) -> Result<Vec<Content>> {
        #[derive(Deserialize)]
        struct Rows {
            rows: String,
        }
        let rows: Vec<Rows> = self
            .sql
            .exec(
                "SELECT json_group_array(json_object('role', role, 'parts', \
                 json_array(json_object('text', text)))) AS rows \
                 FROM (SELECT role, text FROM messages WHERE text != '' ORDER BY seq DESC LIMIT ?)",
                vec![WINDOW.into()],
            )?
            .to_array()?; // not `one()`: it hangs on zero rows
        let mut contents: Vec<Content> = match rows.first() {
            Some(row) => serde_json::from_str(&row.rows)?,
            None => Vec::new(),
        };
        contents.reverse();
        Ok(contents)
    }
}

#[derive(Serialize, Deserialize)]
struct Content {
    role: String,
    parts: Vec<Part>,
}

#[derive(Serialize, Deserialize)]
struct Part {
    text: String,
}

#[derive(Serialize)]
struct Body {
    contents: Vec<Content>,
}

/// One streamed Gemini event: only the text of the first candidate's parts is read.
#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    candidates: Vec<Candidate>,
}

#[derive(Deserialize)]
struct Candidate {
    content: Option<ChunkContent>,
}

#[derive(Deserialize)]
struct ChunkContent {
    #[serde(default)]
    parts: Vec<ChunkPart>,
}

#[derive(Deserialize)]
struct ChunkPart {
    text: Option<String>,
}

/// A `response.tts` / `response.end` frame, fields in the JS's order.
#[derive(Serialize)]
struct Frame<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    turn_id: Option<&'a str>,
}

struct Turn {
    sql: SqlStorage,
    url: String,
    api_key: String,
    body: String,
    turn_id: Option<String>,
    text: String,
}

impl Turn {
    async fn run(self, writer: WritableStreamDefaultWriter) {
        let mut reply = String::new();
        if let Err(e) = self.speak(&writer, &mut reply).await {
            console_error!("contract-floor turn failed: {e}");
        }
        if let Err(e) = self.send(&writer, "response.end", None).await {
            console_error!("contract-floor turn failed: {e}");
        }
        if let Err(e) = JsFuture::from(writer.close()).await {
            console_error!("contract-floor close failed: {e:?}");
        }
        let finish = self.sql.exec(
            "UPDATE messages SET text = ? WHERE turn_id = ? AND role = 'model'",
            vec![reply.into(), self.turn_id.clone().into()],
        );
        if let Err(e) = finish {
            console_error!("contract-floor finish failed: {e}");
        }
    }

    async fn speak(&self, writer: &WritableStreamDefaultWriter, reply: &mut String) -> Result<()> {
        let headers = Headers::new();
        headers.set("content-type", "application/json")?;
        headers.set("x-goog-api-key", &self.api_key)?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(headers)
            .with_body(Some(self.body.as_str().into()));
        let fetch = Fetch::Request(Request::new_with_init(&self.url, &init)?);
        // Polled once, the future hands the request to the runtime; then the first write, so
        // that the object's output gate does not hold the request back (as the JS's `sent`).
        let mut sending = pin!(fetch.send());
        let early = futures::poll!(sending.as_mut());
        self.sql.exec(
            "INSERT INTO messages (turn_id, role, text) VALUES (?, 'user', ?), (?, 'model', '')",
            vec![
                self.turn_id.clone().into(),
                self.text.as_str().into(),
                self.turn_id.clone().into(),
            ],
        )?;
        let mut response = match early {
            Poll::Ready(response) => response?,
            Poll::Pending => sending.await?,
        };
        let mut bytes = response.stream()?;
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = bytes.next().await {
            pending.extend_from_slice(&chunk?);
            while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                let event = &pending[..end];
                let data = event.strip_prefix(b"data: ").unwrap_or(event);
                let chunk: Chunk = serde_json::from_slice(data)?;
                let content: String = chunk
                    .candidates
                    .into_iter()
                    .next()
                    .and_then(|candidate| candidate.content)
                    .map(|content| content.parts)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|part| part.text)
                    .collect();
                pending.drain(..end + 2);
                if !content.is_empty() {
                    reply.push_str(&content);
                    self.send(writer, "response.tts", Some(&content)).await?;
                }
            }
        }
        Ok(())
    }

    async fn send(
        &self,
        writer: &WritableStreamDefaultWriter,
        kind: &str,
        content: Option<&str>,
    ) -> Result<()> {
        let frame = Frame {
            kind,
            content,
            turn_id: self.turn_id.as_deref(),
        };
        let frame = format!("data: {}\n\n", serde_json::to_string(&frame)?);
        let chunk = Uint8Array::from(frame.as_bytes());
        JsFuture::from(writer.write_with_chunk(&chunk)).await?;
        Ok(())
    }
}

fn json(body: &str, status: u16) -> Result<Response> {
    Ok(ResponseBuilder::new()
        .with_status(status)
        .with_header("content-type", "application/json")?
        .fixed(body.as_bytes().to_vec()))
}

/// `layercode-signature: t=<unix secs>,v1=<hex HMAC-SHA256 of "t.body">`, within 5 minutes.
fn verify(secret: &str, header: Option<&str>, raw: &[u8]) -> bool {
    let (mut t, mut v1) = (None, None);
    for part in header.unwrap_or_default().split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = Some(value),
            Some(("v1", value)) => v1 = Some(value),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let mut expected = [0u8; 32];
    let Ok(secs) = t.parse::<u64>() else {
        return false;
    };
    if secret.is_empty()
        || hex::decode_to_slice(v1, &mut expected).is_err()
        || (Date::now() / 1000.0 - secs as f64).abs() > TOLERANCE_SECS
    {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(raw);
    mac.verify_slice(&expected).is_ok()
}

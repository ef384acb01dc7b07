//! One browser connection: the WebSocket upgrade (with the session-key check), then the session
//! loop that carries out what `protocol::Session` decides: socket messages, signed webhooks (one
//! thread each, so a streaming reply never blocks the socket), aborts and speech.

use std::collections::HashMap;
use std::io::{ErrorKind, Read};
use std::net::TcpStream;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use layercode_gemini_worker::{signature, sse::SseDecoder};
use serde_json::{json, Value};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::http::{self, Request, Target};
use super::protocol::{Action, ClientMessage, ReplyEvent, Session};
use super::{lock, speech, unix_ms, Shared};

/// How long the session loop waits for a browser message before it looks at webhook replies.
const POLL: Duration = Duration::from_millis(10);
/// The longest a webhook reply may stay silent (the worker's own turn limit is 60 s).
const WEBHOOK_READ_TIMEOUT: Duration = Duration::from_secs(120);
/// Error and JSON answers are short.
const ANSWER_LIMIT: usize = 64 * 1024;

/// What a webhook thread reports to its session.
enum Incoming {
    Reply(String, ReplyEvent),
    /// The reply's body ended, or the request failed.
    Closed(String),
    DataAnswer(String, Value),
}

/// Upgrades the request to a WebSocket if it carries a valid session key, then runs the session.
pub fn accept(mut stream: TcpStream, request: Request, shared: &Arc<Shared>) {
    let upgrade = request
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(client_key) = request.header("sec-websocket-key").filter(|_| upgrade) else {
        http::respond_json(
            &mut stream,
            426,
            &json!({"error": "this is the browser SDK's WebSocket"}),
        );
        return;
    };
    let session_key = request.param("client_session_key").unwrap_or_default();
    let Some(grant) = lock(&shared.keys).redeem(&session_key, Instant::now()) else {
        shared.log("socket refused: unknown, used or expired client_session_key");
        http::respond_json(
            &mut stream,
            401,
            &json!({"error": "invalid client_session_key"}),
        );
        return;
    };
    let accept_key = derive_accept_key(client_key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: {accept_key}\r\n\r\n"
    );
    if std::io::Write::write_all(&mut stream, head.as_bytes()).is_err()
        || stream.set_read_timeout(Some(POLL)).is_err()
    {
        return;
    }
    let Ok(raw) = stream.try_clone() else { return };
    let id = shared
        .ids
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    lock(&shared.sockets).push((id, raw));
    let ws = WebSocket::from_partially_read(stream, request.rest, Role::Server, None);
    let session_id = shared.mint("lc_sess");
    let session = Session::new(
        &session_id,
        &grant.conversation_id,
        &grant.agent_id,
        unix_ms(),
    );
    shared.log(&format!(
        "session {session_id} opened (conversation {})",
        grant.conversation_id
    ));
    Connection {
        ws,
        session,
        shared: Arc::clone(shared),
        aborts: HashMap::new(),
        spoken: 0,
    }
    .run();
    lock(&shared.sockets).retain(|(open, _)| *open != id);
}

struct Connection {
    ws: WebSocket<TcpStream>,
    session: Session,
    shared: Arc<Shared>,
    /// The streaming webhook of each turn in flight, to cut on barge-in.
    aborts: HashMap<String, http::Abort>,
    /// `delta_id` counter of `response.audio`.
    spoken: u64,
}

impl Connection {
    fn run(mut self) {
        let (tx, rx) = mpsc::channel();
        loop {
            match self.ws.read() {
                Ok(Message::Text(text)) => {
                    let message = ClientMessage::parse(text.as_str());
                    self.note(&message);
                    let actions = self.session.on_client(message, unix_ms());
                    self.execute(actions, &tx);
                }
                Ok(Message::Close(_)) => break,
                // Binary frames, pings and pongs: nothing to do (tungstenite answers pings).
                Ok(_) => {}
                Err(tungstenite::Error::Io(e))
                    if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
            if !self.drain(&rx, &tx) {
                break;
            }
            if self
                .shared
                .stopping
                .load(std::sync::atomic::Ordering::SeqCst)
            {
                break;
            }
        }
        self.close();
    }

    /// Hands webhook events to the session; false once the socket is gone.
    fn drain(&mut self, rx: &Receiver<Incoming>, tx: &Sender<Incoming>) -> bool {
        while let Ok(incoming) = rx.try_recv() {
            let now = unix_ms();
            let actions = match incoming {
                Incoming::Reply(turn_id, event) => self.session.on_reply(&turn_id, event, now),
                Incoming::Closed(turn_id) => {
                    self.aborts.remove(&turn_id);
                    self.session.on_reply_closed(&turn_id, now)
                }
                Incoming::DataAnswer(turn_id, answer) => {
                    self.session.on_data_answer(&turn_id, answer)
                }
            };
            if !self.execute(actions, tx) {
                return false;
            }
        }
        true
    }

    fn note(&self, message: &ClientMessage) {
        match message {
            ClientMessage::Text(_) if self.session.replying() => self.shared.log(&format!(
                "session {}: the caller typed over the reply (barge-in)",
                self.session.session_id
            )),
            ClientMessage::Unknown(kind) => self.shared.log(&format!(
                "session {}: ignored a message of unknown type {kind:?}",
                self.session.session_id
            )),
            ClientMessage::Invalid => self.shared.log(&format!(
                "session {}: ignored a message that is not a JSON object with a type",
                self.session.session_id
            )),
            _ => {}
        }
    }

    /// Carries out actions in order; false once the socket is gone.
    fn execute(&mut self, actions: Vec<Action>, tx: &Sender<Incoming>) -> bool {
        for action in actions {
            match action {
                Action::Send(message) => {
                    if self.ws.send(Message::text(message.to_string())).is_err() {
                        return false;
                    }
                }
                Action::Stream { turn_id, event } => self.stream(turn_id, &event, tx),
                Action::Post { turn_id, event } => self.post(turn_id, event, tx),
                Action::Abort { turn_id } => {
                    if let Some(abort) = self.aborts.remove(&turn_id) {
                        abort.abort();
                    }
                }
                Action::Speak { turn_id, text } => {
                    if !self.speak(&turn_id, &text) {
                        return false;
                    }
                }
            }
        }
        true
    }

    /// Starts a webhook answered with SSE on its own thread; its events come back through `tx`.
    fn stream(&mut self, turn_id: String, event: &Value, tx: &Sender<Incoming>) {
        let kind = event["type"].as_str().unwrap_or_default().to_string();
        let connected = self.open(event);
        let (stream, target, body, signature) = match connected {
            Ok(parts) => parts,
            Err(problem) => {
                self.shared.log(&format!("webhook {kind}: {problem}"));
                let _ = tx.send(Incoming::Closed(turn_id));
                return;
            }
        };
        let tx = tx.clone();
        let shared = Arc::clone(&self.shared);
        thread::spawn(move || {
            let headers = [("layercode-signature", signature.as_str())];
            match http::post(stream, &target, &headers, &body) {
                Ok(mut exchange)
                    if exchange.status == 200
                        && exchange.content_type.starts_with("text/event-stream") =>
                {
                    let mut decoder = SseDecoder::new();
                    let mut buf = [0u8; 4096];
                    loop {
                        match exchange.body.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => {
                                for payload in decoder.push(&buf[..n]) {
                                    let event = ReplyEvent::parse(&payload);
                                    if tx.send(Incoming::Reply(turn_id.clone(), event)).is_err() {
                                        return;
                                    }
                                }
                            }
                        }
                    }
                }
                Ok(mut exchange) => {
                    let text = exchange.body.read_text(ANSWER_LIMIT).unwrap_or_default();
                    shared.log(&format!(
                        "webhook {kind} answered {} ({}): {}; the agent stays silent this turn",
                        exchange.status,
                        exchange.content_type,
                        text.trim()
                    ));
                }
                Err(e) => shared.log(&format!("webhook {kind} failed: {e}")),
            }
            let _ = tx.send(Incoming::Closed(turn_id));
        });
    }

    /// Signs `event` and connects to the worker, registering the connection's abort handle
    /// under the event's turn id.
    fn open(&mut self, event: &Value) -> Result<(TcpStream, Target, Vec<u8>, String), String> {
        let target = self
            .shared
            .target()
            .ok_or("no worker URL yet (set it with --url)")?;
        let body = serde_json::to_vec(event).map_err(|e| e.to_string())?;
        let signature =
            signature::sign(&self.shared.options.webhook_secret, unix_ms() / 1000, &body);
        let (stream, abort) = http::connect(&target, WEBHOOK_READ_TIMEOUT)
            .map_err(|e| format!("cannot reach the worker at {}: {e}", target.url()))?;
        if let Some(turn_id) = event["turn_id"].as_str() {
            self.aborts.insert(turn_id.to_string(), abort);
        }
        self.shared.record(event);
        Ok((stream, target, body, signature))
    }

    /// A webhook answered with JSON (`data`); the answer comes back through `tx`.
    fn post(&mut self, turn_id: String, event: Value, tx: &Sender<Incoming>) {
        let connected = self.open(&event);
        self.aborts.remove(&turn_id);
        let (stream, target, body, signature) = match connected {
            Ok(parts) => parts,
            Err(problem) => {
                self.shared.log(&format!("webhook data: {problem}"));
                return;
            }
        };
        let tx = tx.clone();
        let shared = Arc::clone(&self.shared);
        thread::spawn(move || {
            let headers = [("layercode-signature", signature.as_str())];
            let answer = http::post(stream, &target, &headers, &body).and_then(|mut exchange| {
                let text = exchange.body.read_text(ANSWER_LIMIT)?;
                Ok((exchange.status, text))
            });
            match answer {
                Ok((200, text)) => match serde_json::from_str::<Value>(&text) {
                    Ok(value) => {
                        let _ = tx.send(Incoming::DataAnswer(turn_id, value));
                    }
                    Err(_) => shared.log("webhook data: the answer is not JSON"),
                },
                Ok((status, text)) => {
                    shared.log(&format!("webhook data answered {status}: {}", text.trim()));
                }
                Err(e) => shared.log(&format!("webhook data failed: {e}")),
            }
        });
    }

    /// Speaks `text` as `response.audio` messages; false once the socket is gone.
    fn speak(&mut self, turn_id: &str, text: &str) -> bool {
        if !self.shared.options.speech {
            return true;
        }
        let chunks = match speech::synthesize(text) {
            Ok(chunks) => chunks,
            Err(problem) => {
                self.shared.log(&format!("speech: {problem}"));
                return true;
            }
        };
        for content in chunks {
            self.spoken += 1;
            let message = json!({
                "type": "response.audio",
                "content": content,
                "delta_id": format!("{turn_id}_audio_{}", self.spoken),
                "turn_id": turn_id,
            });
            if self.ws.send(Message::text(message.to_string())).is_err() {
                return false;
            }
        }
        true
    }

    /// The browser is gone: abort what streams, then `session.end` with the transcript.
    fn close(mut self) {
        let (actions, end) = self.session.on_close(unix_ms());
        for action in actions {
            if let Action::Abort { turn_id } = action {
                if let Some(abort) = self.aborts.remove(&turn_id) {
                    abort.abort();
                }
            }
        }
        let session_id = self.session.session_id.clone();
        let outcome = self
            .open(&end)
            .and_then(|(stream, target, body, signature)| {
                let headers = [("layercode-signature", signature.as_str())];
                let mut exchange =
                    http::post(stream, &target, &headers, &body).map_err(|e| e.to_string())?;
                let _ = exchange.body.read_text(ANSWER_LIMIT);
                Ok(exchange.status)
            });
        match outcome {
            Ok(status) => self.shared.log(&format!(
                "session {session_id} closed: session.end answered {status}"
            )),
            Err(problem) => self.shared.log(&format!(
                "session {session_id} closed: session.end failed: {problem}"
            )),
        }
        let _ = self.ws.close(None);
    }
}

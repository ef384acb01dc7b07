//! The stand-in over real sockets, against a fake worker: authorize, the socket's session-key
//! check, every client message type, streamed replies, barge-in and `session.end`.

use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use layercode_gemini_worker::signature;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use super::http::{self, Target};
use super::{unix_ms, Options, Server, AUTHORIZE_PATH, SOCKET_PATH};

const SECRET: &str = "sim_test_secret";
const API_KEY: &str = "sim_test_api_key";
const AGENT: &str = "agent_test";
/// Every wait in these tests ends within this (a deadline, not a pause).
const WAIT: Duration = Duration::from_secs(10);

/// What the fake worker saw.
#[derive(Debug)]
enum Seen {
    Webhook(Value),
    /// The connection of a streaming reply was closed by the stand-in (barge-in).
    HungUp(String),
}

/// A fake worker: verifies each webhook's signature and answers like ours, word for word;
/// a message "slow" gets one word, then a reply that never ends.
fn fake_worker() -> (String, Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let tx = tx.clone();
            thread::spawn(move || answer(stream, &tx));
        }
    });
    (url, rx)
}

fn answer(mut stream: TcpStream, seen: &Sender<Seen>) {
    use std::io::{Read, Write};
    let request = http::read_request(&mut stream).unwrap();
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/agent")
    );
    signature::verify(
        request.header("layercode-signature"),
        &request.body,
        &[SECRET.to_string()],
        unix_ms() / 1000,
        300,
    )
    .expect("a valid signature over the exact body");
    let event: Value = serde_json::from_slice(&request.body).unwrap();
    let _ = seen.send(Seen::Webhook(event.clone()));
    let turn = event["turn_id"].as_str().unwrap_or_default().to_string();
    let sse =
        |events: &[Value]| -> String { events.iter().map(|e| format!("data: {e}\n\n")).collect() };
    let tts = |text: &str| json!({"type": "response.tts", "content": text, "turn_id": turn});
    let end = json!({"type": "response.end", "turn_id": turn});
    let reply = match (event["type"].as_str(), event["text"].as_str()) {
        (Some("session.start"), _) => Some(sse(&[tts("Hello."), end])),
        (Some("message"), Some("slow")) => {
            stream
                .write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n",
                )
                .unwrap();
            stream.write_all(sse(&[tts("One")]).as_bytes()).unwrap();
            // Then silence, until the stand-in hangs up.
            let mut buf = [0u8; 64];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            let _ = seen.send(Seen::HungUp(turn));
            return;
        }
        (Some("message"), Some(text)) => Some(sse(&[
            tts("You said "),
            json!({"type": "response.data", "content": {"type": "tool", "status": "done"},
                   "turn_id": turn}),
            tts(&format!("{text}.")),
            end,
        ])),
        _ => None,
    };
    let (content_type, body) = match reply {
        Some(body) => ("text/event-stream", body),
        None if event["type"] == "data" => ("application/json", r#"{"status":"ok"}"#.into()),
        None => ("application/json", "{}".into()),
    };
    http::respond(&mut stream, 200, content_type, body.as_bytes()).unwrap();
}

fn start(worker: &str) -> Server {
    start_with(Some(Target::parse(worker).unwrap()))
}

fn start_with(webhook_url: Option<Target>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    Server::start(
        listener,
        Options {
            agent_id: AGENT.into(),
            api_key: Some(API_KEY.into()),
            webhook_secret: SECRET.into(),
            webhook_url,
            speech: false,
            log: Box::new(|_| {}),
        },
    )
    .unwrap()
}

/// A POST to the stand-in's REST API with `key` as the bearer key.
fn rest(server: &Server, path: &str, key: &str, body: &str) -> (u16, Value) {
    let target = Target {
        authority: server.addr().to_string(),
        path: path.into(),
    };
    let (stream, _) = http::connect(&target, WAIT).unwrap();
    let bearer = format!("Bearer {key}");
    let mut exchange = http::post(
        stream,
        &target,
        &[("authorization", &bearer)],
        body.as_bytes(),
    )
    .unwrap();
    let text = exchange.body.read_text(1 << 16).unwrap();
    (exchange.status, serde_json::from_str(&text).unwrap())
}

/// `POST authorize_session` as the worker sends it.
fn authorize(server: &Server, body: &str) -> (u16, Value) {
    rest(server, AUTHORIZE_PATH, API_KEY, body)
}

fn session_key(server: &Server) -> (String, String) {
    let (status, body) = authorize(server, &format!(r#"{{"agent_id":"{AGENT}"}}"#));
    assert_eq!(status, 200, "{body}");
    (
        body["client_session_key"].as_str().unwrap().to_string(),
        body["conversation_id"].as_str().unwrap().to_string(),
    )
}

type Socket = WebSocket<TcpStream>;

fn open(server: &Server, key: &str) -> Result<Socket, tungstenite::Error> {
    let stream = TcpStream::connect(server.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let url = format!(
        "ws://{}{SOCKET_PATH}?client_session_key={key}",
        server.addr()
    );
    tungstenite::client(url.as_str(), stream)
        .map(|(socket, _)| socket)
        .map_err(|e| match e {
            tungstenite::HandshakeError::Failure(e) => e,
            tungstenite::HandshakeError::Interrupted(_) => panic!("blocking handshake"),
        })
}

fn send(socket: &mut Socket, message: Value) {
    socket.send(Message::text(message.to_string())).unwrap();
}

fn send_raw(socket: &mut Socket, text: &str) {
    socket.send(Message::text(text.to_string())).unwrap();
}

/// The next JSON message from the stand-in.
fn next(socket: &mut Socket) -> Value {
    loop {
        match socket.read().expect("a message within the deadline") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Close(_) => panic!("the stand-in closed the socket"),
            _ => {}
        }
    }
}

/// `(type, content or role)` of the next `n` messages.
fn take(socket: &mut Socket, n: usize) -> Vec<(String, Value)> {
    (0..n)
        .map(|_| {
            let m = next(socket);
            let detail = m
                .get("content")
                .or(m.get("role"))
                .cloned()
                .unwrap_or_default();
            (m["type"].as_str().unwrap().to_string(), detail)
        })
        .collect()
}

fn pair(kind: &str, detail: Value) -> (String, Value) {
    (kind.to_string(), detail)
}

fn webhook(seen: &Receiver<Seen>) -> Value {
    match seen.recv_timeout(WAIT).expect("a webhook") {
        Seen::Webhook(event) => event,
        other => panic!("expected a webhook, saw {other:?}"),
    }
}

#[test]
fn a_bad_or_reused_session_key_is_refused_before_the_upgrade() {
    let (worker, _seen) = fake_worker();
    let server = start(&worker);
    for key in ["", "lc_sesskey_guessed"] {
        match open(&server, key) {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected 401 for {key:?}, got {other:?}"),
        }
    }
    let (key, _) = session_key(&server);
    let first = open(&server, &key).expect("a fresh key opens the socket");
    match open(&server, &key) {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
        other => panic!("a key opens one socket only, got {other:?}"),
    }
    drop(first);
}

#[test]
fn authorize_checks_the_bearer_key_and_the_agent() {
    let (worker, _seen) = fake_worker();
    let server = start(&worker);
    let (status, body) = authorize(&server, r#"{"agent_id":"someone_else"}"#);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid agent_id"))
    );
    let (_, conversation) = session_key(&server);
    let resume = format!(r#"{{"agent_id":"{AGENT}","conversation_id":"{conversation}"}}"#);
    let (status, body) = authorize(&server, &resume);
    assert_eq!(
        (status, body["conversation_id"].as_str()),
        (200, Some(conversation.as_str()))
    );
}

#[test]
fn a_session_runs_every_client_message_type_and_ends_with_session_end() {
    let (worker, seen) = fake_worker();
    let server = start(&worker);
    let (key, conversation) = session_key(&server);
    let mut socket = open(&server, &key).unwrap();

    send(&mut socket, json!({"type": "client.ready"}));
    let start = webhook(&seen);
    assert_eq!(start["type"], "session.start");
    assert_eq!(start["conversation_id"], conversation.as_str());
    assert_eq!(
        take(&mut socket, 4),
        [
            pair("turn.start", json!("assistant")),
            pair("response.text", json!("Hello.")),
            pair("response.end", Value::Null),
            pair("turn.end", json!("assistant")),
        ]
    );

    // Accepted and ignored: audio, voice activity, push-to-talk, playback reports, a second
    // ready, unknown types and messages that are not JSON objects with a type.
    send(
        &mut socket,
        json!({"type": "client.audio", "content": "AAAA"}),
    );
    send(
        &mut socket,
        json!({"type": "vad_events", "event": "vad_start"}),
    );
    send(
        &mut socket,
        json!({"type": "trigger.turn.start", "role": "user"}),
    );
    send(
        &mut socket,
        json!({"type": "trigger.turn.end", "role": "user"}),
    );
    send(
        &mut socket,
        json!({"type": "trigger.response.audio.replay_finished", "reason": "completed"}),
    );
    send(&mut socket, json!({"type": "client.ready"}));
    send(&mut socket, json!({"type": "client.something_new", "x": 1}));
    send_raw(&mut socket, "not json");
    send_raw(&mut socket, r#"{"no": "type"}"#);

    // A typed turn: the very next messages are its own.
    send(
        &mut socket,
        json!({"type": "client.response.text", "content": "hi there"}),
    );
    let message = webhook(&seen);
    assert_eq!(message["type"], "message");
    assert_eq!(message["text"], "hi there");
    let turn = message["turn_id"].clone();
    assert_eq!(
        take(&mut socket, 6),
        [
            pair("user.transcript", json!("hi there")),
            pair("turn.start", json!("assistant")),
            pair("response.text", json!("You said ")),
            pair("response.data", json!({"type": "tool", "status": "done"})),
            pair("response.text", json!("hi there.")),
            pair("response.end", Value::Null),
        ]
    );
    assert_eq!(next(&mut socket)["turn_id"], turn);

    // Structured data: a `data` webhook, its JSON answer back as `response.data`.
    send(
        &mut socket,
        json!({"type": "client.response.data", "data": {"button": "yes"}}),
    );
    let data = webhook(&seen);
    assert_eq!(
        (data["type"].as_str(), &data["data"]),
        (Some("data"), &json!({"button": "yes"}))
    );
    let answer = next(&mut socket);
    assert_eq!(answer["type"], "response.data");
    assert_eq!(answer["content"], json!({"status": "ok"}));

    socket.close(None).unwrap();
    let end = webhook(&seen);
    assert_eq!(end["type"], "session.end");
    assert_eq!(end["agent_id"], AGENT);
    let transcript: Vec<(&str, &str)> = end["transcript"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["role"].as_str().unwrap(), t["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        transcript,
        [
            ("assistant", "Hello."),
            ("user", "hi there"),
            ("assistant", "You said hi there.")
        ]
    );
    let types: Vec<Value> = server
        .webhooks()
        .iter()
        .map(|w| w["type"].clone())
        .collect();
    assert_eq!(
        types,
        [
            json!("session.start"),
            json!("message"),
            json!("data"),
            json!("session.end")
        ]
    );
}

#[test]
fn typing_over_a_reply_hangs_up_on_the_worker_and_the_next_message_says_what_was_delivered() {
    let (worker, seen) = fake_worker();
    let server = start(&worker);
    let (key, _) = session_key(&server);
    let mut socket = open(&server, &key).unwrap();

    send(
        &mut socket,
        json!({"type": "client.response.text", "content": "slow"}),
    );
    let slow = webhook(&seen);
    assert_eq!(
        take(&mut socket, 3),
        [
            pair("user.transcript", json!("slow")),
            pair("turn.start", json!("assistant")),
            pair("response.text", json!("One")),
        ]
    );

    send(
        &mut socket,
        json!({"type": "client.response.text", "content": "stop"}),
    );
    let (first, second) = (
        seen.recv_timeout(WAIT).unwrap(),
        seen.recv_timeout(WAIT).unwrap(),
    );
    // The hang-up and the next webhook race; both must come.
    let (hung_up, next_message) = match (first, second) {
        (Seen::HungUp(turn), Seen::Webhook(event)) | (Seen::Webhook(event), Seen::HungUp(turn)) => {
            (turn, event)
        }
        other => panic!("expected a hang-up and a webhook, saw {other:?}"),
    };
    assert_eq!(hung_up, slow["turn_id"].as_str().unwrap());
    assert_eq!(next_message["text"], "stop");
    assert_eq!(
        next_message["interruption_context"],
        json!({"previous_turn_interrupted": true, "words_heard": 1, "text_heard": "One",
               "assistant_turn_id": slow["turn_id"]})
    );
    assert_eq!(
        take(&mut socket, 2),
        [
            pair("turn.start", json!("user")),
            pair("user.transcript", json!("stop"))
        ]
    );
}

#[test]
fn other_paths_and_methods_are_refused() {
    let (worker, _seen) = fake_worker();
    let server = start(&worker);
    let target = |path: &str| Target {
        authority: server.addr().to_string(),
        path: path.into(),
    };
    for (path, status) in [("/nope", 404), (SOCKET_PATH, 405)] {
        let (stream, _) = http::connect(&target(path), WAIT).unwrap();
        let exchange = http::post(stream, &target(path), &[], b"{}").unwrap();
        assert_eq!(exchange.status, status, "{path}");
    }
}

#[test]
fn the_agents_webhook_url_is_set_through_the_rest_api() {
    let (worker, seen) = fake_worker();
    let server = start_with(None);
    let agent = format!("/v1/agents/{AGENT}");
    let body = format!(r#"{{"webhook_url":"{worker}"}}"#);
    assert_eq!(rest(&server, &agent, "wrong", &body).0, 400);
    assert_eq!(
        rest(&server, "/v1/agents/someone_else", API_KEY, &body).0,
        404
    );
    assert_eq!(
        rest(&server, &agent, API_KEY, r#"{"webhook_url":"https://x"}"#).0,
        400
    );
    let (status, answer) = rest(&server, &agent, API_KEY, &body);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["webhook_url"], format!("{worker}/agent"));

    let (key, _) = session_key(&server);
    let mut socket = open(&server, &key).unwrap();
    send(&mut socket, json!({"type": "client.ready"}));
    assert_eq!(webhook(&seen)["type"], "session.start");
}

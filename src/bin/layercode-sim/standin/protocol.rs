//! One browser session as Layercode runs it, without any I/O: the SDK's socket messages and our
//! webhook replies go in, what to send and whom to call comes out. The socket layer
//! (`socket.rs`) does the sending, the webhooks and the audio.
//!
//! What it imitates (layercode-client-protocol.md §2–§4): `client.ready` starts the session with
//! a `session.start` webhook whose reply is the welcome; a typed turn (`client.response.text`)
//! becomes `user.transcript` for the browser and a signed `message` webhook; each `response.tts`
//! of the reply becomes `response.text` (and speech), `response.data` is passed on, and
//! `response.end` ends the agent's turn (`response.end`, `turn.end`). Typing while a reply still
//! streams is a barge-in: the webhook request is aborted, the browser gets `turn.start` for the
//! user, and the next `message` carries `interruption_context` with what was delivered.
//! `client.response.data` becomes a `data` webhook whose JSON answer comes back as
//! `response.data`. Audio, voice activity and push-to-talk triggers are accepted and ignored:
//! there is no speech recognition here. Unknown types are ignored, as Layercode's SDK ignores
//! unknown server messages.

use serde_json::{json, Value};

/// A message from the browser SDK.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Ready,
    /// Microphone audio: accepted and ignored (no speech recognition here).
    Audio,
    /// `vad_events`: accepted and ignored.
    Vad,
    /// `trigger.turn.start` / `trigger.turn.end` (push-to-talk): accepted and ignored.
    TurnTrigger,
    /// `trigger.response.audio.replay_finished`: accepted and ignored.
    ReplayFinished,
    /// A typed turn.
    Text(String),
    /// `client.response.data`.
    Data(Value),
    /// A well-formed message of a type this stand-in does not know.
    Unknown(String),
    /// Not a JSON object with a string `type`.
    Invalid,
}

impl ClientMessage {
    pub fn parse(text: &str) -> ClientMessage {
        let Ok(Value::Object(message)) = serde_json::from_str::<Value>(text) else {
            return ClientMessage::Invalid;
        };
        let Some(kind) = message.get("type").and_then(Value::as_str) else {
            return ClientMessage::Invalid;
        };
        match kind {
            "client.ready" => ClientMessage::Ready,
            "client.audio" => ClientMessage::Audio,
            "vad_events" => ClientMessage::Vad,
            "trigger.turn.start" | "trigger.turn.end" => ClientMessage::TurnTrigger,
            "trigger.response.audio.replay_finished" => ClientMessage::ReplayFinished,
            "client.response.text" => match message.get("content").and_then(Value::as_str) {
                Some(content) => ClientMessage::Text(content.to_string()),
                None => ClientMessage::Invalid,
            },
            "client.response.data" => {
                ClientMessage::Data(message.get("data").cloned().unwrap_or(Value::Null))
            }
            other => ClientMessage::Unknown(other.to_string()),
        }
    }
}

/// An event of our SSE reply, as far as Layercode cares.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplyEvent {
    Tts(String),
    Data(Value),
    End,
    /// Anything else (ignored, as Layercode documents no other type).
    Other,
}

impl ReplyEvent {
    pub fn parse(payload: &str) -> ReplyEvent {
        let Ok(event) = serde_json::from_str::<Value>(payload) else {
            return ReplyEvent::Other;
        };
        match (event["type"].as_str(), event["content"].as_str()) {
            (Some("response.tts"), Some(text)) => ReplyEvent::Tts(text.to_string()),
            (Some("response.data"), _) => ReplyEvent::Data(event["content"].clone()),
            (Some("response.end"), _) => ReplyEvent::End,
            _ => ReplyEvent::Other,
        }
    }
}

/// What the session asks the socket layer to do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// A message for the browser.
    Send(Value),
    /// A signed webhook answered with SSE (`session.start`, `message`); its events come back
    /// through [`Session::on_reply`] and its end through [`Session::on_reply_closed`].
    Stream { turn_id: String, event: Value },
    /// A signed webhook answered with JSON (`data`); the answer comes back through
    /// [`Session::on_data_answer`].
    Post { turn_id: String, event: Value },
    /// Cancel the streaming webhook of this turn (close its connection), as Layercode does on
    /// barge-in.
    Abort { turn_id: String },
    /// Words to speak as `response.audio` for this turn (one or more whole sentences).
    Speak { turn_id: String, text: String },
}

/// The reply being streamed.
#[derive(Debug, Clone)]
struct Reply {
    turn_id: String,
    /// Every `response.text` content sent to the browser, joined.
    delivered: String,
    /// How much of `delivered` has been handed to [`Action::Speak`].
    spoken: usize,
    /// Whether `turn.start` (assistant) was sent.
    announced: bool,
}

/// One connection of one conversation.
#[derive(Debug)]
pub struct Session {
    pub session_id: String,
    pub conversation_id: String,
    pub agent_id: String,
    started_ms: u64,
    turns: u32,
    ready: bool,
    transcript: Vec<Value>,
    /// The context of the reply the caller cut off, for the next `message` (Layercode reports
    /// only the immediately previous turn).
    interruption: Option<Value>,
    reply: Option<Reply>,
}

impl Session {
    pub fn new(session_id: &str, conversation_id: &str, agent_id: &str, now_ms: u64) -> Session {
        Session {
            session_id: session_id.to_string(),
            conversation_id: conversation_id.to_string(),
            agent_id: agent_id.to_string(),
            started_ms: now_ms,
            turns: 0,
            ready: false,
            transcript: Vec::new(),
            interruption: None,
            reply: None,
        }
    }

    /// `<session>_turn_<n>`: unique in the conversation across sessions (the worker ignores a
    /// turn id it has seen, as a redelivery).
    fn next_turn_id(&mut self) -> String {
        self.turns += 1;
        format!("{}_turn_{}", self.session_id, self.turns)
    }

    fn event(&self, kind: &str, turn_id: &str) -> Value {
        json!({
            "type": kind,
            "session_id": self.session_id,
            "conversation_id": self.conversation_id,
            "turn_id": turn_id,
        })
    }

    /// Whether a reply is streaming (the caller typing now would cut it off).
    pub fn replying(&self) -> bool {
        self.reply.is_some()
    }

    pub fn on_client(&mut self, message: ClientMessage, now_ms: u64) -> Vec<Action> {
        match message {
            ClientMessage::Ready if !self.ready => {
                self.ready = true;
                let turn_id = self.next_turn_id();
                let event = self.event("session.start", &turn_id);
                self.begin_reply(&turn_id);
                vec![Action::Stream { turn_id, event }]
            }
            ClientMessage::Text(text) if !text.trim().is_empty() => self.typed(text, now_ms),
            ClientMessage::Data(data) => {
                let turn_id = self.next_turn_id();
                let mut event = self.event("data", &turn_id);
                event["data"] = data;
                vec![Action::Post { turn_id, event }]
            }
            // A second `client.ready`, blank text, audio, voice activity, push-to-talk
            // triggers, playback reports, unknown and invalid messages: nothing to do.
            _ => Vec::new(),
        }
    }

    fn typed(&mut self, text: String, now_ms: u64) -> Vec<Action> {
        let mut actions = self.barge_in(now_ms);
        let turn_id = self.next_turn_id();
        actions.push(Action::Send(json!({
            "type": "user.transcript", "content": text, "turn_id": turn_id,
        })));
        self.transcript
            .push(json!({"role": "user", "text": text, "timestamp": now_ms}));
        let mut event = self.event("message", &turn_id);
        event["text"] = Value::String(text);
        if let Some(context) = self.interruption.take() {
            event["interruption_context"] = context;
        }
        self.begin_reply(&turn_id);
        actions.push(Action::Stream { turn_id, event });
        actions
    }

    /// The caller cut in while a reply streams: abort its webhook, tell the browser the user's
    /// turn started, and keep what was delivered for the next message.
    fn barge_in(&mut self, now_ms: u64) -> Vec<Action> {
        let Some(reply) = self.reply.take() else {
            return Vec::new();
        };
        let heard = normalise(&reply.delivered);
        let words = heard.split_whitespace().count();
        self.interruption = Some(json!({
            "previous_turn_interrupted": true,
            "words_heard": words,
            "text_heard": heard,
            "assistant_turn_id": reply.turn_id,
        }));
        if !heard.is_empty() {
            self.transcript
                .push(json!({"role": "assistant", "text": heard, "timestamp": now_ms}));
        }
        vec![
            Action::Abort {
                turn_id: reply.turn_id.clone(),
            },
            Action::Send(json!({"type": "turn.start", "role": "user", "turn_id": reply.turn_id})),
        ]
    }

    fn begin_reply(&mut self, turn_id: &str) {
        self.reply = Some(Reply {
            turn_id: turn_id.to_string(),
            delivered: String::new(),
            spoken: 0,
            announced: false,
        });
    }

    /// The reply of `turn_id`, if it is the one streaming (a cut-off reply's late events are
    /// dropped).
    fn reply_of(&mut self, turn_id: &str) -> Option<&mut Reply> {
        self.reply.as_mut().filter(|r| r.turn_id == turn_id)
    }

    pub fn on_reply(&mut self, turn_id: &str, event: ReplyEvent, now_ms: u64) -> Vec<Action> {
        let Some(reply) = self.reply_of(turn_id) else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        // The agent's turn starts with the first thing it says or shows; a reply of only
        // `response.end` (a silent welcome) shows nothing at all.
        if !reply.announced && matches!(event, ReplyEvent::Tts(_) | ReplyEvent::Data(_)) {
            reply.announced = true;
            actions.push(Action::Send(
                json!({"type": "turn.start", "role": "assistant", "turn_id": turn_id}),
            ));
        }
        match event {
            ReplyEvent::Tts(text) => {
                reply.delivered.push_str(&text);
                actions.push(Action::Send(
                    json!({"type": "response.text", "content": text, "turn_id": turn_id}),
                ));
                let pending = &reply.delivered[reply.spoken..];
                if let Some(end) = last_sentence_end(pending) {
                    let sentences = pending[..end].to_string();
                    reply.spoken += end;
                    if !sentences.trim().is_empty() {
                        actions.push(Action::Speak {
                            turn_id: turn_id.to_string(),
                            text: sentences,
                        });
                    }
                }
            }
            ReplyEvent::Data(content) => actions.push(Action::Send(
                json!({"type": "response.data", "content": content, "turn_id": turn_id}),
            )),
            ReplyEvent::End => actions.extend(self.finish_reply(now_ms)),
            ReplyEvent::Other => {}
        }
        actions
    }

    /// The webhook's body ended (or failed). Without `response.end` the turn still ends for the
    /// browser, so the page is never left waiting.
    pub fn on_reply_closed(&mut self, turn_id: &str, now_ms: u64) -> Vec<Action> {
        if self.reply_of(turn_id).is_none() {
            return Vec::new();
        }
        self.finish_reply(now_ms)
    }

    fn finish_reply(&mut self, now_ms: u64) -> Vec<Action> {
        let Some(reply) = self.reply.take() else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        let rest = &reply.delivered[reply.spoken..];
        if !rest.trim().is_empty() {
            actions.push(Action::Speak {
                turn_id: reply.turn_id.clone(),
                text: rest.to_string(),
            });
        }
        let said = normalise(&reply.delivered);
        if !said.is_empty() {
            self.transcript
                .push(json!({"role": "assistant", "text": said, "timestamp": now_ms}));
        }
        if reply.announced {
            actions.push(Action::Send(
                json!({"type": "response.end", "turn_id": reply.turn_id}),
            ));
            actions.push(Action::Send(
                json!({"type": "turn.end", "role": "assistant", "turn_id": reply.turn_id}),
            ));
        }
        actions
    }

    /// The JSON answer to a `data` webhook, for the browser (as Layercode forwards it).
    pub fn on_data_answer(&mut self, turn_id: &str, answer: Value) -> Vec<Action> {
        vec![Action::Send(
            json!({"type": "response.data", "content": answer, "turn_id": turn_id}),
        )]
    }

    /// The browser went away: a streaming reply is aborted, and `session.end` carries the
    /// transcript.
    pub fn on_close(&mut self, now_ms: u64) -> (Vec<Action>, Value) {
        let mut actions = Vec::new();
        if let Some(reply) = self.reply.take() {
            let said = normalise(&reply.delivered);
            if !said.is_empty() {
                self.transcript
                    .push(json!({"role": "assistant", "text": said, "timestamp": now_ms}));
            }
            actions.push(Action::Abort {
                turn_id: reply.turn_id,
            });
        }
        let turn_id = self.next_turn_id();
        let mut end = self.event("session.end", &turn_id);
        let fields = json!({
            "agent_id": self.agent_id,
            "started_at": iso8601(self.started_ms),
            "ended_at": iso8601(now_ms),
            "duration": now_ms.saturating_sub(self.started_ms),
            "transcription_duration_seconds": null,
            "tts_duration_seconds": null,
            "latency": null,
            "ip_address": "127.0.0.1",
            "country_code": null,
            "recording_status": "disabled",
            "transcript": self.transcript,
        });
        if let (Some(end), Value::Object(fields)) = (end.as_object_mut(), fields) {
            end.extend(fields);
        }
        (actions, end)
    }
}

/// Words joined by single spaces, as the caller heard them.
fn normalise(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The byte offset just past the last sentence end (`.`, `!` or `?` followed by whitespace),
/// so speech is made of whole sentences.
fn last_sentence_end(text: &str) -> Option<usize> {
    let mut end = None;
    let mut previous: Option<char> = None;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() && matches!(previous, Some('.' | '!' | '?')) {
            end = Some(at);
        }
        previous = Some(c);
    }
    end
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for Unix milliseconds (the civil-from-days algorithm).
pub fn iso8601(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        unix_ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_767_225_600_000;

    fn session() -> Session {
        Session::new("sess_a", "conv_a", "agent_a", T0)
    }

    fn text(content: &str) -> ClientMessage {
        ClientMessage::Text(content.to_string())
    }

    fn sent(actions: &[Action]) -> Vec<Value> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Send(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    fn streamed(actions: &[Action]) -> (String, Value) {
        actions
            .iter()
            .find_map(|a| match a {
                Action::Stream { turn_id, event } => Some((turn_id.clone(), event.clone())),
                _ => None,
            })
            .expect("a streaming webhook")
    }

    #[test]
    fn every_client_message_type_is_read() {
        let cases = [
            (r#"{"type":"client.ready"}"#, ClientMessage::Ready),
            (
                r#"{"type":"client.audio","content":"AAAA"}"#,
                ClientMessage::Audio,
            ),
            (
                r#"{"type":"vad_events","event":"vad_start"}"#,
                ClientMessage::Vad,
            ),
            (
                r#"{"type":"trigger.turn.start","role":"user"}"#,
                ClientMessage::TurnTrigger,
            ),
            (
                r#"{"type":"trigger.turn.end","role":"user"}"#,
                ClientMessage::TurnTrigger,
            ),
            (
                r#"{"type":"trigger.response.audio.replay_finished","reason":"completed"}"#,
                ClientMessage::ReplayFinished,
            ),
            (
                r#"{"type":"client.response.text","content":"hi"}"#,
                ClientMessage::Text("hi".into()),
            ),
            (
                r#"{"type":"client.response.data","data":{"a":1}}"#,
                ClientMessage::Data(json!({"a": 1})),
            ),
            (
                r#"{"type":"client.something.new","x":1}"#,
                ClientMessage::Unknown("client.something.new".into()),
            ),
            (r#"{"type":"client.response.text"}"#, ClientMessage::Invalid),
            (r#"{"content":"x"}"#, ClientMessage::Invalid),
            ("[1]", ClientMessage::Invalid),
            ("not json", ClientMessage::Invalid),
        ];
        for (raw, expected) in cases {
            assert_eq!(ClientMessage::parse(raw), expected, "{raw}");
        }
    }

    #[test]
    fn ready_starts_the_session_once_and_the_welcome_streams_as_an_agent_turn() {
        let mut s = session();
        let actions = s.on_client(ClientMessage::Ready, T0);
        let (turn, event) = streamed(&actions);
        assert_eq!(turn, "sess_a_turn_1");
        assert_eq!(
            event,
            json!({"type": "session.start", "session_id": "sess_a", "conversation_id": "conv_a",
                   "turn_id": "sess_a_turn_1"})
        );
        assert!(
            s.on_client(ClientMessage::Ready, T0).is_empty(),
            "only once"
        );

        let first = s.on_reply(&turn, ReplyEvent::Tts("Hi! How".into()), T0);
        assert_eq!(
            sent(&first),
            vec![
                json!({"type": "turn.start", "role": "assistant", "turn_id": turn}),
                json!({"type": "response.text", "content": "Hi! How", "turn_id": turn}),
            ]
        );
        assert!(first.contains(&Action::Speak {
            turn_id: turn.clone(),
            text: "Hi!".into()
        }));
        let end = s.on_reply(&turn, ReplyEvent::End, T0);
        assert_eq!(
            end,
            vec![
                Action::Speak {
                    turn_id: turn.clone(),
                    text: " How".into()
                },
                Action::Send(json!({"type": "response.end", "turn_id": turn})),
                Action::Send(json!({"type": "turn.end", "role": "assistant", "turn_id": turn})),
            ]
        );
        assert!(!s.replying());
    }

    #[test]
    fn ignored_messages_do_nothing() {
        let mut s = session();
        s.on_client(ClientMessage::Ready, T0);
        for message in [
            ClientMessage::Audio,
            ClientMessage::Vad,
            ClientMessage::TurnTrigger,
            ClientMessage::ReplayFinished,
            ClientMessage::Unknown("x.y".into()),
            ClientMessage::Invalid,
            text("   "),
        ] {
            assert_eq!(s.on_client(message.clone(), T0), Vec::new(), "{message:?}");
        }
        assert!(s.replying(), "the welcome still streams");
    }

    #[test]
    fn a_typed_turn_becomes_a_transcript_and_a_message_webhook() {
        let mut s = session();
        let actions = s.on_client(text("hello there"), T0);
        assert_eq!(
            sent(&actions),
            vec![json!({"type": "user.transcript", "content": "hello there",
                        "turn_id": "sess_a_turn_1"})]
        );
        let (turn, event) = streamed(&actions);
        assert_eq!(
            event,
            json!({"type": "message", "session_id": "sess_a", "conversation_id": "conv_a",
                   "turn_id": turn, "text": "hello there"})
        );
        let data = s.on_reply(&turn, ReplyEvent::Data(json!({"type": "tool"})), T0);
        assert_eq!(
            sent(&data)[1],
            json!({"type": "response.data", "content": {"type": "tool"}, "turn_id": turn})
        );
        assert!(s.on_reply(&turn, ReplyEvent::Other, T0).is_empty());
    }

    #[test]
    fn typing_over_a_reply_aborts_it_and_the_next_message_says_what_was_delivered() {
        let mut s = session();
        let (first, _) = streamed(&s.on_client(text("tell me a story"), T0));
        s.on_reply(&first, ReplyEvent::Tts("Once upon".into()), T0);
        s.on_reply(&first, ReplyEvent::Tts(" a time,".into()), T0);

        let actions = s.on_client(text("stop"), T0 + 10);
        assert_eq!(
            actions[..2],
            [
                Action::Abort {
                    turn_id: first.clone()
                },
                Action::Send(json!({"type": "turn.start", "role": "user", "turn_id": first})),
            ]
        );
        let (second, event) = streamed(&actions);
        assert_eq!(
            event["interruption_context"],
            json!({"previous_turn_interrupted": true, "words_heard": 4,
                   "text_heard": "Once upon a time,", "assistant_turn_id": first})
        );
        // Late events of the aborted reply are dropped.
        assert!(s
            .on_reply(&first, ReplyEvent::Tts(" there".into()), T0)
            .is_empty());
        assert!(s.on_reply_closed(&first, T0).is_empty());

        // The context goes with one message only.
        s.on_reply(&second, ReplyEvent::End, T0);
        let (_, third) = streamed(&s.on_client(text("thanks"), T0));
        assert!(third.get("interruption_context").is_none());
    }

    #[test]
    fn a_reply_that_closes_without_response_end_still_ends_the_turn() {
        let mut s = session();
        let (turn, _) = streamed(&s.on_client(text("hi"), T0));
        s.on_reply(&turn, ReplyEvent::Tts("Partial".into()), T0);
        let actions = s.on_reply_closed(&turn, T0);
        assert_eq!(
            sent(&actions),
            vec![
                json!({"type": "response.end", "turn_id": turn}),
                json!({"type": "turn.end", "role": "assistant", "turn_id": turn}),
            ]
        );
        // A silent reply (nothing said) sends nothing at all.
        let (silent, _) = streamed(&s.on_client(text("again"), T0));
        assert!(s.on_reply(&silent, ReplyEvent::End, T0).is_empty());
    }

    #[test]
    fn data_goes_out_as_a_data_webhook_and_its_answer_comes_back_as_response_data() {
        let mut s = session();
        let actions = s.on_client(ClientMessage::Data(json!({"button": "yes"})), T0);
        let [Action::Post { turn_id, event }] = &actions[..] else {
            panic!("{actions:?}")
        };
        assert_eq!(event["type"], "data");
        assert_eq!(event["data"], json!({"button": "yes"}));
        assert_eq!(
            s.on_data_answer(turn_id, json!({"status": "ok"})),
            vec![Action::Send(
                json!({"type": "response.data", "content": {"status": "ok"}, "turn_id": turn_id})
            )]
        );
    }

    #[test]
    fn closing_aborts_the_reply_and_session_end_carries_the_transcript() {
        let mut s = session();
        let (welcome, _) = streamed(&s.on_client(ClientMessage::Ready, T0));
        s.on_reply(&welcome, ReplyEvent::Tts("Hi.".into()), T0 + 1);
        s.on_reply(&welcome, ReplyEvent::End, T0 + 2);
        let (turn, _) = streamed(&s.on_client(text("hello"), T0 + 3));
        s.on_reply(&turn, ReplyEvent::Tts("You said".into()), T0 + 4);

        let (actions, end) = s.on_close(T0 + 61_000);
        assert_eq!(actions, vec![Action::Abort { turn_id: turn }]);
        assert_eq!(end["type"], "session.end");
        assert_eq!(end["conversation_id"], "conv_a");
        assert_eq!(end["agent_id"], "agent_a");
        assert_eq!(end["duration"], 61_000);
        assert_eq!(end["started_at"], "2026-01-01T00:00:00.000Z");
        assert_eq!(end["ended_at"], "2026-01-01T00:01:01.000Z");
        let roles: Vec<(&str, &str)> = end["transcript"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| (t["role"].as_str().unwrap(), t["text"].as_str().unwrap()))
            .collect();
        assert_eq!(
            roles,
            [
                ("assistant", "Hi."),
                ("user", "hello"),
                ("assistant", "You said")
            ]
        );
    }

    #[test]
    fn turn_ids_are_unique_per_session() {
        let mut s = session();
        let (a, _) = streamed(&s.on_client(text("a"), T0));
        let (b, _) = streamed(&s.on_client(text("b"), T0));
        assert_ne!(a, b);
        assert!(a.starts_with("sess_a_turn_"));
    }

    #[test]
    fn speech_waits_for_whole_sentences() {
        assert_eq!(last_sentence_end("Hello there"), None);
        assert_eq!(last_sentence_end("Hello. There"), Some(6));
        assert_eq!(last_sentence_end("One! Two? Three"), Some(9));
        assert_eq!(last_sentence_end("Version 2.5 is"), None);
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }
}

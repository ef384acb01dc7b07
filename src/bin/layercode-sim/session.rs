//! The conversation as Layercode would report it: ids, the webhook bodies, the transcript, and
//! the barge-in bookkeeping (what the user heard of a reply they cut off).

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// One simulated session (one Layercode connection) of a conversation.
pub struct Session {
    pub session_id: String,
    pub conversation_id: String,
    /// Makes turn ids unique across runs: the worker ignores a `turn_id` it has already seen in
    /// a conversation (duplicate delivery), so `--conversation` reuse needs fresh ids.
    run_id: u64,
    turns: u32,
    started: Instant,
    transcript: Vec<Value>,
    /// Set when the latest reply was cut off; sent with (and cleared by) the next message.
    /// Layercode only ever reports the immediately previous turn.
    interruption: Option<Value>,
}

impl Session {
    /// A new session; a fresh `sim_conv_<time>` conversation unless one is given.
    pub fn new(conversation_id: Option<String>) -> Session {
        let run_id = unix_ms();
        Session {
            session_id: format!("sim_sess_{run_id}"),
            conversation_id: conversation_id.unwrap_or_else(|| format!("sim_conv_{run_id}")),
            run_id,
            turns: 0,
            started: Instant::now(),
            transcript: Vec::new(),
            interruption: None,
        }
    }

    /// `sim_turn_<run>_<n>`, counting from 1.
    pub fn next_turn_id(&mut self) -> String {
        self.turns += 1;
        format!("sim_turn_{}_{}", self.run_id, self.turns)
    }

    pub fn session_start(&self, turn_id: &str) -> Value {
        json!({
            "type": "session.start",
            "session_id": self.session_id,
            "conversation_id": self.conversation_id,
            "turn_id": turn_id,
        })
    }

    /// A `message` event for what the user said; records it in the transcript and attaches the
    /// interruption context of the previous reply, if the user cut it off.
    pub fn message(&mut self, turn_id: &str, text: &str) -> Value {
        self.transcript
            .push(json!({ "role": "user", "text": text, "timestamp": unix_ms() }));
        let mut event = json!({
            "type": "message",
            "session_id": self.session_id,
            "conversation_id": self.conversation_id,
            "turn_id": turn_id,
            "text": text,
        });
        if let Some(context) = self.interruption.take() {
            event["interruption_context"] = context;
        }
        event
    }

    /// Records a reply: what was heard goes into the transcript (nothing if nothing was heard),
    /// and a cut-off reply becomes the next message's interruption context.
    pub fn record_reply(&mut self, turn_id: &str, heard: &Heard, heard_at_ms: u64) {
        let text = heard.transcript_text();
        if !text.is_empty() {
            self.transcript
                .push(json!({ "role": "assistant", "text": text, "timestamp": heard_at_ms }));
        }
        self.interruption = heard.interrupted().then(|| {
            json!({
                "previous_turn_interrupted": true,
                "words_heard": heard.words(),
                "text_heard": text,
                "assistant_turn_id": turn_id,
            })
        });
    }

    pub fn transcript_len(&self) -> usize {
        self.transcript.len()
    }

    /// `session.end` with the transcript and the duration in milliseconds. Layercode documents
    /// no turn_id for it; one is sent anyway, like on every other event.
    pub fn session_end(&mut self) -> Value {
        let turn_id = self.next_turn_id();
        json!({
            "type": "session.end",
            "session_id": self.session_id,
            "conversation_id": self.conversation_id,
            "turn_id": turn_id,
            "duration": u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "transcript": self.transcript,
        })
    }
}

/// What the user has heard of one reply, and where to barge in.
///
/// With a word limit, the reply is cut right after the limit-th word, and only once that word
/// is known to be complete (whitespace follows it): "Hel" + "lo there" is one word, not two.
pub struct Heard {
    text: String,
    limit: Option<usize>,
    interrupted: bool,
}

impl Heard {
    pub fn new(limit: Option<usize>) -> Heard {
        Heard {
            text: String::new(),
            limit,
            interrupted: false,
        }
    }

    /// Adds a piece of the streamed reply's text. Returns the part of it to show the user (all of it, or the part
    /// up to the end of the limit-th word) and whether the user barges in now.
    pub fn push(&mut self, piece: &str) -> (String, bool) {
        if self.interrupted {
            return (String::new(), true);
        }
        let start = self.text.len();
        self.text.push_str(piece);
        let Some(end) = self.limit.and_then(|n| end_of_word(&self.text, n)) else {
            return (piece.to_string(), false);
        };
        let shown = self.text.get(start..end).unwrap_or_default().to_string();
        self.text.truncate(end);
        self.interrupted = true;
        (shown, true)
    }

    pub fn interrupted(&self) -> bool {
        self.interrupted
    }

    pub fn words(&self) -> usize {
        self.text.split_whitespace().count()
    }

    /// The heard text with whitespace normalised: for a cut reply, exactly the words shown
    /// joined by single spaces, punctuation kept.
    pub fn transcript_text(&self) -> String {
        self.text.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

/// Byte offset just past the `n`-th word of `text`, if that word is followed by whitespace.
fn end_of_word(text: &str, n: usize) -> Option<usize> {
    let mut ended = 0;
    let mut in_word = false;
    for (at, c) in text.char_indices() {
        if c.is_whitespace() {
            if in_word {
                ended += 1;
                if ended == n {
                    return Some(at);
                }
            }
            in_word = false;
        } else {
            in_word = true;
        }
    }
    None
}

/// Milliseconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds pieces to a `Heard` with a limit; returns what was shown and the heard text.
    fn cut(limit: usize, pieces: &[&str]) -> (String, bool, String) {
        let mut heard = Heard::new(Some(limit));
        let mut shown = String::new();
        for piece in pieces {
            let (part, stop) = heard.push(piece);
            shown.push_str(&part);
            if stop {
                break;
            }
        }
        (shown, heard.interrupted(), heard.transcript_text())
    }

    #[test]
    fn cuts_after_the_nth_complete_word() {
        assert_eq!(
            cut(3, &["One", " two,", " three.", " four", " five"]),
            ("One two, three.".into(), true, "One two, three.".into())
        );
        // Several words in one piece: only up to the third is shown.
        assert_eq!(
            cut(3, &["Well, this is  a long one."]),
            ("Well, this is".into(), true, "Well, this is".into())
        );
        // A word split across pieces is one word; whitespace is normalised in text_heard.
        assert_eq!(
            cut(2, &["He", "llo\n", "  wor", "ld ", "again"]),
            ("Hello\n  world".into(), true, "Hello world".into())
        );
    }

    #[test]
    fn a_reply_of_n_words_or_fewer_is_not_cut() {
        assert_eq!(
            cut(3, &["One", " two", " three"]),
            ("One two three".into(), false, "One two three".into())
        );
        assert_eq!(cut(3, &["Hi."]), ("Hi.".into(), false, "Hi.".into()));
    }

    #[test]
    fn no_limit_shows_everything() {
        let mut heard = Heard::new(None);
        assert_eq!(heard.push("a b c d "), ("a b c d ".to_string(), false));
        assert_eq!(heard.words(), 4);
    }

    #[test]
    fn the_next_message_carries_the_interruption_once() {
        let mut session = Session::new(Some("c".into()));
        let first = session.next_turn_id();
        let mut heard = Heard::new(Some(2));
        heard.push("Sure thing, here");
        session.record_reply(&first, &heard, 1);

        let second = session.next_turn_id();
        let message = session.message(&second, "stop");
        assert_eq!(
            message["interruption_context"],
            json!({
                "previous_turn_interrupted": true,
                "words_heard": 2,
                "text_heard": "Sure thing,",
                "assistant_turn_id": first,
            })
        );
        assert_eq!(message["conversation_id"], "c");
        assert_ne!(first, second);

        let third = session.next_turn_id();
        assert!(session
            .message(&third, "more")
            .get("interruption_context")
            .is_none());
        let end = session.session_end();
        assert_eq!(end["transcript"].as_array().map(Vec::len), Some(3));
        assert_eq!(end["transcript"][0]["role"], "assistant");
        assert_eq!(end["transcript"][1]["text"], "stop");
    }
}

//! Conversation history as the model sees it, and the bounded window sent with each turn.

use serde::{Deserialize, Serialize};

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

/// How a stored assistant reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyStatus {
    /// The reply is still being generated (its text is empty until then).
    Pending,
    /// Spoken to the end.
    Complete,
    /// The user talked over it; the text is what was sent, or what they heard.
    Interrupted,
    /// The model failed; the text is what the caller heard, apology included.
    Failed,
}

impl ReplyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyStatus::Pending => "pending",
            ReplyStatus::Complete => "complete",
            ReplyStatus::Interrupted => "interrupted",
            ReplyStatus::Failed => "failed",
        }
    }
}

/// One stored message, oldest first in every list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMessage {
    pub role: Role,
    pub text: String,
}

impl HistoryMessage {
    pub fn user(text: &str) -> Self {
        HistoryMessage {
            role: Role::User,
            text: text.to_string(),
        }
    }

    pub fn assistant(text: &str) -> Self {
        HistoryMessage {
            role: Role::Assistant,
            text: text.to_string(),
        }
    }
}

/// At most this many recent messages go to the model.
pub const WINDOW_MAX_MESSAGES: usize = 40;
/// And at most about this many characters of them (the newest message always goes).
pub const WINDOW_MAX_CHARS: usize = 24_000;

/// Keeps the newest messages within both bounds, so a long conversation costs the same per turn
/// as a short one. Empty messages are dropped. When older messages were cut, a reply whose
/// question was cut too is dropped, so the window starts with the user.
pub fn bounded_window(
    messages: Vec<HistoryMessage>,
    max_messages: usize,
    max_chars: usize,
) -> Vec<HistoryMessage> {
    let mut kept = Vec::new();
    let mut chars = 0;
    let mut cut = false;
    for message in messages.into_iter().rev() {
        if message.text.trim().is_empty() {
            continue;
        }
        let len = message.text.chars().count();
        if kept.len() == max_messages || (!kept.is_empty() && chars + len > max_chars) {
            cut = true;
            break;
        }
        chars += len;
        kept.push(message);
    }
    if cut {
        // `kept` is newest first: its tail is the oldest end of the window.
        while kept.len() > 1 && kept.last().is_some_and(|m| m.role == Role::Assistant) {
            kept.pop();
        }
    }
    kept.reverse();
    kept
}

/// What the caller can have heard of an interrupted reply: the longest prefix of `sent`, by
/// words, that `text_heard` confirms (compared without case, spacing or punctuation; a last
/// word cut short counts as far as it goes), or its first `words_heard` words when no text was
/// given. Never more than was sent: a context claiming more cannot put words in the model's
/// mouth.
pub fn heard_prefix(sent: &str, text_heard: Option<&str>, words_heard: Option<f64>) -> String {
    let words: Vec<(usize, &str)> = word_spans(sent).collect();
    let end = match text_heard {
        Some(heard) => {
            let mut end = 0;
            for (&(start, sent_word), (_, heard_word)) in words.iter().zip(word_spans(heard)) {
                if same_word(sent_word, heard_word) {
                    end = start + sent_word.len();
                    continue;
                }
                // A word cut off mid-way ("Hel" of "Hello") ends what was heard.
                if let Some(len) = prefix_len(sent_word, heard_word) {
                    end = start + len;
                }
                break;
            }
            end
        }
        None => {
            let n = words_heard
                .filter(|n| n.is_finite() && *n > 0.0)
                .unwrap_or(0.0);
            // Saturating: a huge count means "everything".
            let n = (n as usize).min(words.len());
            n.checked_sub(1)
                .and_then(|last| words.get(last))
                .map_or(0, |(start, word)| start + word.len())
        }
    };
    sent[..end].to_string()
}

/// How many of the newest replies a context without `assistant_turn_id` is matched against.
/// Contexts overtake each other by a turn or two, not more; a wider net only makes a short
/// text ("Sure,") fit several replies, which drops it.
pub const RECENT_REPLIES: usize = 4;

/// Which reply a context without `assistant_turn_id` is about, given what each of the recent
/// replies sent (newest first): the one `text_heard` is the start of, word by word (see
/// [`heard_fits`]), or `None` when it fits none or several, since applying it to the wrong
/// reply would rewrite what the caller heard of that one. A context without words (nothing
/// heard, or only a count) cannot be matched and is about the newest reply.
pub fn reply_heard(sent: &[&str], text_heard: Option<&str>) -> Option<usize> {
    let Some(text) = text_heard.filter(|text| !text.trim().is_empty()) else {
        return (!sent.is_empty()).then_some(0);
    };
    let mut fitting = sent
        .iter()
        .enumerate()
        .filter(|(_, reply)| heard_fits(reply, text));
    match (fitting.next(), fitting.next()) {
        (Some((index, _)), None) => Some(index),
        _ => None,
    }
}

/// Whether `text_heard` is the start of `sent`, word by word, as [`heard_prefix`] compares
/// (case, spacing and punctuation aside; its last word may be cut short), and no longer.
pub fn heard_fits(sent: &str, text_heard: &str) -> bool {
    // What the clamp keeps of `sent` must end where the heard text does, word for word.
    let heard = heard_prefix(sent, Some(text_heard), None);
    let words = |text: &str| text.split_whitespace().count();
    !heard.is_empty() && words(&heard) == words(text_heard)
}

/// The byte length of `partial` within `word`, if `word` starts with it (ignoring case).
fn prefix_len(word: &str, partial: &str) -> Option<usize> {
    let mut len = 0;
    let mut chars = word.chars();
    for p in partial.chars() {
        let w = chars.next()?;
        if !w.to_lowercase().eq(p.to_lowercase()) {
            return None;
        }
        len += w.len_utf8();
    }
    (len > 0).then_some(len)
}

/// Each whitespace-separated word with its byte offset.
fn word_spans(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.split_whitespace()
        .map(move |word| (word.as_ptr() as usize - text.as_ptr() as usize, word))
}

fn same_word(a: &str, b: &str) -> bool {
    let letters = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .collect()
    };
    letters(a) == letters(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_heard_is_clamped_to_what_was_sent() {
        let sent = "The capital of Wyoming is Cheyenne.";
        let table: [(Option<&str>, Option<f64>, &str); 10] = [
            (Some("The capital of"), Some(3.0), "The capital of"),
            // Spacing, case and punctuation differ in Layercode's transcript of the audio.
            (Some("the  Capital, of"), None, "The capital of"),
            // A context claiming more than was sent keeps only what was.
            (
                Some("The capital of Wyoming is Cheyenne. I promise a refund."),
                None,
                sent,
            ),
            // Words that were never sent end the prefix.
            (Some("The capital of Texas"), None, "The capital of"),
            // A word cut off mid-way counts as far as it went.
            (Some("The capital of Wyo"), None, "The capital of Wyo"),
            (Some(""), Some(4.0), ""),
            // No text: the first `words_heard` words.
            (None, Some(2.0), "The capital"),
            (None, Some(99.0), sent),
            (None, Some(f64::NAN), ""),
            (None, None, ""),
        ];
        for (text_heard, words_heard, expected) in table {
            assert_eq!(
                heard_prefix(sent, text_heard, words_heard),
                expected,
                "{text_heard:?} / {words_heard:?}"
            );
        }
        assert_eq!(heard_prefix("", Some("anything"), None), "");
    }

    #[test]
    fn a_heard_text_fits_a_reply_it_starts() {
        let sent = "The capital of Wyoming is Cheyenne.";
        let table: [(&str, bool); 10] = [
            ("The capital", true),
            ("the  CAPITAL, of", true),
            ("Th", true),
            ("The capital of Wyoming is Cheyenne.", true),
            // Another reply's words, or this reply's words out of place.
            ("Sure, I can book that", false),
            ("Cheyenne", false),
            ("The capital of Texas", false),
            // Only the last word may be cut short.
            ("Th capital", false),
            // Longer than what was sent: about another reply (or forged).
            ("The capital of Wyoming is Cheyenne. Indeed", false),
            ("  ", false),
        ];
        for (text_heard, expected) in table {
            assert_eq!(heard_fits(sent, text_heard), expected, "{text_heard:?}");
        }
    }

    #[test]
    fn a_context_without_an_id_is_about_the_one_reply_its_text_fits() {
        // Newest first, as the store reads them.
        let replies = [
            "You are welcome.",
            "Parking is free on Sundays.",
            "Sure, the museum opens at nine.",
            "Sure, tickets cost twelve euros.",
        ];
        let table: [(Option<&str>, Option<usize>); 8] = [
            (Some("Parking is"), Some(1)),
            (Some("sure the museum"), Some(2)),
            (Some("You"), Some(0)),
            // Fits two replies: which one was cut cannot be told, so neither is.
            (Some("Sure,"), None),
            // Fits none.
            (Some("The museum"), None),
            (Some("Parking is free on Sundays. And Mondays."), None),
            // Nothing heard, or only a count: cannot be matched, about the newest reply.
            (Some(" "), Some(0)),
            (None, Some(0)),
        ];
        for (text_heard, expected) in table {
            assert_eq!(
                reply_heard(&replies, text_heard),
                expected,
                "{text_heard:?}"
            );
        }
        assert_eq!(reply_heard(&[], None), None);
        assert_eq!(reply_heard(&[], Some("Parking")), None);
    }

    #[test]
    fn window_keeps_the_newest_messages_in_order() {
        let messages: Vec<_> = (0..10)
            .map(|i| HistoryMessage::user(&format!("m{i}")))
            .collect();
        let window = bounded_window(messages, 3, 1000);
        let texts: Vec<_> = window.iter().map(|m| m.text.as_str()).collect();
        assert_eq!(texts, vec!["m7", "m8", "m9"]);
    }

    #[test]
    fn window_respects_the_character_budget_but_keeps_the_newest() {
        let messages = vec![
            HistoryMessage::user(&"a".repeat(50)),
            HistoryMessage::user(&"b".repeat(50)),
            HistoryMessage::user(&"c".repeat(200)),
        ];
        let window = bounded_window(messages.clone(), 10, 120);
        assert_eq!(window, vec![messages[2].clone()]);
        let window = bounded_window(messages.clone(), 10, 250);
        assert_eq!(window, messages[1..].to_vec());
    }

    #[test]
    fn a_cut_window_never_starts_with_an_orphaned_reply() {
        let messages = vec![
            HistoryMessage::user("q1"),
            HistoryMessage::assistant("a1"),
            HistoryMessage::user("q2"),
            HistoryMessage::assistant("a2"),
            HistoryMessage::user("q3"),
        ];
        assert_eq!(
            bounded_window(messages.clone(), 4, 1000),
            messages[2..].to_vec()
        );
        // Uncut, a leading reply (the welcome message) stays.
        let welcome = vec![HistoryMessage::assistant("hi"), HistoryMessage::user("q")];
        assert_eq!(bounded_window(welcome.clone(), 4, 1000), welcome);
    }

    #[test]
    fn window_drops_empty_messages() {
        let messages = vec![
            HistoryMessage::user("hi"),
            HistoryMessage::assistant(""),
            HistoryMessage::user("again"),
        ];
        assert_eq!(
            bounded_window(messages, 10, 1000),
            vec![HistoryMessage::user("hi"), HistoryMessage::user("again")]
        );
    }
}

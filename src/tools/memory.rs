//! What the model is told of the tool calls of earlier turns.
//!
//! A turn's tool rounds are not replayed as `contents` in later requests: only what the caller
//! heard is, which keeps every later request valid for both model families (Gemini 3's rules
//! on where a call may stand and on signatures) and its size bounded. Without anything more,
//! the model would forget that it acted: a booking made, or cut off by a barge-in while it
//! ran, is invisible in the next turn, and the model may make it again. So the last few calls,
//! with what each tool answered, go into the system instruction as a short note.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How many of the latest calls the model is reminded of.
pub const REMEMBERED_CALLS: usize = 8;
/// One call's line, arguments and answer included, is cut to this many characters.
const MAX_LINE_CHARS: usize = 300;

const NOTE_HEADER: &str = "Tools you called earlier in this conversation, oldest first, with \
what each answered (the caller may not have heard the answers). A call interrupted by the \
caller may still have been carried out: check before doing it again.";

/// One call of a finished turn, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastCall {
    pub name: String,
    pub args: Value,
    /// What the model was given as the call's answer: `{"output": …}` or `{"error": …}`.
    pub answer: Value,
}

/// `system_prompt`, followed by the note on `calls` (oldest first) when there are any.
pub fn prompt_with_calls(system_prompt: &str, calls: &[PastCall]) -> String {
    let mut prompt = system_prompt.to_string();
    if calls.is_empty() {
        return prompt;
    }
    prompt.push_str("\n\n");
    prompt.push_str(NOTE_HEADER);
    let first = calls.len().saturating_sub(REMEMBERED_CALLS);
    for call in &calls[first..] {
        let line = format!("{} {} -> {}", call.name, call.args, call.answer);
        prompt.push_str("\n- ");
        prompt.extend(line.chars().take(MAX_LINE_CHARS));
    }
    prompt
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_prompt_lists_the_latest_calls_one_line_each() {
        let call = |i: usize| PastCall {
            name: format!("t{i}"),
            args: json!({"i": i}),
            answer: json!({"output": "ok"}),
        };
        assert_eq!(prompt_with_calls("Be brief.", &[]), "Be brief.");
        let calls: Vec<PastCall> = (1..=10).map(call).collect();
        let prompt = prompt_with_calls("Be brief.", &calls);
        let lines: Vec<&str> = prompt.lines().collect();
        assert_eq!(lines[0], "Be brief.");
        assert_eq!(lines[2], NOTE_HEADER);
        // The two oldest fell out.
        assert_eq!(lines[3], r#"- t3 {"i":3} -> {"output":"ok"}"#);
        assert_eq!(lines.last(), Some(&r#"- t10 {"i":10} -> {"output":"ok"}"#));
        assert_eq!(lines.len(), 3 + REMEMBERED_CALLS);
    }

    #[test]
    fn a_long_answer_is_cut_on_a_character_boundary() {
        let call = PastCall {
            name: "menu".into(),
            args: json!({}),
            answer: json!({"output": "é".repeat(1000)}),
        };
        let prompt = prompt_with_calls("P", &[call]);
        let line = prompt.lines().last().unwrap_or_default();
        assert_eq!(line.chars().count(), 2 + MAX_LINE_CHARS);
        assert!(line.starts_with(r#"- menu {} -> {"output":"éé"#), "{line}");
    }
}

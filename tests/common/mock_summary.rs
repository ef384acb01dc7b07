//! How the mock models write summaries: deterministically, from what they are given, so a test
//! can follow a fact from the turn it was said in, through the summary, to a later request.
//! Shared by the test harness (`mock_gemini.rs`, `mock_openai.rs`) and the developer mock
//! (`src/bin/mock-gemini.rs`, which includes this file); either wire; std and serde_json only.
//!
//! A summary request is one whose system instruction is the worker's summariser instruction
//! (`summary::INSTRUCTION`); its one user message holds the summary so far and the next part
//! of the conversation, under the worker's headings. The mock's summary keeps what the caller
//! said: the lines of the summary so far, then one line per caller message (`The caller said:
//! …`), each once, oldest first, within [`MOCK_SUMMARY_MAX_CHARS`]; the agent's lines are left
//! out (the mock's replies only echo the caller).

use layercode_gemini_worker::summary::{INSTRUCTION, NEXT_PART, SUMMARY_SO_FAR};
use serde_json::Value;

/// The mock's summaries stay within this many characters (the worker keeps up to 2,000).
pub const MOCK_SUMMARY_MAX_CHARS: usize = 1_500;
/// What each caller line of the folded conversation becomes.
pub const CALLER_SAID: &str = "The caller said: ";

/// Whether `request` asks for a summary: a Gemini `generateContent` body whose system
/// instruction, or an OpenAI `chat/completions` body whose system message, is the summariser's.
pub fn is_summary_request(request: &Value) -> bool {
    let gemini = request["systemInstruction"]["parts"][0]["text"].as_str();
    let openai = (request["messages"][0]["role"] == "system")
        .then(|| request["messages"][0]["content"].as_str())
        .flatten();
    gemini.or(openai) == Some(INSTRUCTION)
}

/// The text of a summary request's one user message (empty if it has none), on either wire.
pub fn summary_request_text(request: &Value) -> &str {
    request["contents"][0]["parts"][0]["text"]
        .as_str()
        .or_else(|| request["messages"][1]["content"].as_str())
        .unwrap_or_default()
}

/// The summary so far that a summary request carries (`None` before the first).
pub fn previous_summary(request: &Value) -> Option<String> {
    let text = summary_request_text(request);
    let after = text.strip_prefix(SUMMARY_SO_FAR)?.trim_start_matches('\n');
    let (previous, _) = after.split_once(&format!("\n\n{NEXT_PART}"))?;
    (previous != "(nothing yet)").then(|| previous.to_string())
}

/// The lines of the conversation a summary request folds (`Caller: …`, `Agent: …`).
pub fn folded_lines(request: &Value) -> Vec<String> {
    let text = summary_request_text(request);
    match text.split_once(NEXT_PART) {
        Some((_, part)) => part
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect(),
        None => Vec::new(),
    }
}

/// The mock's summary for a summary request.
pub fn mock_summary(request: &Value) -> String {
    let mut lines: Vec<String> = previous_summary(request)
        .map(|s| s.lines().map(str::to_string).collect())
        .unwrap_or_default();
    for line in folded_lines(request) {
        if let Some(said) = line.strip_prefix("Caller: ") {
            let fact = format!("{CALLER_SAID}{said}");
            if !lines.contains(&fact) {
                lines.push(fact);
            }
        }
    }
    let mut summary = String::new();
    for line in lines {
        if summary.chars().count() + line.chars().count() + 1 > MOCK_SUMMARY_MAX_CHARS {
            break;
        }
        if !summary.is_empty() {
            summary.push('\n');
        }
        summary.push_str(&line);
    }
    if summary.is_empty() {
        summary.push_str("Nothing to remember yet.");
    }
    summary
}

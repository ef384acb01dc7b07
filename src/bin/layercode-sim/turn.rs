//! One turn on screen: send the event, show the reply word by word as it streams, barge in if
//! asked, and print the timing line.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::{Backend, ClientError, ReplyEvent};
use crate::session::{unix_ms, Heard};
use crate::spinner::Spinner;

/// How a turn ended.
#[derive(Debug, PartialEq)]
pub enum Ending {
    /// `response.end` arrived.
    Completed,
    /// We dropped the connection after this many words (`--interrupt-after`).
    Interrupted(usize),
    /// Anything else: the reason.
    Failed(String),
}

/// The outcome of one turn.
pub struct TurnResult {
    pub ending: Ending,
    pub heard: Heard,
    /// When the user started hearing the reply (Unix ms), for the transcript.
    pub heard_at_ms: u64,
    /// An error that dooms every later turn too (unreachable backend, wrong secret).
    pub fatal: Option<ClientError>,
}

/// Runs one streamed turn (`session.start` or `message`) and prints it.
pub fn run(
    backend: &Backend,
    event: &Value,
    turn_id: &str,
    interrupt_after: Option<usize>,
) -> TurnResult {
    print_flush("agent> ");
    let started = Instant::now();
    let mut spinner = Spinner::start();
    let mut heard = Heard::new(interrupt_after);
    let mut first_text: Option<Duration> = None;
    let mut heard_at_ms = unix_ms();
    let mut ends = 0;
    let mut after_end = 0;
    let mut warnings = Vec::new();
    let mut fatal = None;
    // Whether anything is on the reply's line yet, and whether a data line was shown last.
    let (mut shown_any, mut after_data) = (false, false);

    let ending = match backend.open_reply(event) {
        Err(e) => {
            let ending = Ending::Failed(failure(&e));
            fatal = e.is_fatal().then_some(e);
            ending
        }
        Ok(mut stream) => loop {
            let next = stream.next_event();
            // Reading on after response.end only checks that nothing follows it.
            if ends > 0 && matches!(next, Ok(Some(_))) {
                after_end += 1;
            }
            match next {
                // Layercode speaks nothing after response.end; such events are only counted.
                Ok(Some(_)) if ends > 0 => {}
                Ok(Some(ReplyEvent::Tts {
                    content,
                    turn_id: echoed,
                })) => {
                    if first_text.is_none() {
                        spinner.stop();
                        first_text = Some(started.elapsed());
                        heard_at_ms = unix_ms();
                    }
                    check_echo(echoed.as_deref(), turn_id, "response.tts", &mut warnings);
                    let (shown, barge_in) = heard.push(&content);
                    if after_data && !shown.starts_with(char::is_whitespace) {
                        print_flush(" ");
                    }
                    after_data = false;
                    shown_any |= !shown.is_empty();
                    print_flush(&shown);
                    if barge_in {
                        // Dropping the stream closes the connection: Layercode's barge-in.
                        break Ending::Interrupted(heard.words());
                    }
                }
                Ok(Some(ReplyEvent::End { turn_id: echoed })) => {
                    check_echo(echoed.as_deref(), turn_id, "response.end", &mut warnings);
                    ends += 1;
                }
                Ok(Some(ReplyEvent::Data {
                    content,
                    turn_id: echoed,
                })) => {
                    spinner.stop();
                    check_echo(echoed.as_deref(), turn_id, "response.data", &mut warnings);
                    // Set apart from the words around it: "hours. [tool x done] The…".
                    print_flush(&format!(
                        "{}{}",
                        if shown_any { " " } else { "" },
                        data_line(&content)
                    ));
                    after_data = true;
                    shown_any = true;
                }
                Ok(Some(ReplyEvent::Other { .. })) => {}
                Ok(Some(ReplyEvent::Invalid(payload))) => {
                    warnings.push(format!("not a JSON event: {}", shorten(&payload)));
                }
                Ok(None) if ends > 0 => break Ending::Completed,
                Err(e) if ends > 0 => {
                    warnings.push(format!("after response.end: {e}"));
                    break Ending::Completed;
                }
                Ok(None) => break Ending::Failed("the stream closed without response.end".into()),
                Err(e) => break Ending::Failed(failure(&e)),
            }
        },
    };
    spinner.stop();
    let total = started.elapsed();
    say!();

    if ends > 1 {
        warnings.push(format!("{ends} response.end events (expected exactly one)"));
    }
    if after_end > 0 {
        warnings.push(format!("{after_end} event(s) after response.end"));
    }
    print_status(&ending, first_text, total);
    for warning in warnings {
        say!("  [warning: {warning}]");
    }
    TurnResult {
        ending,
        heard,
        heard_at_ms,
        fatal,
    }
}

/// `  [first text 412 ms · total 1870 ms · ended with response.end]`, preceded by
/// `  [interrupted after N words]` for a cut-off reply.
fn print_status(ending: &Ending, first_text: Option<Duration>, total: Duration) {
    let first = match first_text {
        Some(t) => format!("first text {} ms", t.as_millis()),
        None => "no text".to_string(),
    };
    let how = match ending {
        Ending::Completed => "ended with response.end".to_string(),
        Ending::Interrupted(words) => {
            say!("  [interrupted after {words} words]");
            "connection dropped".to_string()
        }
        Ending::Failed(reason) => format!("failed: {reason}"),
    };
    say!("  [{first} · total {} ms · {how}]", total.as_millis());
}

/// A `response.data` event, shown inline in the reply: `[tool shop_hours started]` for a
/// tool status, `[the app is asked to end the call]` for `end_call`, else the JSON.
pub fn data_line(content: &Value) -> String {
    let text = |key: &str| content[key].as_str().unwrap_or("?");
    if content["type"] == "tool" {
        format!("[tool {} {}]", text("name"), text("status"))
    } else if content["action"] == "end_call" {
        "[the app is asked to end the call]".to_string()
    } else {
        format!("[data {}]", shorten(&content.to_string()))
    }
}

/// Why a turn failed, in the user's terms: a silent backend means a missing response.end.
fn failure(error: &ClientError) -> String {
    match error {
        ClientError::Timeout(after) => {
            format!("no response.end within {} s", after.as_secs_f64())
        }
        other => other.to_string(),
    }
}

/// Layercode requires every event to echo the request's turn_id (protocol §5.4).
fn check_echo(echoed: Option<&str>, expected: &str, kind: &str, warnings: &mut Vec<String>) {
    if echoed != Some(expected) {
        let echoed = echoed.map_or("none".to_string(), |id| format!("{id:?}"));
        let message = format!("{kind} has turn_id {echoed}, expected {expected:?}");
        if !warnings.contains(&message) {
            warnings.push(message);
        }
    }
}

fn shorten(text: &str) -> String {
    let short: String = text.chars().take(120).collect();
    if short.len() < text.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// Prints and flushes at once, so text shows up the moment it arrives.
pub fn print_flush(text: &str) {
    let mut stdout = io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

#[cfg(test)]
mod tests {
    use super::data_line;
    use serde_json::json;

    #[test]
    fn data_events_are_shown_as_short_lines() {
        let status =
            json!({"type": "tool", "name": "shop_hours", "call_id": "c1", "status": "done"});
        assert_eq!(data_line(&status), "[tool shop_hours done]");
        assert_eq!(
            data_line(&json!({"action": "end_call"})),
            "[the app is asked to end the call]"
        );
        assert_eq!(
            data_line(&json!({"isThinking": true})),
            r#"[data {"isThinking":true}]"#
        );
    }
}

//! Streaming cleanup of Gemini's markdown into plain text for text-to-speech. A leaf: imports
//! only other leaves (see `tests/layers.rs`).
//!
//! Gemini streams a reply as small text deltas and each delta goes to the TTS engine as soon as
//! it arrives, so the first word must leave fast. The model writes markdown (`**bold**`, bullets,
//! tables, links, code fences) and emoji, and none of that may be read aloud.
//!
//! [`SpeechFilter`] reads the reply one character at a time and decides most characters on the
//! spot: a letter is spoken, a `*` is dropped. Only constructs that later characters decide are
//! held back (see `Hold`):
//!
//! * the start of a line, while `-` `#` `+` `|` may still begin a bullet, a heading, a horizontal
//!   rule or a table separator row (a line made only of such markup is held until it ends);
//! * one character after a run of `_` that follows a letter (`snake_case` or emphasis?), a run
//!   of `~` (`~5` or `~~strike~~`?), a `!` (image `![`?) or a `\` (escape?);
//! * a link `[text](url)` or `<autolink>` until it closes; at a newline or after `HOLD_LIMIT`
//!   bytes it gives up and is spoken as the plain text it was, so a stray `[` can't eat the reply;
//! * whitespace, until the next visible character shows whether a separator is needed
//!   (`Writer`).
//!
//! Every decision depends only on the characters seen so far, never on where a delta ends, so
//! the spoken text is the same however the reply is split: the tests check every split. Held
//! text that turns out to be plain is *replayed* through the same state machine, so each rule
//! lives in one place. Work is O(n): pending constructs are bounded and replayed once.
//!
//! Choices worth knowing:
//! * Table cells are joined with ", " (a short spoken pause), or with " " after a cell that ends
//!   in `.` `:` `!` etc.; outer pipes and the `|---|:---:|` separator row vanish.
//! * Code (inline or fenced) is cleaned like prose: fence lines go, content stays, and markup
//!   characters inside code are cleaned too, since the voice never needs them.
//! * A single `~` is kept (`~5 min` means "about"); `~~` is strikethrough and removed.
//! * An emoji between two words becomes one space so the words don't fuse; no space is left
//!   before closing punctuation or after an opening bracket when markup or emoji was removed
//!   there. A keycap like `1️⃣` keeps its digit.
//! * `<br>` becomes a space and a few inline HTML tags (`<b>`, `<sup>`…) are dropped; any other
//!   `<…>` is spoken literally. `\_`-style escapes give the plain character (`\*` is dropped).
//! * A task-list box `[ ]` / `[x]` at the start of a line is dropped, as is a dash run followed
//!   by a space (`-- note`); a single `-` before a non-space (`-5 degrees`) is kept.

mod chars;
mod filter;
mod writer;

#[cfg(test)]
mod tests;

pub use filter::SpeechFilter;

/// Convenience for whole strings: push + finish.
pub fn clean_for_speech(text: &str) -> String {
    let mut filter = SpeechFilter::new();
    let mut spoken = filter.push(text);
    spoken.push_str(&filter.finish());
    spoken
}

/// Whether the caller's `text` holds anything at all: not only whitespace, control characters
/// and invisible ones (zero-width, bidi marks, a BOM, U+FFFD, emoji joiners). A message of
/// nothing else is a turn without words, not a question for the model.
pub fn says_something(text: &str) -> bool {
    text.chars()
        .any(|c| !c.is_whitespace() && !chars::is_unspeakable(c) && !chars::is_emoji_part(c))
}

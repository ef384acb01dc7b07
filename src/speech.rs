//! Streaming cleanup of Gemini's markdown into plain text for text-to-speech.
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
//! * [`SpeechFilter::finish`] resets the filter, so it can be reused for the next reply.

/// Bytes a pending link, `<autolink>` or code-fence info string may hold back before we give up
/// and speak it as plain text.
const HOLD_LIMIT: usize = 200;

/// Inline HTML tags the model sometimes writes. They are dropped; `<br>` becomes a space.
const HTML_TAGS: &[&str] = &[
    "b", "br", "code", "del", "div", "em", "i", "ins", "kbd", "mark", "p", "s", "small", "span",
    "strong", "sub", "sup", "u",
];

/// Streaming filter that turns model markdown into plain speakable text.
#[derive(Debug, Default)]
pub struct SpeechFilter {
    /// The construct waiting for more characters, if any.
    hold: Hold,
    /// Where we are in the current line: decides whether `#`, `-`, `>` are markup.
    line: Line,
    /// The previous input character (an `_` after a letter may be inside `snake_case`).
    prev: char,
    /// Whitespace normalisation and the decided output.
    out: Writer,
}

/// Position in the current line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Nothing but whitespace yet: the line may still be a rule or a table separator row.
    #[default]
    Fresh,
    /// Only line markers so far (`>`, bullets): another marker may follow.
    Start,
    /// Inside the text of the line: `#`, `-`, `>` are ordinary characters here.
    Inline,
}

/// A construct that the characters seen so far cannot decide yet.
#[derive(Debug, Default)]
enum Hold {
    #[default]
    Nothing,
    /// A line made so far only of `- _ * = | :` and blanks: a horizontal rule or a table
    /// separator row (dropped whole) unless a text character shows up.
    RuleLine(String),
    /// A run of `#`, `-` or `+` at line start: a heading or bullet marker if a space follows.
    Marker { ch: char, count: usize },
    /// A run of backticks at line start: three or more open or close a fenced code block.
    Backticks(usize),
    /// The rest of a fence line (its info string, like `rust`): dropped at the newline.
    Fence { marker: char, info: String },
    /// A run of `~`: one is spoken, two are strikethrough, three at line start are a fence.
    Tildes { count: usize, line_start: bool },
    /// A run of `_` right after a letter or digit: kept only if a letter or digit follows.
    Underscores(usize),
    /// A `!` that may open an image `![alt](url)`.
    Bang,
    /// A `\` that may escape the next character.
    Backslash,
    /// A `[` that may open a link.
    Link(PendingLink),
    /// A `<` that may open an autolink or an HTML tag.
    Angle(String),
}

/// A link or image being read: `[text](url)` or `![text](url)`.
#[derive(Debug)]
struct PendingLink {
    image: bool,
    stage: LinkStage,
    text: String,
    url: String,
    /// Open parentheses inside the url, so `(…(b))` ends at the right `)`.
    depth: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkStage {
    /// Inside `[text`.
    Text,
    /// Just after `]`: a `(` must follow.
    Close,
    /// Inside `(url`.
    Url,
}

impl PendingLink {
    fn new(image: bool) -> Self {
        PendingLink {
            image,
            stage: LinkStage::Text,
            text: String::new(),
            url: String::new(),
            depth: 0,
        }
    }

    fn held_len(&self) -> usize {
        self.text.len() + self.url.len()
    }

    fn is_task_box(&self) -> bool {
        !self.image
            && self.stage == LinkStage::Close
            && matches!(self.text.as_str(), " " | "x" | "X")
    }

    /// What was read after the `[`, as it was written.
    fn into_raw(self) -> String {
        let mut raw = self.text;
        if self.stage != LinkStage::Text {
            raw.push(']');
        }
        if self.stage == LinkStage::Url {
            raw.push('(');
            raw.push_str(&self.url);
        }
        raw
    }
}

impl SpeechFilter {
    /// A filter for a new reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next model delta; returns the text that is safe to speak now (may be empty).
    pub fn push(&mut self, delta: &str) -> String {
        for c in delta.chars() {
            self.feed(c);
        }
        std::mem::take(&mut self.out.text)
    }

    /// The reply has ended: returns whatever was held back, cleaned (may be empty).
    pub fn finish(&mut self) -> String {
        self.settle();
        let text = std::mem::take(&mut self.out.text);
        *self = Self::default();
        text
    }

    fn feed(&mut self, c: char) {
        // Dropped on arrival, as if never sent: no construct, spacing or hold can see them.
        if is_unspeakable(c) {
            return;
        }
        self.step(Some(c));
        self.prev = c;
    }

    /// Decides every pending construct as if the input ended here.
    fn settle(&mut self) {
        // Each step(None) decides the hold; a replay may leave a shorter one, so this ends.
        while !matches!(self.hold, Hold::Nothing) {
            self.step(None);
        }
    }

    /// Handles the next character, or the end of input (`None`).
    fn step(&mut self, next: Option<char>) {
        match std::mem::take(&mut self.hold) {
            Hold::Nothing => {
                if let Some(c) = next {
                    self.start(c);
                }
            }
            Hold::RuleLine(line) => self.rule_line(line, next),
            Hold::Marker { ch, count } => self.marker(ch, count, next),
            Hold::Backticks(count) => self.backticks(count, next),
            Hold::Fence { marker, info } => self.fence(marker, info, next),
            Hold::Tildes { count, line_start } => self.tildes(count, line_start, next),
            Hold::Underscores(count) => self.underscores(count, next),
            Hold::Bang => self.bang(next),
            Hold::Backslash => self.backslash(next),
            Hold::Link(link) => self.link(link, next),
            Hold::Angle(inner) => self.angle(inner, next),
        }
    }

    /// After a hold is decided, the character that decided it is handled normally.
    fn resume(&mut self, next: Option<char>) {
        if let Some(c) = next {
            self.step(Some(c));
        }
    }

    /// Runs held text that turned out to be plain back through the filter.
    fn replay(&mut self, prev: char, held: &str) {
        self.prev = prev;
        for c in held.chars() {
            self.feed(c);
        }
    }

    /// Speaks `c` as text.
    fn emit(&mut self, c: char) {
        self.out.text(c);
        self.line = Line::Inline;
    }

    /// A character with nothing pending.
    fn start(&mut self, c: char) {
        let line_start = self.line != Line::Inline;
        match c {
            '\n' => {
                self.out.newline();
                self.line = Line::Fresh;
            }
            _ if c.is_whitespace() => self.out.space(),
            _ if is_emoji_part(c) => self.out.removed(),
            _ if is_pictograph(c) => self.out.soft_space(),
            _ if self.line == Line::Fresh && is_rule_char(c) => {
                self.hold = Hold::RuleLine(c.to_string());
            }
            '#' | '-' | '+' if line_start => self.hold = Hold::Marker { ch: c, count: 1 },
            '>' if line_start => self.out.removed(),
            '`' if line_start => self.hold = Hold::Backticks(1),
            '`' | '*' => self.out.removed(),
            '~' => {
                self.hold = Hold::Tildes {
                    count: 1,
                    line_start,
                }
            }
            '_' if self.prev.is_alphanumeric() => self.hold = Hold::Underscores(1),
            '_' => self.out.removed(),
            '[' => self.hold = Hold::Link(PendingLink::new(false)),
            '!' => self.hold = Hold::Bang,
            '<' => self.hold = Hold::Angle(String::new()),
            '\\' => self.hold = Hold::Backslash,
            '|' => {
                self.out.pipe();
                self.line = Line::Inline;
            }
            _ => self.emit(c),
        }
    }

    fn rule_line(&mut self, mut line: String, next: Option<char>) {
        match next {
            Some(c) if is_rule_char(c) || is_blank(c) => {
                line.push(c);
                self.hold = Hold::RuleLine(line);
            }
            Some('\n') | None if is_rule(&line) => {
                self.out.removed();
                self.resume(next);
            }
            _ => {
                // Text on the line: its start was bullets, pipes or emphasis, not a rule.
                self.line = Line::Start;
                self.replay('\n', &line);
                self.resume(next);
            }
        }
    }

    fn marker(&mut self, ch: char, count: usize, next: Option<char>) {
        if next == Some(ch) {
            self.hold = Hold::Marker {
                ch,
                count: count + 1,
            };
            return;
        }
        let spaced = next.is_none_or(char::is_whitespace);
        match ch {
            '#' if spaced && count <= 6 => {
                self.out.removed();
                self.line = Line::Inline;
            }
            '-' if spaced => {
                self.out.removed();
                self.line = Line::Start;
            }
            '+' if spaced && count == 1 => {
                self.out.removed();
                self.line = Line::Start;
            }
            // `#1`, `-5`, `+1`: the marker was text.
            _ => (0..count).for_each(|_| self.emit(ch)),
        }
        self.resume(next);
    }

    fn backticks(&mut self, count: usize, next: Option<char>) {
        if next == Some('`') {
            self.hold = Hold::Backticks(count + 1);
            return;
        }
        if count >= 3 {
            self.hold = Hold::Fence {
                marker: '`',
                info: String::new(),
            };
        } else {
            self.out.removed();
            self.line = Line::Inline;
        }
        self.resume(next);
    }

    fn fence(&mut self, marker: char, mut info: String, next: Option<char>) {
        match next {
            Some('\n') | None => {
                self.out.removed();
                self.resume(next);
            }
            Some(c) if c == marker || info.len() >= HOLD_LIMIT => {
                // An info string never contains its fence character: this was inline code
                // such as ```x = 1``` written on one line.
                self.out.removed();
                self.line = Line::Inline;
                self.replay(marker, &info);
                self.resume(next);
            }
            Some(c) => {
                info.push(c);
                self.hold = Hold::Fence { marker, info };
            }
        }
    }

    fn tildes(&mut self, count: usize, line_start: bool, next: Option<char>) {
        if next == Some('~') {
            self.hold = Hold::Tildes {
                count: count + 1,
                line_start,
            };
            return;
        }
        if line_start && count >= 3 {
            self.hold = Hold::Fence {
                marker: '~',
                info: String::new(),
            };
        } else if count >= 2 {
            self.out.removed();
        } else {
            self.emit('~');
        }
        self.resume(next);
    }

    fn underscores(&mut self, count: usize, next: Option<char>) {
        match next {
            Some('_') => self.hold = Hold::Underscores(count + 1),
            Some(c) if c.is_alphanumeric() => {
                (0..count).for_each(|_| self.emit('_'));
                self.resume(next);
            }
            _ => {
                self.out.removed();
                self.resume(next);
            }
        }
    }

    fn bang(&mut self, next: Option<char>) {
        if next == Some('[') {
            self.hold = Hold::Link(PendingLink::new(true));
        } else {
            self.emit('!');
            self.resume(next);
        }
    }

    fn backslash(&mut self, next: Option<char>) {
        match next {
            // A backslash before a newline is a markdown hard line break.
            Some('\n') => {
                self.out.removed();
                self.resume(next);
            }
            Some('*' | '`') => self.out.removed(),
            Some(c) if c.is_ascii_punctuation() => self.emit(c),
            _ => {
                self.emit('\\');
                self.resume(next);
            }
        }
    }

    fn link(&mut self, mut link: PendingLink, next: Option<char>) {
        let c = match next {
            Some(c) if c != '\n' && link.held_len() < HOLD_LIMIT => c,
            _ => return self.not_a_link(link, next),
        };
        match (link.stage, c) {
            (LinkStage::Text, '[') => return self.not_a_link(link, next),
            (LinkStage::Text, ']') => link.stage = LinkStage::Close,
            (LinkStage::Text, _) => link.text.push(c),
            (LinkStage::Close, '(') => link.stage = LinkStage::Url,
            (LinkStage::Close, _) => return self.not_a_link(link, next),
            (LinkStage::Url, ')') if link.depth == 0 => return self.speak_link(link),
            (LinkStage::Url, _) => {
                match c {
                    '(' => link.depth += 1,
                    ')' => link.depth -= 1,
                    _ => {}
                }
                link.url.push(c);
            }
        }
        self.hold = Hold::Link(link);
    }

    fn speak_link(&mut self, link: PendingLink) {
        self.line = Line::Inline;
        self.replay('[', &link.text);
        // The link ends here, so whatever its text left pending is decided now.
        self.settle();
        self.out.removed();
    }

    fn not_a_link(&mut self, link: PendingLink, next: Option<char>) {
        if self.line != Line::Inline && link.is_task_box() {
            self.out.removed();
        } else {
            if link.image {
                self.emit('!');
            }
            self.emit('[');
            self.replay('[', &link.into_raw());
        }
        self.resume(next);
    }

    fn angle(&mut self, mut inner: String, next: Option<char>) {
        match next {
            Some('>') => self.close_angle(inner),
            Some(c) if c != '\n' => {
                inner.push(c);
                if inner.len() <= HOLD_LIMIT && (could_be_autolink(&inner) || could_be_tag(&inner))
                {
                    self.hold = Hold::Angle(inner);
                } else {
                    inner.pop();
                    self.not_an_angle(inner, next);
                }
            }
            _ => self.not_an_angle(inner, next),
        }
    }

    fn close_angle(&mut self, inner: String) {
        if is_autolink(&inner) {
            inner.chars().for_each(|c| self.emit(c));
        } else if let Some(tag) = tag_name(&inner).filter(|t| is_html_tag(t)) {
            if tag.eq_ignore_ascii_case("br") {
                self.out.space();
            }
            self.out.removed();
        } else {
            self.not_an_angle(inner, Some('>'));
        }
    }

    fn not_an_angle(&mut self, inner: String, next: Option<char>) {
        self.emit('<');
        self.replay('<', &inner);
        self.resume(next);
    }
}

/// Convenience for whole strings: push + finish.
pub fn clean_for_speech(text: &str) -> String {
    let mut filter = SpeechFilter::new();
    let mut spoken = filter.push(text);
    spoken.push_str(&filter.finish());
    spoken
}

// ---------------------------------------------------------------------------------------------
// Output: whitespace normalisation
// ---------------------------------------------------------------------------------------------

/// Collects decided text. Whitespace, table pipes and removals between two visible characters
/// are remembered as a `Gap` and written as one separator only when the next visible
/// character arrives, so nothing is doubled and nothing trails.
#[derive(Debug, Default)]
struct Writer {
    /// Decided text not yet returned by `push`.
    text: String,
    /// Whether anything visible was written: leading whitespace is dropped.
    started: bool,
    /// The last visible character written.
    last: char,
    gap: Gap,
}

/// What lies between the last visible character and the next one.
#[derive(Debug, Default, Clone, Copy)]
struct Gap {
    space: bool,
    newline: bool,
    pipe: bool,
    /// Markup or emoji was removed here, so a space may be an artefact of the removal.
    removed: bool,
}

impl Writer {
    fn text(&mut self, c: char) {
        if self.started {
            let separator = self.separator(c);
            self.text.push_str(separator);
        }
        self.text.push(c);
        self.last = c;
        self.started = true;
        self.gap = Gap::default();
    }

    fn separator(&self, next: char) -> &'static str {
        let gap = self.gap;
        if gap.newline {
            "\n"
        } else if gap.pipe {
            if ends_clause(self.last) {
                " "
            } else {
                ", "
            }
        } else if !gap.space || (gap.removed && (closes(next) || opens(self.last))) {
            ""
        } else {
            " "
        }
    }

    fn space(&mut self) {
        self.gap.space = true;
    }

    fn newline(&mut self) {
        self.gap.newline = true;
    }

    fn pipe(&mut self) {
        self.gap.pipe = true;
    }

    fn removed(&mut self) {
        self.gap.removed = true;
    }

    /// An emoji: silent, but it still separates the words around it.
    fn soft_space(&mut self) {
        self.gap.space = true;
        self.gap.removed = true;
    }
}

// ---------------------------------------------------------------------------------------------
// Character classes
// ---------------------------------------------------------------------------------------------

/// Whitespace other than a newline.
fn is_blank(c: char) -> bool {
    c != '\n' && c.is_whitespace()
}

/// Characters a horizontal rule or table separator row is made of.
fn is_rule_char(c: char) -> bool {
    matches!(c, '-' | '_' | '*' | '=' | '|' | ':')
}

/// A whole line of rule characters is markup unless it is only colons.
fn is_rule(line: &str) -> bool {
    line.contains(['-', '_', '*', '=', '|'])
}

/// Punctuation that hugs the word before it.
fn closes(c: char) -> bool {
    matches!(
        c,
        '.' | ','
            | ';'
            | ':'
            | '!'
            | '?'
            | ')'
            | ']'
            | '}'
            | '%'
            | '…'
            | '。'
            | '，'
            | '、'
            | '！'
            | '？'
    )
}

/// Punctuation that hugs the word after it.
fn opens(c: char) -> bool {
    matches!(c, '(' | '[' | '{' | '¿' | '¡')
}

/// Punctuation that already gives a pause, so a table cell after it needs no comma.
fn ends_clause(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '…' | '。' | '，' | '！' | '？'
    )
}

/// Emoji pictographs: silent, but they separate the words around them.
fn is_pictograph(c: char) -> bool {
    matches!(
        u32::from(c),
        0x1F000..=0x1FAFF // emoticons, pictographs, transport, regional-indicator flags
            | 0x2600..=0x27BF // miscellaneous symbols and dingbats: ☀ ✅ ❤
            | 0x2B00..=0x2BFF // arrows and stars: ⬆ ⭐ ⭕
            | 0x231A..=0x231B // ⌚ ⌛
            | 0x23E9..=0x23FA // ⏩ ⏰ ⏳ ⏸
            | 0x25FB..=0x25FE // ◻ ◼ ◽ ◾
    )
}

/// Characters no voice can say and no TTS engine should be fed: control characters that are
/// not whitespace (NUL, BEL, ESC, DEL, the C1 range), bidi embeddings, overrides, isolates and
/// marks, zero-width characters and U+FFFD (what invalid UTF-8 decodes to). The zero-width
/// joiner and variation selectors are emoji parts (`is_emoji_part`); whitespace controls
/// (tab, CR, U+0085) are spaces.
fn is_unspeakable(c: char) -> bool {
    (c.is_control() && !c.is_whitespace())
        || matches!(
            u32::from(c),
            0x202A..=0x202E // bidi embeddings and overrides
                | 0x2066..=0x2069 // bidi isolates
                | 0x200E | 0x200F | 0x061C // bidi marks: left-to-right, right-to-left, Arabic
                | 0x200B | 0x200C // zero-width space, zero-width non-joiner
                | 0x2060..=0x2064 // word joiner, invisible operators
                | 0xFEFF // zero-width no-break space (BOM)
                | 0x00AD // soft hyphen
                | 0x180E // Mongolian vowel separator
                | 0xFFFD // replacement character
        )
}

/// Invisible parts of emoji sequences: removed without a trace.
fn is_emoji_part(c: char) -> bool {
    matches!(
        u32::from(c),
        0xFE0E | 0xFE0F // text / emoji presentation selectors
            | 0x200D // zero-width joiner (👨‍👩‍👧)
            | 0x20E3 // combining keycap (1️⃣)
            | 0x1F3FB..=0x1F3FF // skin tones
            | 0xE0020..=0xE007F // tags (subdivision flags)
    )
}

/// `<` + `s` may still become an autolink like `<https://x.y>` or `<a@b.c>`.
fn could_be_autolink(s: &str) -> bool {
    let url_char = |c: char| {
        !(c.is_whitespace() || matches!(c, '<' | '*' | '`') || is_emoji_part(c) || is_pictograph(c))
    };
    s.chars().next().is_none_or(|c| c.is_ascii_alphabetic()) && s.chars().all(url_char)
}

fn is_autolink(s: &str) -> bool {
    !s.is_empty() && could_be_autolink(s) && s.contains([':', '@'])
}

/// `<` + `s` may still become a tag like `<br>`, `</b>` or `<br />`.
fn could_be_tag(s: &str) -> bool {
    s.is_empty() || s == "/" || tag_name(s).is_some()
}

/// The name of a tag without attributes: `b` for `/b`, `br` for `br /`.
fn tag_name(s: &str) -> Option<&str> {
    let body = s.strip_prefix('/').unwrap_or(s);
    let end = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    let (name, rest) = body.split_at(end);
    let rest = rest.trim_start_matches(' ');
    let shaped = name.starts_with(|c: char| c.is_ascii_alphabetic()) && matches!(rest, "" | "/");
    shaped.then_some(name)
}

fn is_html_tag(name: &str) -> bool {
    HTML_TAGS.iter().any(|t| t.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one by one and joins everything the filter says.
    fn speak_chunks(chunks: &[&str]) -> String {
        let mut filter = SpeechFilter::new();
        let mut spoken = String::new();
        for chunk in chunks {
            spoken.push_str(&filter.push(chunk));
        }
        spoken.push_str(&filter.finish());
        spoken
    }

    /// Tiny linear congruential generator: reproducible pseudo-random numbers without crates.
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) as usize) % n.max(1)
        }
    }

    fn char_bounds(s: &str) -> Vec<usize> {
        s.char_indices().map(|(i, _)| i).chain([s.len()]).collect()
    }

    /// Splits `s` at the given byte offsets (sorted, on char boundaries).
    fn split_at_all<'a>(s: &'a str, cuts: &[usize]) -> Vec<&'a str> {
        let mut pieces = Vec::new();
        let mut from = 0;
        for &cut in cuts {
            pieces.push(&s[from..cut]);
            from = cut;
        }
        pieces.push(&s[from..]);
        pieces
    }

    fn random_cuts(s: &str, rng: &mut Lcg) -> Vec<usize> {
        let bounds = char_bounds(s);
        let mut cuts: Vec<usize> = (0..1 + rng.below(6))
            .map(|_| bounds[rng.below(bounds.len())])
            .collect();
        cuts.sort_unstable();
        cuts
    }

    /// Every way of splitting `input` that we try must speak exactly the whole-string result.
    fn assert_chunk_invariant(input: &str, pairs: bool, rng: &mut Lcg) {
        let whole = clean_for_speech(input);
        let bounds = char_bounds(input);
        let chars: Vec<String> = input.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(speak_chunks(&chars), whole, "char by char: {input:?}");
        for &i in &bounds {
            assert_eq!(
                speak_chunks(&split_at_all(input, &[i])),
                whole,
                "split {i}: {input:?}"
            );
        }
        if pairs {
            for (n, &i) in bounds.iter().enumerate() {
                for &j in &bounds[n..] {
                    let pieces = split_at_all(input, &[i, j]);
                    assert_eq!(speak_chunks(&pieces), whole, "splits {i},{j}: {input:?}");
                }
            }
        }
        for _ in 0..40 {
            let cuts = random_cuts(input, rng);
            let pieces = split_at_all(input, &cuts);
            assert_eq!(speak_chunks(&pieces), whole, "splits {cuts:?}: {input:?}");
        }
    }

    /// Every input used by the focused tests, plus some nastier ones.
    const CORPUS: &[&str] = &[
        "The capital of Wyoming is **Cheyenne**.\n",
        "Hello, world. Ça va? 2 + 2 = 4",
        "**bold**, *it*, ***both***",
        "__bold__ and _it_ in snake_case_name",
        "~~old~~ new, ~5 min",
        "a * b and Note*",
        "# Title\n## Sub\n###### Deep\nText",
        "#1 pick in C#",
        "> Quoted\n> > nested\n5 > 3",
        "- one\n* two\n+ three\n  - nested",
        "1. First\n2. Second",
        "-5 degrees\n+1 vote\n-- Signed",
        "Above\n---\n***\n___\n- - -\nBelow",
        "Use `x` and ``y``.",
        "Code:\n```rust\nfn main() {}\n```\nDone.",
        "~~~python\nprint(1)\n~~~",
        "```x = 1```",
        "See [the docs](https://example.com/a_(b)) now.",
        "![A cat](cat.png) sleeps",
        "Visit <https://x.y/a_b> today",
        "Array [1] and [note",
        "[oops\nNext",
        "[a [b](u)",
        "| Name | Age |\n|:---|---:|\n| Bob | 30 |",
        "| Yes. | No |",
        "Hello 👋 there",
        "**Hi** 🎉!",
        "Great🎉Thanks",
        "Family 👨‍👩‍👧‍👦 and 🇫🇷 flag 👍🏽 ok ⭐ ✅",
        "1️⃣ First",
        "© ® ™ café 東京 Москва مرحبا ½ → €",
        "  Hi \t there\n\n\n  next  ",
        "(🎉 yay)",
        "Bonjour !",
        "a<br>b <b>c</b> <br/>d",
        "a < b, x<y and <3 and <your-name>",
        "snake\\_case, \\# not heading, C:\\Users, 2 \\* 3",
        "- [ ] todo\n- [x] done",
        "a\r\n- b",
        "Wow! ![x](y) [Hi!](u)!",
        "* **Item:** text\n  * *sub* item",
        "[**Docs**](u) and [snake_case](v).",
        "[snake_case](v)_x <a👍:b> <a*:b>",
        "x\n:\n= 5\n::",
        "<a[b](c) d>",
        "\\\nline",
        "####### seven",
        "",
    ];

    // --- Examples from the brief -----------------------------------------------------------

    #[test]
    fn gemini_deltas_become_one_plain_sentence() {
        let spoken = speak_chunks(&["The", " capital of Wyoming", " is **Cheyenne**.\n"]);
        assert_eq!(spoken, "The capital of Wyoming is Cheyenne.");
    }

    #[test]
    fn plain_text_passes_through_unchanged() {
        let text = "Hello, world. Ça va? 2 + 2 = 4";
        assert_eq!(clean_for_speech(text), text);
    }

    #[test]
    fn empty_and_markup_only_replies_are_silent() {
        for input in [
            "", "   ", "**", "---", "🎉", "```", "\n\n", "| --- |", "[](x)",
        ] {
            assert_eq!(clean_for_speech(input), "", "{input:?}");
        }
    }

    // --- Emphasis ---------------------------------------------------------------------------

    #[test]
    fn star_emphasis_is_removed_and_words_kept() {
        assert_eq!(
            clean_for_speech("**bold**, *it*, ***both***"),
            "bold, it, both"
        );
    }

    #[test]
    fn underscore_emphasis_is_removed_but_snake_case_kept() {
        assert_eq!(
            clean_for_speech("__bold__ and _it_ in snake_case_name"),
            "bold and it in snake_case_name"
        );
    }

    #[test]
    fn strikethrough_is_removed_but_a_single_tilde_kept() {
        assert_eq!(clean_for_speech("~~old~~ new, ~5 min"), "old new, ~5 min");
    }

    #[test]
    fn lone_star_is_dropped() {
        assert_eq!(clean_for_speech("a * b and Note*"), "a b and Note");
    }

    // --- Line markers -----------------------------------------------------------------------

    #[test]
    fn heading_markers_are_removed() {
        assert_eq!(
            clean_for_speech("# Title\n## Sub\n###### Deep\nText"),
            "Title\nSub\nDeep\nText"
        );
    }

    #[test]
    fn hash_without_a_following_space_is_text() {
        assert_eq!(clean_for_speech("#1 pick in C#"), "#1 pick in C#");
        assert_eq!(clean_for_speech("####### seven"), "####### seven");
    }

    #[test]
    fn blockquote_markers_are_removed_but_greater_than_kept() {
        assert_eq!(
            clean_for_speech("> Quoted\n> > nested\n5 > 3"),
            "Quoted\nnested\n5 > 3"
        );
    }

    #[test]
    fn bullets_are_removed_at_any_indent() {
        assert_eq!(
            clean_for_speech("- one\n* two\n+ three\n  - nested"),
            "one\ntwo\nthree\nnested"
        );
        assert_eq!(
            clean_for_speech("* **Item:** text\n  * *sub* item"),
            "Item: text\nsub item"
        );
    }

    #[test]
    fn numbered_items_are_kept() {
        assert_eq!(
            clean_for_speech("1. First\n2. Second"),
            "1. First\n2. Second"
        );
    }

    #[test]
    fn sign_before_a_number_is_kept_but_dash_run_dropped() {
        assert_eq!(
            clean_for_speech("-5 degrees\n+1 vote\n-- Signed"),
            "-5 degrees\n+1 vote\nSigned"
        );
    }

    #[test]
    fn horizontal_rules_are_removed() {
        assert_eq!(
            clean_for_speech("Above\n---\n***\n___\n- - -\nBelow"),
            "Above\nBelow"
        );
    }

    #[test]
    fn lines_of_colons_and_equals_signs_are_kept_as_text() {
        assert_eq!(clean_for_speech("x\n:\n= 5\n::"), "x\n:\n= 5\n::");
    }

    #[test]
    fn task_list_boxes_are_dropped() {
        assert_eq!(clean_for_speech("- [ ] todo\n- [x] done"), "todo\ndone");
    }

    // --- Code -------------------------------------------------------------------------------

    #[test]
    fn inline_code_backticks_are_removed() {
        assert_eq!(clean_for_speech("Use `x` and ``y``."), "Use x and y.");
    }

    #[test]
    fn fence_lines_are_removed_and_code_kept() {
        assert_eq!(
            clean_for_speech("Code:\n```rust\nfn main() {}\n```\nDone."),
            "Code:\nfn main() {}\nDone."
        );
        assert_eq!(clean_for_speech("~~~python\nprint(1)\n~~~"), "print(1)");
    }

    #[test]
    fn triple_backticks_on_one_line_are_inline_code() {
        assert_eq!(clean_for_speech("```x = 1```"), "x = 1");
    }

    // --- Links ------------------------------------------------------------------------------

    #[test]
    fn link_keeps_its_text_even_with_parentheses_in_the_url() {
        assert_eq!(
            clean_for_speech("See [the docs](https://example.com/a_(b)) now."),
            "See the docs now."
        );
    }

    #[test]
    fn link_text_is_cleaned_too() {
        assert_eq!(
            clean_for_speech("[**Docs**](u) and [snake_case](v)."),
            "Docs and snake_case."
        );
    }

    #[test]
    fn image_keeps_its_alt_text() {
        assert_eq!(clean_for_speech("![A cat](cat.png) sleeps"), "A cat sleeps");
        assert_eq!(clean_for_speech("Wow! ![x](y) [Hi!](u)!"), "Wow! x Hi!!");
    }

    #[test]
    fn autolink_keeps_its_url() {
        assert_eq!(
            clean_for_speech("Visit <https://x.y/a_b> today"),
            "Visit https://x.y/a_b today"
        );
    }

    #[test]
    fn unmatched_bracket_is_spoken_literally() {
        assert_eq!(
            clean_for_speech("Array [1] and [note"),
            "Array [1] and [note"
        );
        assert_eq!(clean_for_speech("[a [b](u)"), "[a b");
    }

    #[test]
    fn stray_bracket_gives_up_at_a_newline() {
        assert_eq!(clean_for_speech("[oops\nNext"), "[oops\nNext");
    }

    #[test]
    fn stray_bracket_gives_up_after_the_hold_limit() {
        let words = "word ".repeat(60);
        let mut filter = SpeechFilter::new();
        let spoken = filter.push(&format!("Say [{words}"));
        // Everything up to the limit is out already, without waiting for `]`.
        assert!(spoken.len() >= HOLD_LIMIT, "{spoken:?}");
        let rest = filter.finish();
        assert_eq!(spoken + &rest, format!("Say [{}", words.trim_end()));
    }

    // --- Tables -----------------------------------------------------------------------------

    #[test]
    fn table_becomes_comma_separated_lines_without_separator_row() {
        assert_eq!(
            clean_for_speech("| Name | Age |\n|:---|---:|\n| Bob | 30 |"),
            "Name, Age\nBob, 30"
        );
    }

    #[test]
    fn table_cell_ending_in_punctuation_gets_no_extra_comma() {
        assert_eq!(clean_for_speech("| Yes. | No |"), "Yes. No");
    }

    // --- Emoji ------------------------------------------------------------------------------

    #[test]
    fn emoji_is_removed_without_doubling_spaces() {
        assert_eq!(clean_for_speech("Hello 👋 there"), "Hello there");
    }

    #[test]
    fn removal_leaves_no_space_before_punctuation_or_after_a_bracket() {
        assert_eq!(clean_for_speech("**Hi** 🎉!"), "Hi!");
        assert_eq!(clean_for_speech("(🎉 yay)"), "(yay)");
    }

    #[test]
    fn space_the_model_wrote_before_punctuation_is_kept() {
        assert_eq!(clean_for_speech("Bonjour !"), "Bonjour !");
    }

    #[test]
    fn emoji_between_words_becomes_a_space() {
        assert_eq!(clean_for_speech("Great🎉Thanks"), "Great Thanks");
    }

    #[test]
    fn zwj_families_flags_skin_tones_and_symbols_vanish_whole() {
        assert_eq!(
            clean_for_speech("Family 👨‍👩‍👧‍👦 and 🇫🇷 flag 👍🏽 ok ⭐ ✅"),
            "Family and flag ok"
        );
    }

    #[test]
    fn keycap_emoji_keeps_its_digit() {
        assert_eq!(clean_for_speech("1️⃣ First"), "1 First");
    }

    #[test]
    fn text_symbols_and_all_scripts_are_kept() {
        let text = "© ® ™ café 東京 Москва مرحبا ½ → €";
        assert_eq!(clean_for_speech(text), text);
    }

    // --- Control, bidi and zero-width characters --------------------------------------------

    #[test]
    fn unspeakable_characters_are_dropped_as_if_never_sent() {
        let cases = [
            ("NUL and BEL", "Hel\u{0}lo\u{7} there", "Hello there"),
            ("ESC", "\u{1b}red\u{1b}", "red"),
            (
                "DEL and C1 controls",
                "a\u{7f}b\u{80}c\u{9b}d\u{9f}e",
                "abcde",
            ),
            ("file and unit separators", "a\u{1c}b\u{1f}c", "abc"),
            (
                "bidi overrides and embeddings",
                "\u{202e}evil\u{202c} \u{202a}a\u{202b}b\u{202d}c",
                "evil abc",
            ),
            (
                "bidi isolates",
                "\u{2066}x\u{2069} \u{2067}y\u{2068}z",
                "x yz",
            ),
            ("bidi marks", "a\u{200e}b\u{200f}c\u{61c}d", "abcd"),
            (
                "zero-width space and non-joiner",
                "zero\u{200b}width\u{200c}",
                "zerowidth",
            ),
            ("word joiner and BOM", "\u{feff}a\u{2060}b\u{feff}", "ab"),
            ("soft hyphen", "hy\u{ad}phen", "hyphen"),
            (
                "replacement character",
                "bad\u{fffd}byte \u{fffd}",
                "badbyte",
            ),
            ("only unspeakable", "\u{0}\u{7}\u{200b}\u{fffd}\u{202e}", ""),
            (
                "inside markup",
                "**bo\u{0}ld** [li\u{7}nk](u\u{0}rl)",
                "bold link",
            ),
            (
                "inside an autolink",
                "<https://a\u{0}.b\u{202e}/c>",
                "https://a.b/c",
            ),
            (
                "before a line marker",
                "\u{200b}- item\n\u{feff}# Title",
                "item\nTitle",
            ),
            // Emoji parts and whitespace controls keep their own handling.
            ("ZWJ family", "a 👨\u{200d}👩\u{200d}👧 b", "a b"),
            ("tab, CR, NEL", "a\tb\rc\u{85}d", "a b c d"),
            (
                "line and paragraph separators",
                "a\u{2028}b\u{2029}c",
                "a b c",
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(clean_for_speech(input), expected, "{name}");
            let mut rng = Lcg(3);
            assert_chunk_invariant(input, true, &mut rng);
        }
    }

    // --- Whitespace, HTML, escapes ----------------------------------------------------------

    #[test]
    fn whitespace_is_collapsed_and_trimmed() {
        assert_eq!(
            clean_for_speech("  Hi \t there\n\n\n  next  "),
            "Hi there\nnext"
        );
        assert_eq!(clean_for_speech("a\r\n- b"), "a\nb");
    }

    #[test]
    fn br_becomes_a_space_and_inline_html_tags_are_dropped() {
        assert_eq!(clean_for_speech("a<br>b <b>c</b> <br/>d"), "a b c d");
    }

    #[test]
    fn angle_brackets_that_are_not_tags_are_spoken() {
        let text = "a < b, x<y and <3 and <your-name>";
        assert_eq!(clean_for_speech(text), text);
    }

    #[test]
    fn backslash_escapes_give_the_plain_character() {
        assert_eq!(
            clean_for_speech("snake\\_case, \\# not heading, C:\\Users, 2 \\* 3"),
            "snake_case, # not heading, C:\\Users, 2 3"
        );
        assert_eq!(clean_for_speech("\\\nline"), "line");
    }

    #[test]
    fn finish_resets_the_filter_for_the_next_reply() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("One [pending"), "One");
        assert_eq!(filter.finish(), " [pending");
        assert_eq!(filter.push("- Two"), "Two");
        assert_eq!(filter.finish(), "");
    }

    // --- Minimal hold-back ------------------------------------------------------------------

    #[test]
    fn plain_text_is_emitted_at_once() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("Hello world"), "Hello world");
    }

    #[test]
    fn only_trailing_whitespace_is_held() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("Hello world "), "Hello world");
        assert_eq!(filter.push("again"), " again");
    }

    #[test]
    fn bold_opener_does_not_delay_the_word() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("The capital is **Chey"), "The capital is Chey");
    }

    #[test]
    fn pending_link_is_held_then_spoken_as_its_text() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("See [the docs"), "See");
        assert_eq!(filter.push("](https://x.y) now"), " the docs now");
    }

    #[test]
    fn line_start_holds_only_the_marker() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("Intro\n- "), "Intro");
        assert_eq!(filter.push("item"), "\nitem");
        assert_eq!(filter.push("\n#"), "");
        assert_eq!(filter.push(" Title"), "\nTitle");
    }

    #[test]
    fn underscore_after_a_word_waits_one_character() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("snake_"), "snake");
        assert_eq!(filter.push("case"), "_case");
    }

    #[test]
    fn exclamation_mark_waits_one_character_for_an_image() {
        let mut filter = SpeechFilter::new();
        assert_eq!(filter.push("Wow!"), "Wow");
        assert_eq!(filter.push(" Yes"), "! Yes");
    }

    // --- Chunk invariance, robustness -------------------------------------------------------

    #[test]
    fn every_split_of_every_corpus_input_speaks_the_same() {
        let mut rng = Lcg(7);
        for input in CORPUS {
            let pairs = input.chars().count() <= 60;
            assert_chunk_invariant(input, pairs, &mut rng);
        }
    }

    #[test]
    fn random_markup_soup_never_panics_and_speaks_clean_text() {
        const ALPHABET: &[char] = &[
            '*', '_', '~', '`', '[', ']', '(', ')', '!', '<', '>', '#', '-', '+', '|', ':', '=',
            '\\', '/', '@', '.', ' ', ' ', '\n', '\t', 'a', 'b', 'x', '1', 'é', '東', '👍',
            '\u{200D}', '\u{FE0F}', '🏽', '©', '\u{0}', '\u{1b}', '\u{7f}', '\u{9b}', '\u{202e}',
            '\u{2066}', '\u{200b}', '\u{feff}', '\u{fffd}',
        ];
        let mut rng = Lcg(42);
        for _ in 0..3000 {
            let len = rng.below(40);
            let input: String = (0..len)
                .map(|_| ALPHABET[rng.below(ALPHABET.len())])
                .collect();
            let spoken = clean_for_speech(&input);
            assert!(!spoken.contains(['*', '`', '👍', '🏽', '\u{200D}', '\u{FE0F}', '\t']));
            assert!(!spoken.chars().any(is_unspeakable), "{input:?}");
            assert!(
                !spoken.contains("  ") && !spoken.contains("\n\n"),
                "{input:?}"
            );
            assert!(
                !spoken.contains(" \n") && !spoken.contains("\n "),
                "{input:?}"
            );
            assert_eq!(spoken.trim(), spoken, "{input:?}");
            assert_chunk_invariant(&input, false, &mut rng);
        }
    }

    #[test]
    fn long_adversarial_replies_stay_linear() {
        let inputs = [
            "[".repeat(100_000),
            "![a".repeat(50_000),
            "<a".repeat(50_000),
            "<".to_string() + &"a".repeat(100_000),
            "[".to_string() + &"a <b".repeat(30_000),
            "-".repeat(100_000),
            "| - ".repeat(50_000) + "x",
            "a_".repeat(50_000),
            "```".to_string() + &"x".repeat(100_000),
        ];
        for input in &inputs {
            // Char by char is the worst case for any rescanning.
            let mut filter = SpeechFilter::new();
            let mut spoken = String::new();
            let mut buf = [0; 4];
            for c in input.chars() {
                spoken.push_str(&filter.push(c.encode_utf8(&mut buf)));
            }
            spoken.push_str(&filter.finish());
            assert_eq!(spoken, clean_for_speech(input));
        }
    }
}

//! The filter and its holds: the state machine that reads a reply one character at a time.

use super::chars::{
    could_be_autolink, could_be_tag, is_autolink, is_blank, is_emoji_part, is_html_tag,
    is_pictograph, is_rule, is_rule_char, is_unspeakable, tag_name,
};
use super::writer::Writer;

/// Bytes a pending link, `<autolink>` or code-fence info string may hold back before we give up
/// and speak it as plain text.
pub(super) const HOLD_LIMIT: usize = 200;

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

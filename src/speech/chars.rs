//! Character classes.

/// Inline HTML tags the model sometimes writes. They are dropped; `<br>` becomes a space.
const HTML_TAGS: &[&str] = &[
    "b", "br", "code", "del", "div", "em", "i", "ins", "kbd", "mark", "p", "s", "small", "span",
    "strong", "sub", "sup", "u",
];

/// Whitespace other than a newline.
pub(super) fn is_blank(c: char) -> bool {
    c != '\n' && c.is_whitespace()
}

/// Characters a horizontal rule or table separator row is made of.
pub(super) fn is_rule_char(c: char) -> bool {
    matches!(c, '-' | '_' | '*' | '=' | '|' | ':')
}

/// A whole line of rule characters is markup unless it is only colons.
pub(super) fn is_rule(line: &str) -> bool {
    line.contains(['-', '_', '*', '=', '|'])
}

/// Punctuation that hugs the word before it.
pub(super) fn closes(c: char) -> bool {
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
pub(super) fn opens(c: char) -> bool {
    matches!(c, '(' | '[' | '{' | '¿' | '¡')
}

/// Punctuation that already gives a pause, so a table cell after it needs no comma.
pub(super) fn ends_clause(c: char) -> bool {
    matches!(
        c,
        '.' | ',' | ';' | ':' | '!' | '?' | '…' | '。' | '，' | '！' | '？'
    )
}

/// Emoji pictographs: silent, but they separate the words around them.
pub(super) fn is_pictograph(c: char) -> bool {
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
pub(super) fn is_unspeakable(c: char) -> bool {
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
pub(super) fn is_emoji_part(c: char) -> bool {
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
pub(super) fn could_be_autolink(s: &str) -> bool {
    let url_char = |c: char| {
        !(c.is_whitespace() || matches!(c, '<' | '*' | '`') || is_emoji_part(c) || is_pictograph(c))
    };
    s.chars().next().is_none_or(|c| c.is_ascii_alphabetic()) && s.chars().all(url_char)
}

pub(super) fn is_autolink(s: &str) -> bool {
    !s.is_empty() && could_be_autolink(s) && s.contains([':', '@'])
}

/// `<` + `s` may still become a tag like `<br>`, `</b>` or `<br />`.
pub(super) fn could_be_tag(s: &str) -> bool {
    s.is_empty() || s == "/" || tag_name(s).is_some()
}

/// The name of a tag without attributes: `b` for `/b`, `br` for `br /`.
pub(super) fn tag_name(s: &str) -> Option<&str> {
    let body = s.strip_prefix('/').unwrap_or(s);
    let end = body
        .find(|c: char| !c.is_ascii_alphanumeric())
        .unwrap_or(body.len());
    let (name, rest) = body.split_at(end);
    let rest = rest.trim_start_matches(' ');
    let shaped = name.starts_with(|c: char| c.is_ascii_alphabetic()) && matches!(rest, "" | "/");
    shaped.then_some(name)
}

pub(super) fn is_html_tag(name: &str) -> bool {
    HTML_TAGS.iter().any(|t| t.eq_ignore_ascii_case(name))
}

//! Tests of the speech filter: one table of rules ([`SPOKEN`]) checked whole and under every
//! split, what is said before a reply ends ([`SAID_AT_ONCE`]), and robustness.

use super::chars::is_unspeakable;
use super::filter::HOLD_LIMIT;
use super::*;
use crate::test_rng::Rng;

/// Feeds `deltas` one by one and joins everything the filter says.
fn speak_deltas(deltas: &[&str]) -> String {
    let mut filter = SpeechFilter::new();
    let mut spoken = String::new();
    for delta in deltas {
        spoken.push_str(&filter.push(delta));
    }
    spoken.push_str(&filter.finish());
    spoken
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

fn random_cuts(s: &str, rng: &mut Rng) -> Vec<usize> {
    let bounds = char_bounds(s);
    let mut cuts: Vec<usize> = (0..1 + rng.below(6))
        .map(|_| bounds[rng.below(bounds.len())])
        .collect();
    cuts.sort_unstable();
    cuts
}

/// Every way of splitting `input` into deltas that we try must speak exactly `whole`: char by
/// char, at every single split, at every pair of splits when `pairs`, and at 40 random ones.
fn assert_same_for_every_split(input: &str, whole: &str, pairs: bool, rng: &mut Rng) {
    let bounds = char_bounds(input);
    let chars: Vec<String> = input.chars().map(String::from).collect();
    let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
    assert_eq!(speak_deltas(&chars), whole, "char by char: {input:?}");
    for &i in &bounds {
        assert_eq!(
            speak_deltas(&split_at_all(input, &[i])),
            whole,
            "split {i}: {input:?}"
        );
    }
    if pairs {
        for (n, &i) in bounds.iter().enumerate() {
            for &j in &bounds[n..] {
                let pieces = split_at_all(input, &[i, j]);
                assert_eq!(speak_deltas(&pieces), whole, "splits {i},{j}: {input:?}");
            }
        }
    }
    for _ in 0..40 {
        let cuts = random_cuts(input, rng);
        let pieces = split_at_all(input, &cuts);
        assert_eq!(speak_deltas(&pieces), whole, "splits {cuts:?}: {input:?}");
    }
}

/// Every rule as (reply as the model wrote it, what is spoken). Each row is checked whole and
/// under every split, so a new rule is one line here.
const SPOKEN: &[(&str, &str)] = &[
    // --- Examples from the brief -------------------------------------------------------------
    (
        "The capital of Wyoming is **Cheyenne**.\n",
        "The capital of Wyoming is Cheyenne.",
    ),
    // Plain text passes through unchanged.
    (
        "Hello, world. Ça va? 2 + 2 = 4",
        "Hello, world. Ça va? 2 + 2 = 4",
    ),
    // Empty and markup-only replies are silent.
    ("", ""),
    ("   ", ""),
    ("**", ""),
    ("---", ""),
    ("🎉", ""),
    ("```", ""),
    ("\n\n", ""),
    ("| --- |", ""),
    ("[](x)", ""),
    // --- Emphasis ----------------------------------------------------------------------------
    ("**bold**, *it*, ***both***", "bold, it, both"),
    // Underscore emphasis is removed but snake_case kept.
    (
        "__bold__ and _it_ in snake_case_name",
        "bold and it in snake_case_name",
    ),
    // Strikethrough is removed but a single tilde kept.
    ("~~old~~ new, ~5 min", "old new, ~5 min"),
    // A lone star is dropped.
    ("a * b and Note*", "a b and Note"),
    // --- Line markers ------------------------------------------------------------------------
    (
        "# Title\n## Sub\n###### Deep\nText",
        "Title\nSub\nDeep\nText",
    ),
    // A hash without a following space is text.
    ("#1 pick in C#", "#1 pick in C#"),
    ("####### seven", "####### seven"),
    // Blockquote markers are removed but greater-than kept.
    ("> Quoted\n> > nested\n5 > 3", "Quoted\nnested\n5 > 3"),
    // Bullets are removed at any indent.
    (
        "- one\n* two\n+ three\n  - nested",
        "one\ntwo\nthree\nnested",
    ),
    ("* **Item:** text\n  * *sub* item", "Item: text\nsub item"),
    // Numbered items are kept.
    ("1. First\n2. Second", "1. First\n2. Second"),
    // A sign before a number is kept but a dash run dropped.
    (
        "-5 degrees\n+1 vote\n-- Signed",
        "-5 degrees\n+1 vote\nSigned",
    ),
    // Horizontal rules are removed.
    ("Above\n---\n***\n___\n- - -\nBelow", "Above\nBelow"),
    // Lines of colons and equals signs are kept as text.
    ("x\n:\n= 5\n::", "x\n:\n= 5\n::"),
    // Task-list boxes are dropped.
    ("- [ ] todo\n- [x] done", "todo\ndone"),
    // --- Code --------------------------------------------------------------------------------
    ("Use `x` and ``y``.", "Use x and y."),
    // Fence lines are removed and code kept.
    (
        "Code:\n```rust\nfn main() {}\n```\nDone.",
        "Code:\nfn main() {}\nDone.",
    ),
    ("~~~python\nprint(1)\n~~~", "print(1)"),
    // Triple backticks on one line are inline code.
    ("```x = 1```", "x = 1"),
    // --- Links -------------------------------------------------------------------------------
    // A link keeps its text, even with parentheses in the URL.
    (
        "See [the docs](https://example.com/a_(b)) now.",
        "See the docs now.",
    ),
    // Link text is cleaned too.
    ("[**Docs**](u) and [snake_case](v).", "Docs and snake_case."),
    (
        "[snake_case](v)_x <a👍:b> <a*:b>",
        "snake_casex <a:b> <a:b>",
    ),
    // An image keeps its alt text.
    ("![A cat](cat.png) sleeps", "A cat sleeps"),
    ("Wow! ![x](y) [Hi!](u)!", "Wow! x Hi!!"),
    // An autolink keeps its URL.
    (
        "Visit <https://x.y/a_b> today",
        "Visit https://x.y/a_b today",
    ),
    // An unmatched bracket is spoken literally.
    ("Array [1] and [note", "Array [1] and [note"),
    ("[a [b](u)", "[a b"),
    ("<a[b](c) d>", "<ab d>"),
    // A stray bracket gives up at a newline (and after HOLD_LIMIT: see its own test).
    ("[oops\nNext", "[oops\nNext"),
    // --- Tables ------------------------------------------------------------------------------
    // A table becomes comma-separated lines without its separator row.
    (
        "| Name | Age |\n|:---|---:|\n| Bob | 30 |",
        "Name, Age\nBob, 30",
    ),
    // A cell ending in punctuation gets no extra comma.
    ("| Yes. | No |", "Yes. No"),
    // --- Emoji -------------------------------------------------------------------------------
    // Emoji is removed without doubling spaces.
    ("Hello 👋 there", "Hello there"),
    // A removal leaves no space before punctuation or after a bracket.
    ("**Hi** 🎉!", "Hi!"),
    ("(🎉 yay)", "(yay)"),
    // A space the model wrote before punctuation is kept.
    ("Bonjour !", "Bonjour !"),
    // Emoji between words becomes a space.
    ("Great🎉Thanks", "Great Thanks"),
    // ZWJ families, flags, skin tones and symbols vanish whole.
    ("Family 👨‍👩‍👧‍👦 and 🇫🇷 flag 👍🏽 ok ⭐ ✅", "Family and flag ok"),
    // A keycap emoji keeps its digit.
    ("1️⃣ First", "1 First"),
    // Text symbols and all scripts are kept.
    (
        "© ® ™ café 東京 Москва مرحبا ½ → €",
        "© ® ™ café 東京 Москва مرحبا ½ → €",
    ),
    // --- Control, bidi and zero-width characters: dropped as if never sent -------------------
    // NUL and BEL
    ("Hel\u{0}lo\u{7} there", "Hello there"),
    // ESC
    ("\u{1b}red\u{1b}", "red"),
    // DEL and C1 controls
    ("a\u{7f}b\u{80}c\u{9b}d\u{9f}e", "abcde"),
    // file and unit separators
    ("a\u{1c}b\u{1f}c", "abc"),
    // bidi overrides and embeddings
    (
        "\u{202e}evil\u{202c} \u{202a}a\u{202b}b\u{202d}c",
        "evil abc",
    ),
    // bidi isolates
    ("\u{2066}x\u{2069} \u{2067}y\u{2068}z", "x yz"),
    // bidi marks
    ("a\u{200e}b\u{200f}c\u{61c}d", "abcd"),
    // zero-width space and non-joiner
    ("zero\u{200b}width\u{200c}", "zerowidth"),
    // word joiner and BOM
    ("\u{feff}a\u{2060}b\u{feff}", "ab"),
    // soft hyphen
    ("hy\u{ad}phen", "hyphen"),
    // replacement character
    ("bad\u{fffd}byte \u{fffd}", "badbyte"),
    // only unspeakable
    ("\u{0}\u{7}\u{200b}\u{fffd}\u{202e}", ""),
    // inside markup
    ("**bo\u{0}ld** [li\u{7}nk](u\u{0}rl)", "bold link"),
    // inside an autolink
    ("<https://a\u{0}.b\u{202e}/c>", "https://a.b/c"),
    // before a line marker
    ("\u{200b}- item\n\u{feff}# Title", "item\nTitle"),
    // Emoji parts and whitespace controls keep their own handling: ZWJ family
    ("a 👨\u{200d}👩\u{200d}👧 b", "a b"),
    // tab, CR, NEL
    ("a\tb\rc\u{85}d", "a b c d"),
    // line and paragraph separators
    ("a\u{2028}b\u{2029}c", "a b c"),
    // --- Whitespace, HTML, escapes -----------------------------------------------------------
    // Whitespace is collapsed and trimmed.
    ("  Hi \t there\n\n\n  next  ", "Hi there\nnext"),
    ("a\r\n- b", "a\nb"),
    // <br> becomes a space and inline HTML tags are dropped.
    ("a<br>b <b>c</b> <br/>d", "a b c d"),
    // Angle brackets that are not tags are spoken.
    (
        "a < b, x<y and <3 and <your-name>",
        "a < b, x<y and <3 and <your-name>",
    ),
    // Backslash escapes give the plain character.
    (
        "snake\\_case, \\# not heading, C:\\Users, 2 \\* 3",
        "snake_case, # not heading, C:\\Users, 2 3",
    ),
    ("\\\nline", "line"),
];

#[test]
fn every_reply_in_the_table_is_spoken_as_written_there() {
    for &(input, expected) in SPOKEN {
        assert_eq!(clean_for_speech(input), expected, "{input:?}");
    }
}

#[test]
fn every_split_of_every_reply_in_the_table_speaks_the_same() {
    let mut rng = Rng::new(7);
    for &(input, expected) in SPOKEN {
        let pairs = input.chars().count() <= 60;
        assert_same_for_every_split(input, expected, pairs, &mut rng);
    }
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

#[test]
fn finish_resets_the_filter_for_the_next_reply() {
    let mut filter = SpeechFilter::new();
    assert_eq!(filter.push("One [pending"), "One");
    assert_eq!(filter.finish(), " [pending");
    assert_eq!(filter.push("- Two"), "Two");
    assert_eq!(filter.finish(), "");
}

// --- Minimal hold-back ---------------------------------------------------------------------

/// What the filter says at once, before the reply ends: for each case the deltas pushed in turn,
/// each with what `push` returns for it.
const SAID_AT_ONCE: &[&[(&str, &str)]] = &[
    // Gemini's deltas from the brief: each is spoken as it arrives.
    &[
        ("The", "The"),
        (" capital of Wyoming", " capital of Wyoming"),
        (" is **Cheyenne**.\n", " is Cheyenne."),
    ],
    // Plain text is emitted at once.
    &[("Hello world", "Hello world")],
    // Only trailing whitespace is held.
    &[("Hello world ", "Hello world"), ("again", " again")],
    // A bold opener does not delay the word.
    &[("The capital is **Chey", "The capital is Chey")],
    // A pending link is held, then spoken as its text.
    &[
        ("See [the docs", "See"),
        ("](https://x.y) now", " the docs now"),
    ],
    // A line start holds only the marker.
    &[
        ("Intro\n- ", "Intro"),
        ("item", "\nitem"),
        ("\n#", ""),
        (" Title", "\nTitle"),
    ],
    // An underscore after a word waits one character.
    &[("snake_", "snake"), ("case", "_case")],
    // An exclamation mark waits one character for an image.
    &[("Wow!", "Wow"), (" Yes", "! Yes")],
];

#[test]
fn only_what_later_characters_decide_is_held_back() {
    for steps in SAID_AT_ONCE {
        let mut filter = SpeechFilter::new();
        for &(delta, said) in *steps {
            assert_eq!(filter.push(delta), said, "{delta:?} in {steps:?}");
        }
    }
}

// --- Robustness ----------------------------------------------------------------------------

#[test]
fn random_markup_soup_never_panics_and_speaks_clean_text() {
    const ALPHABET: &[char] = &[
        '*', '_', '~', '`', '[', ']', '(', ')', '!', '<', '>', '#', '-', '+', '|', ':', '=', '\\',
        '/', '@', '.', ' ', ' ', '\n', '\t', 'a', 'b', 'x', '1', 'é', '東', '👍', '\u{200D}',
        '\u{FE0F}', '🏽', '©', '\u{0}', '\u{1b}', '\u{7f}', '\u{9b}', '\u{202e}', '\u{2066}',
        '\u{200b}', '\u{feff}', '\u{fffd}',
    ];
    let mut rng = Rng::new(42);
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
        assert_same_for_every_split(&input, &spoken, false, &mut rng);
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

#[test]
fn only_invisible_characters_say_nothing() {
    let table = [
        ("Hi", true),
        ("👍", true),
        ("?", true),
        ("\u{200B}hi\u{200B}", true),
        ("", false),
        (" \t\n", false),
        ("\u{200B}\u{FEFF}\u{200E}", false),
        ("\u{0}\u{7}\u{1B}\u{7F}", false),
        ("\u{202E}\u{2066}\u{FFFD}", false),
        ("\u{200D}\u{FE0F}", false),
    ];
    for (text, expected) in table {
        assert_eq!(says_something(text), expected, "{text:?}");
    }
}

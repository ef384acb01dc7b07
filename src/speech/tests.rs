use super::chars::is_unspeakable;
use super::filter::HOLD_LIMIT;
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
        '*', '_', '~', '`', '[', ']', '(', ')', '!', '<', '>', '#', '-', '+', '|', ':', '=', '\\',
        '/', '@', '.', ' ', ' ', '\n', '\t', 'a', 'b', 'x', '1', 'é', '東', '👍', '\u{200D}',
        '\u{FE0F}', '🏽', '©', '\u{0}', '\u{1b}', '\u{7f}', '\u{9b}', '\u{202e}', '\u{2066}',
        '\u{200b}', '\u{feff}', '\u{fffd}',
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

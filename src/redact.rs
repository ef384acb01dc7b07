//! Keeping secrets out of text that leaves the worker: error bodies and log lines.

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// `text` with every occurrence of each non-empty secret replaced by [`REDACTED`], then cut to
/// at most `max_chars` characters. The order matters: cutting first can leave the start of a
/// secret that straddled the cut, which no replacement would then recognise.
pub fn redact(text: &str, secrets: &[&str], max_chars: usize) -> String {
    let mut redacted = text.to_string();
    for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
        redacted = redacted.replace(secret, REDACTED);
    }
    redacted.chars().take(max_chars).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk_live_0123456789abcdef";

    #[test]
    fn secrets_are_replaced_then_the_text_is_cut() {
        let cases: [(&str, String, &[&str], usize, String); 6] = [
            ("no secret", "plain".into(), &[KEY], 300, "plain".into()),
            (
                "every occurrence",
                format!("{KEY} and {KEY}"),
                &[KEY],
                300,
                "[redacted] and [redacted]".into(),
            ),
            (
                // Cut first, the text would end in "sk_li": the start of the key.
                "a secret straddling the cut",
                format!("{}{KEY} tail", "x".repeat(295)),
                &[KEY],
                300,
                format!("{}[reda", "x".repeat(295)),
            ),
            (
                "several secrets",
                "a=one b=two".into(),
                &["one", "two"],
                300,
                "a=[redacted] b=[redacted]".into(),
            ),
            (
                "an empty secret is no secret",
                "abc".into(),
                &[""],
                300,
                "abc".into(),
            ),
            (
                "cut by characters, not bytes",
                "ééé".into(),
                &[],
                2,
                "éé".into(),
            ),
        ];
        for (name, text, secrets, max_chars, expected) in cases {
            assert_eq!(redact(&text, secrets, max_chars), expected, "{name}");
        }
    }

    #[test]
    fn no_prefix_of_a_straddling_secret_survives_at_any_cut() {
        for at in 0..=40 {
            let text = format!("{}{KEY}", "x".repeat(at));
            let out = redact(&text, &[KEY], 30);
            assert!(!out.contains("sk_"), "cut at {at}: {out}");
        }
    }
}

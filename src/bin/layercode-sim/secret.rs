//! Where the webhook secret comes from, so a developer who ran ./scripts/dev.sh needs no flags:
//! `--secret`, else `$LAYERCODE_WEBHOOK_SECRET`, else `.dev.vars` (the file `wrangler dev` reads).
//! The secret itself is never printed; only where it came from.

use std::path::Path;

/// The variable the worker reads its secret from.
pub const SECRET_VAR: &str = "LAYERCODE_WEBHOOK_SECRET";

/// A secret and a human description of its source.
pub struct Secret {
    pub value: String,
    pub source: &'static str,
}

/// Picks the secret. The worker accepts a comma-separated list (for rotation); any one of them
/// signs valid webhooks, so the first is used.
pub fn resolve(
    flag: Option<String>,
    env: Option<String>,
    dev_vars: &Path,
) -> Result<Secret, String> {
    let first = |list: &str| {
        list.split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    if let Some(value) = flag {
        return match first(&value) {
            v if v.is_empty() => Err("--secret is empty".to_string()),
            v => Ok(Secret {
                value: v,
                source: "--secret",
            }),
        };
    }
    if let Some(value) = env.map(|v| first(&v)).filter(|v| !v.is_empty()) {
        return Ok(Secret {
            value,
            source: "$LAYERCODE_WEBHOOK_SECRET",
        });
    }
    let from_file = std::fs::read_to_string(dev_vars)
        .ok()
        .and_then(|text| dotenv_value(&text, SECRET_VAR))
        .map(|v| first(&v))
        .filter(|v| !v.is_empty());
    match from_file {
        Some(value) => Ok(Secret {
            value,
            source: ".dev.vars",
        }),
        None => Err(format!(
            "no webhook secret: pass --secret, set {SECRET_VAR}, or put {SECRET_VAR}=… in \
             .dev.vars in the current directory (the same value the worker uses)"
        )),
    }
}

/// The value of `key` in dotenv text (`KEY=value`, `export KEY=value`, `"quoted"`, `'quoted'`,
/// `# comments`). The last assignment wins, as in dotenv loaders.
pub fn dotenv_value(text: &str, key: &str) -> Option<String> {
    let mut found = None;
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            continue;
        };
        if name.trim() == key {
            found = Some(unquote(value.trim()));
        }
    }
    found
}

fn unquote(value: &str) -> String {
    for quote in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(quote) {
            // Up to the closing quote; anything after it (a comment) is dropped.
            return match inner.find(quote) {
                Some(end) => inner[..end].to_string(),
                None => inner.to_string(),
            };
        }
    }
    // Unquoted: a ` #` starts a comment.
    match value.find(" #") {
        Some(at) => value[..at].trim_end().to_string(),
        None => value.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "# comment\nLAYERCODE_API_KEY=k\n";

    #[test]
    fn dotenv_syntaxes() {
        for (text, want) in [
            ("LAYERCODE_WEBHOOK_SECRET=abc", Some("abc")),
            ("LAYERCODE_WEBHOOK_SECRET = abc  ", Some("abc")),
            ("export LAYERCODE_WEBHOOK_SECRET=abc", Some("abc")),
            ("LAYERCODE_WEBHOOK_SECRET=\"a b#c\" # note", Some("a b#c")),
            ("LAYERCODE_WEBHOOK_SECRET='abc'", Some("abc")),
            ("LAYERCODE_WEBHOOK_SECRET=abc # note", Some("abc")),
            ("LAYERCODE_WEBHOOK_SECRET=", Some("")),
            ("#LAYERCODE_WEBHOOK_SECRET=abc", None),
            ("LAYERCODE_WEBHOOK_SECRET_OLD=abc", None),
            (
                "LAYERCODE_WEBHOOK_SECRET=a\nLAYERCODE_WEBHOOK_SECRET=b",
                Some("b"),
            ),
        ] {
            assert_eq!(
                dotenv_value(&format!("{FILE}{text}\n"), SECRET_VAR).as_deref(),
                want,
                "{text}"
            );
        }
    }

    #[test]
    fn precedence_and_first_of_a_list() {
        let dir = std::env::temp_dir().join(format!("layercode-sim-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(".dev.vars");
        std::fs::write(&file, "LAYERCODE_WEBHOOK_SECRET=\"new, old\"\n").unwrap();

        let flag = resolve(Some("f".into()), Some("e".into()), &file).unwrap();
        assert_eq!((flag.value.as_str(), flag.source), ("f", "--secret"));
        let env = resolve(None, Some(" e1 ,e2".into()), &file).unwrap();
        assert_eq!(env.value, "e1");
        let from_file = resolve(None, Some(String::new()), &file).unwrap();
        assert_eq!(
            (from_file.value.as_str(), from_file.source),
            ("new", ".dev.vars")
        );

        assert!(resolve(None, None, &dir.join("missing")).is_err());
        assert!(resolve(Some(" ".into()), None, &file).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! The `MODELS` setting: the chain of models a turn may ask, in order of preference.
//!
//! `MODELS` is a JSON array; each entry is `{"api", "model", "base_url"?, "key"?,
//! "first_token_ms"?}` with `api` `"gemini"` or `"openai"` (the OpenAI chat completions wire, as
//! OpenAI, Groq, Cerebras, OpenRouter, Ollama, llama.cpp and Workers AI speak it). A value that
//! does not parse or breaks a rule is refused whole (one clear message for `/health` and the
//! log), like `TOOLS`: turns then run with the default Gemini entry. Unset, blank or `[]` means
//! that default entry (`GEMINI_MODEL`), exactly as before `MODELS` existed.
//!
//! Pure and a leaf: it never reads a setting itself. `config` looks up each entry's key by the
//! name given here and builds the [`Endpoint`]s the turn uses.

use serde_json::{Map, Value};

/// The wire families a model entry can speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// Google Gemini, `streamGenerateContent?alt=sse`.
    Gemini,
    /// Any OpenAI-compatible `POST {base_url}/chat/completions`.
    OpenAi,
}

impl Api {
    /// As `MODELS` and the log write it.
    pub fn name(self) -> &'static str {
        match self {
            Api::Gemini => "gemini",
            Api::OpenAi => "openai",
        }
    }

    /// The secret an entry's key is read from when it names none.
    pub fn default_key(self) -> &'static str {
        match self {
            Api::Gemini => "GOOGLE_GENERATIVE_AI_API_KEY",
            Api::OpenAi => "OPENAI_API_KEY",
        }
    }
}

/// OpenAI's default endpoint (an openai entry without `base_url`).
pub const DEFAULT_OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// A chain longer than this cannot fit in any caller's patience.
pub const MAX_ENTRIES: usize = 8;
/// Bounds of `first_token_ms` (the same as `GEMINI_TIMEOUT_MS`'s).
pub const FIRST_TOKEN_MS_RANGE: (u64, u64) = (100, 120_000);
/// Model ids are short; this only stops a pasted document.
const MAX_MODEL_CHARS: usize = 256;

/// One entry of `MODELS`, as written (the key is a setting's name, never its value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub api: Api,
    pub model: String,
    /// Without a trailing `/`; `None`: the family's default (gemini: `GEMINI_API_BASE_URL`).
    pub base_url: Option<String>,
    /// The name of the secret holding the key; `""`: the endpoint takes no key.
    pub key: String,
    pub first_token_ms: Option<u64>,
}

/// One model of the chain, ready to be asked: the entry with its base URL and key resolved.
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub api: Api,
    pub model: String,
    pub base_url: String,
    /// The name of the secret holding the key; `""` when the endpoint takes none.
    pub key_name: String,
    /// The key's value: `None` when `key_name` is `""`, or when that secret is not set.
    pub key: Option<String>,
    /// As configured; `None`: the default share (see [`first_token_ms`]).
    pub first_token_ms: Option<u64>,
}

impl Endpoint {
    /// Whether the endpoint can be asked: it takes no key, or its key is set.
    pub fn key_present(&self) -> bool {
        self.key_name.is_empty() || self.key.is_some()
    }

    /// The host of `base_url` (for `/health` and the log: never a path or a query).
    pub fn host(&self) -> &str {
        host_of(&self.base_url)
    }
}

/// Never prints the key.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("api", &self.api)
            .field("model", &self.model)
            .field("base_url", &self.base_url)
            .field("key_name", &self.key_name)
            .field("key_present", &self.key_present())
            .field("first_token_ms", &self.first_token_ms)
            .finish()
    }
}

/// How long entry `index` of a chain of `len` may take to its first speakable text or tool call:
/// its own `first_token_ms`, else the whole silence budget for the last entry and a third of it
/// for the others (long past a healthy first token, leaving two thirds for what follows).
pub fn first_token_ms(configured: Option<u64>, index: usize, len: usize, silence_ms: u64) -> u64 {
    match configured {
        Some(ms) => ms,
        None if index + 1 >= len => silence_ms,
        None => silence_ms / 3,
    }
}

/// Parses `MODELS`. Unset, blank or `[]`: no entries (the default Gemini entry applies).
/// `reserved` are setting names a `key` may not name (the worker's own secrets and settings,
/// which must never be sent to a model provider).
pub fn parse(raw: &str, reserved: &[&str]) -> Result<Vec<ModelEntry>, String> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    let value: Value = serde_json::from_slice(raw.as_bytes())
        .map_err(|e| format!("MODELS is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err("MODELS must be a JSON array of models".to_string());
    };
    if items.len() > MAX_ENTRIES {
        return Err(format!(
            "MODELS lists {} models; at most {MAX_ENTRIES}",
            items.len()
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            parse_entry(item, reserved).map_err(|e| {
                match item.get("model").and_then(Value::as_str) {
                    Some(model) => format!("MODELS[{index}] ({model}): {e}"),
                    None => format!("MODELS[{index}]: {e}"),
                }
            })
        })
        .collect()
}

const FIELDS: [&str; 5] = ["api", "model", "base_url", "key", "first_token_ms"];

fn parse_entry(item: &Value, reserved: &[&str]) -> Result<ModelEntry, String> {
    let Value::Object(fields) = item else {
        return Err("each model must be a JSON object".to_string());
    };
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown}"));
    }
    let api = match fields.get("api").and_then(Value::as_str) {
        Some("gemini") => Api::Gemini,
        Some("openai") => Api::OpenAi,
        Some(other) => {
            return Err(format!(
                "unknown api \"{other}\"; it must be \"gemini\" or \"openai\""
            ))
        }
        None => return Err("api must be \"gemini\" or \"openai\"".to_string()),
    };
    let model = model_id(fields, api)?;
    let base_url = match fields.get("base_url") {
        None => None,
        Some(Value::String(url)) => Some(check_base_url(url.trim())?),
        Some(_) => return Err("base_url must be a string".to_string()),
    };
    let key = match fields.get("key") {
        None => api.default_key().to_string(),
        Some(Value::String(name)) => check_key_name(name.trim(), reserved)?,
        Some(_) => return Err("key must be the name of a secret (a string)".to_string()),
    };
    let first_token_ms = match fields.get("first_token_ms") {
        None => None,
        Some(value) => Some(
            value
                .as_u64()
                .filter(|ms| (FIRST_TOKEN_MS_RANGE.0..=FIRST_TOKEN_MS_RANGE.1).contains(ms))
                .ok_or_else(|| {
                    format!(
                        "first_token_ms must be a whole number from {} to {}",
                        FIRST_TOKEN_MS_RANGE.0, FIRST_TOKEN_MS_RANGE.1
                    )
                })?,
        ),
    };
    Ok(ModelEntry {
        api,
        model,
        base_url,
        key,
        first_token_ms,
    })
}

/// The `model` field, checked by [`check_model_id`].
fn model_id(fields: &Map<String, Value>, api: Api) -> Result<String, String> {
    match fields.get("model").and_then(Value::as_str).map(str::trim) {
        Some(model) if !model.is_empty() => check_model_id(model, api),
        _ => Err("model must be a non-empty string".to_string()),
    }
}

/// A Gemini id goes into the URL path, so it is held to the characters ids use; an OpenAI id goes
/// in the JSON body (`@cf/meta/llama-3.1-8b-instruct`, `llama3.2:3b`), so anything printable.
fn check_model_id(model: &str, api: Api) -> Result<String, String> {
    let too_long = model.chars().count() > MAX_MODEL_CHARS;
    match api {
        Api::Gemini => {
            let model = model.trim_start_matches("models/");
            let valid = !model.is_empty()
                && model
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
            if !valid || too_long {
                return Err(
                    "a gemini model id holds only letters, digits, - . _ (e.g. gemini-2.5-flash-lite)"
                        .to_string(),
                );
            }
            Ok(model.to_string())
        }
        Api::OpenAi => {
            if too_long || model.chars().any(char::is_control) {
                return Err(format!(
                    "model must be printable and at most {MAX_MODEL_CHARS} characters"
                ));
            }
            Ok(model.to_string())
        }
    }
}

/// The model that writes a long call's summary when `SUMMARY_MODEL` is set (and not `off`) to
/// `id`: the entry of `chain` whose `model` is `id`, else `id` on the first entry's endpoint
/// (its `api`, base URL and key: a cheaper model of the same provider). Either way a key only
/// ever goes where `MODELS` already sends it. `Err`: why the id was refused, checked by the
/// rules of the `api` it would be sent to.
pub fn summary_endpoint(id: &str, chain: &[Endpoint]) -> Result<Endpoint, String> {
    let named = chain
        .iter()
        .find(|entry| check_model_id(id, entry.api).is_ok_and(|model| model == entry.model));
    if let Some(entry) = named {
        return Ok(entry.clone());
    }
    let first = chain
        .first()
        .ok_or_else(|| "SUMMARY_MODEL: no model is configured".to_string())?;
    let model = check_model_id(id, first.api).map_err(|e| {
        format!(
            "SUMMARY_MODEL names no MODELS entry, so it is a model of the first one ({} at {}): {e}",
            first.api.name(),
            first.host()
        )
    })?;
    Ok(Endpoint {
        model,
        first_token_ms: None,
        ..first.clone()
    })
}

/// An absolute `http`/`https` URL with a host and no query or fragment (the request path is
/// appended to it), without its trailing `/`.
fn check_base_url(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split('/').next().unwrap_or_default());
    let valid = host.is_some_and(|h| !h.is_empty() && !h.starts_with(':') && !h.contains('@'))
        && !url
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '?' || c == '#');
    if valid {
        Ok(url.trim_end_matches('/').to_string())
    } else {
        Err("base_url must be an absolute http or https URL without a query".to_string())
    }
}

/// A name the worker can read a secret by (a binding name), and not one of its own settings.
fn check_key_name(name: &str, reserved: &[&str]) -> Result<String, String> {
    if name.is_empty() {
        return Ok(String::new()); // the endpoint takes no key
    }
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 128;
    if !valid {
        return Err(
            "key must be the NAME of a secret (letters, digits and _, e.g. GROQ_API_KEY), or \"\" \
             for an endpoint that takes no key"
                .to_string(),
        );
    }
    if reserved.contains(&name) {
        return Err(format!(
            "key names {name}, one of the worker's own settings, which is never sent to a model"
        ));
    }
    Ok(name.to_string())
}

/// The host (and port) of an absolute URL.
pub fn host_of(url: &str) -> &str {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    rest.split(['/', '?', '#']).next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESERVED: [&str; 2] = ["LAYERCODE_API_KEY", "TOOLS_SIGNING_SECRET"];

    fn parse(raw: &str) -> Result<Vec<ModelEntry>, String> {
        super::parse(raw, &RESERVED)
    }

    #[test]
    fn the_readme_examples_parse() {
        let openai = parse(r#"[{"api": "openai", "model": "gpt-4.1-mini"}]"#).unwrap();
        assert_eq!(
            openai,
            vec![ModelEntry {
                api: Api::OpenAi,
                model: "gpt-4.1-mini".into(),
                base_url: None,
                key: "OPENAI_API_KEY".into(),
                first_token_ms: None,
            }]
        );
        let groq = parse(
            r#"[{"api": "openai", "model": "llama-3.3-70b-versatile",
                 "base_url": "https://api.groq.com/openai/v1/", "key": "GROQ_API_KEY",
                 "first_token_ms": 1500},
                {"api": "gemini", "model": "models/gemini-2.5-flash-lite"}]"#,
        )
        .unwrap();
        assert_eq!(
            groq[0].base_url.as_deref(),
            Some("https://api.groq.com/openai/v1")
        );
        assert_eq!(groq[0].key, "GROQ_API_KEY");
        assert_eq!(groq[0].first_token_ms, Some(1500));
        assert_eq!(groq[1].api, Api::Gemini);
        assert_eq!(groq[1].model, "gemini-2.5-flash-lite");
        assert_eq!(groq[1].key, "GOOGLE_GENERATIVE_AI_API_KEY");
        let ollama = parse(
            r#"[{"api": "openai", "model": "llama3.2:3b", "base_url": "http://localhost:11434/v1", "key": ""}]"#,
        )
        .unwrap();
        assert_eq!(ollama[0].key, "");
    }

    #[test]
    fn unset_blank_or_empty_means_the_default() {
        assert_eq!(parse(""), Ok(Vec::new()));
        assert_eq!(parse(" \n"), Ok(Vec::new()));
        assert_eq!(parse("[]"), Ok(Vec::new()));
    }

    #[test]
    fn invalid_values_are_refused_whole_with_a_clear_message() {
        let nine = format!("[{}]", [r#"{"api": "gemini", "model": "g"}"#; 9].join(","));
        let cases: Vec<(String, &str)> = vec![
            ("[".into(), "MODELS is not valid JSON"),
            (r#"{"api": "openai"}"#.into(), "MODELS must be a JSON array"),
            (nine, "MODELS lists 9 models; at most 8"),
            ("[1]".into(), "MODELS[0]: each model must be a JSON object"),
            (
                r#"[{"api": "anthropic", "model": "c"}]"#.into(),
                "MODELS[0] (c): unknown api \"anthropic\"",
            ),
            (r#"[{"model": "c"}]"#.into(), "MODELS[0] (c): api must be"),
            (
                r#"[{"api": "openai"}]"#.into(),
                "MODELS[0]: model must be a non-empty string",
            ),
            (
                r#"[{"api": "openai", "model": " "}]"#.into(),
                "model must be a non-empty string",
            ),
            (
                r#"[{"api": "gemini", "model": "g/../x"}]"#.into(),
                "a gemini model id holds only",
            ),
            (
                r#"[{"api": "openai", "model": "m", "modle": "x"}]"#.into(),
                "MODELS[0] (m): unknown field modle",
            ),
            (
                r#"[{"api": "openai", "model": "m", "base_url": "ftp://x"}]"#.into(),
                "base_url must be an absolute http or https URL",
            ),
            (
                r#"[{"api": "openai", "model": "m", "base_url": "api.openai.com/v1"}]"#.into(),
                "base_url must be an absolute",
            ),
            (
                r#"[{"api": "openai", "model": "m", "base_url": "https://x.example/v1?key=1"}]"#
                    .into(),
                "without a query",
            ),
            (
                r#"[{"api": "openai", "model": "m", "base_url": "https://user@x.example"}]"#.into(),
                "base_url must be",
            ),
            (
                r#"[{"api": "openai", "model": "m", "base_url": 3}]"#.into(),
                "base_url must be a string",
            ),
            (
                r#"[{"api": "openai", "model": "m", "key": "sk-live-123"}]"#.into(),
                "key must be the NAME of a secret",
            ),
            (
                r#"[{"api": "openai", "model": "m", "key": 1}]"#.into(),
                "key must be the name of a secret",
            ),
            (
                r#"[{"api": "openai", "model": "m", "key": "LAYERCODE_API_KEY"}]"#.into(),
                "key names LAYERCODE_API_KEY, one of the worker's own settings",
            ),
            (
                r#"[{"api": "openai", "model": "m", "first_token_ms": 0}]"#.into(),
                "first_token_ms must be a whole number from 100 to 120000",
            ),
            (
                r#"[{"api": "openai", "model": "m", "first_token_ms": "900"}]"#.into(),
                "first_token_ms must be",
            ),
            (
                r#"[{"api": "openai", "model": "ok"}, {"api": "gemini"}]"#.into(),
                "MODELS[1]: model must be",
            ),
        ];
        for (raw, expected) in cases {
            let error = parse(&raw).expect_err(&raw);
            assert!(
                error.contains(expected),
                "{raw}\n  gave: {error}\n  want: {expected}"
            );
        }
    }

    #[test]
    fn the_default_first_token_share_leaves_room_for_what_follows() {
        assert_eq!(first_token_ms(None, 0, 1, 10_000), 10_000);
        assert_eq!(first_token_ms(None, 0, 2, 10_000), 3_333);
        assert_eq!(first_token_ms(None, 1, 2, 10_000), 10_000);
        assert_eq!(first_token_ms(Some(800), 1, 2, 10_000), 800);
    }

    fn endpoint(api: Api, model: &str, host: &str, key_name: &str) -> Endpoint {
        Endpoint {
            api,
            model: model.into(),
            base_url: format!("https://{host}/v1"),
            key_name: key_name.into(),
            key: Some(format!("value of {key_name}")),
            first_token_ms: Some(1_500),
        }
    }

    #[test]
    fn summary_model_is_an_entry_or_a_model_of_the_first_entry() {
        let groq = endpoint(Api::OpenAi, "llama-3.3-70b", "api.groq.com", "GROQ_API_KEY");
        let gemini = endpoint(
            Api::Gemini,
            "gemini-2.5-flash",
            "generativelanguage.googleapis.com",
            "GOOGLE_GENERATIVE_AI_API_KEY",
        );
        let chain = [groq.clone(), gemini.clone()];
        // An entry's model: that entry, whole (its own api, base URL and key).
        assert_eq!(
            summary_endpoint("gemini-2.5-flash", &chain),
            Ok(gemini.clone())
        );
        assert_eq!(
            summary_endpoint("models/gemini-2.5-flash", &chain),
            Ok(gemini.clone())
        );
        assert_eq!(summary_endpoint("llama-3.3-70b", &chain), Ok(groq.clone()));
        // Any other id: that model on the first entry's endpoint, with its key, no first-token
        // bound (nobody is waiting for a summary).
        let cheaper = summary_endpoint("llama-3.1-8b-instant", &chain).unwrap();
        assert_eq!(
            cheaper,
            Endpoint {
                model: "llama-3.1-8b-instant".into(),
                first_token_ms: None,
                ..groq
            }
        );
        let lite = summary_endpoint(
            "models/gemini-2.5-flash-lite",
            std::slice::from_ref(&gemini),
        )
        .unwrap();
        assert_eq!(
            (lite.api, lite.model.as_str()),
            (Api::Gemini, "gemini-2.5-flash-lite")
        );
        assert_eq!(lite.key_name, "GOOGLE_GENERATIVE_AI_API_KEY");
    }

    #[test]
    fn a_summary_model_the_first_entry_cannot_take_is_refused_with_a_clear_message() {
        let gemini = endpoint(
            Api::Gemini,
            "gemini-2.5-flash",
            "generativelanguage.googleapis.com",
            "GOOGLE_GENERATIVE_AI_API_KEY",
        );
        let openai = endpoint(
            Api::OpenAi,
            "gpt-4.1-mini",
            "api.openai.com",
            "OPENAI_API_KEY",
        );
        let error = summary_endpoint("gemini/../flash", std::slice::from_ref(&gemini)).unwrap_err();
        assert_eq!(
            error,
            "SUMMARY_MODEL names no MODELS entry, so it is a model of the first one (gemini at \
             generativelanguage.googleapis.com): a gemini model id holds only letters, digits, \
             - . _ (e.g. gemini-2.5-flash-lite)"
        );
        let long = "m".repeat(300);
        let error = summary_endpoint(&long, std::slice::from_ref(&openai)).unwrap_err();
        assert!(
            error.contains("(openai at api.openai.com): model must be printable"),
            "{error}"
        );
        assert!(summary_endpoint("a\u{7}b", &[openai, gemini]).is_err());
        assert!(summary_endpoint("gpt-4.1-nano", &[]).is_err());
    }

    #[test]
    fn endpoints_show_host_and_key_presence_never_the_key() {
        let endpoint = Endpoint {
            api: Api::OpenAi,
            model: "m".into(),
            base_url: "https://api.groq.com/openai/v1".into(),
            key_name: "GROQ_API_KEY".into(),
            key: Some("gsk_secret".into()),
            first_token_ms: None,
        };
        assert_eq!(endpoint.host(), "api.groq.com");
        assert!(endpoint.key_present());
        assert!(!format!("{endpoint:?}").contains("gsk_secret"));
        let keyless = Endpoint {
            key_name: String::new(),
            key: None,
            base_url: "http://localhost:11434/v1".into(),
            ..endpoint.clone()
        };
        assert!(keyless.key_present());
        assert_eq!(keyless.host(), "localhost:11434");
        let missing = Endpoint {
            key: None,
            ..endpoint
        };
        assert!(!missing.key_present());
    }
}

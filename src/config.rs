//! Every setting the Worker reads, with its default, parsed in one place.
//!
//! Settings come from `[vars]` in `wrangler.toml`, `.dev.vars` locally, or `wrangler secret put`
//! in production; the Worker runtime exposes all of them as string bindings, so one lookup
//! function serves all three. Parsing is pure (`Config::from_lookup`) so it is tested natively.

use std::cell::OnceCell;
use std::rc::Rc;

use crate::models::{self, Api, Endpoint, ModelEntry};
use crate::tools::{self, ToolEntry};

// Every setting's name, written once: `Config::from_lookup` reads these constants, and
// `SETTING_NAMES` lists them all (a test checks that the two agree).

/// Names of the six secrets. Their values are never logged or returned.
pub const LAYERCODE_WEBHOOK_SECRET: &str = "LAYERCODE_WEBHOOK_SECRET";
pub const LAYERCODE_API_KEY: &str = "LAYERCODE_API_KEY";
pub const GOOGLE_GENERATIVE_AI_API_KEY: &str = "GOOGLE_GENERATIVE_AI_API_KEY";
pub const CONVERSATIONS_API_KEY: &str = "CONVERSATIONS_API_KEY";
/// Signs every HTTP tool call (`x-tool-signature`).
pub const TOOLS_SIGNING_SECRET: &str = "TOOLS_SIGNING_SECRET";
/// Keys the cookie that proves a browser started a conversation (`edge::ownership`); without
/// it, `/authorize` refuses to resume conversations.
pub const CONVERSATION_COOKIE_SECRET: &str = "CONVERSATION_COOKIE_SECRET";

pub const GEMINI_MODEL: &str = "GEMINI_MODEL";
pub const GEMINI_API_BASE_URL: &str = "GEMINI_API_BASE_URL";
pub const LAYERCODE_API_BASE_URL: &str = "LAYERCODE_API_BASE_URL";
pub const GEMINI_TIMEOUT_MS: &str = "GEMINI_TIMEOUT_MS";
pub const TURN_MAX_MS: &str = "TURN_MAX_MS";
pub const REPLY_MAX_CHARS: &str = "REPLY_MAX_CHARS";
pub const LAYERCODE_AGENT_ID: &str = "LAYERCODE_AGENT_ID";
pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
pub const SYSTEM_PROMPT: &str = "SYSTEM_PROMPT";
pub const WELCOME_MESSAGE: &str = "WELCOME_MESSAGE";
/// How long an idle conversation is kept, in days (`0` keeps it forever).
pub const CONVERSATION_TTL_DAYS: &str = "CONVERSATION_TTL_DAYS";
/// For testing: the same in seconds (fractions allowed); wins over the days when set.
pub const CONVERSATION_TTL_SECONDS: &str = "CONVERSATION_TTL_SECONDS";
pub const TOOLS: &str = "TOOLS";
pub const MAX_TOOL_ROUNDS: &str = "MAX_TOOL_ROUNDS";
/// The voice page at `/`: `on`, `local` (the local Layercode stand-in) or off (the default).
pub const VOICE_PAGE: &str = "VOICE_PAGE";
/// The header a deployer's proxy sets to the signed-in user: conversations then belong to users,
/// not to browser cookies (`edge::ownership`).
pub const CONVERSATION_OWNER_HEADER: &str = "CONVERSATION_OWNER_HEADER";
/// The chain of models a turn may ask, in order (see `models`); unset: one Gemini entry.
pub const MODELS: &str = "MODELS";

/// The model that writes the running summary of a long call; `off` writes none.
pub const SUMMARY_MODEL: &str = "SUMMARY_MODEL";
/// The IANA time zone of `{{date}}` and `{{time}}` in the prompt and the welcome.
pub const TIME_ZONE: &str = "TIME_ZONE";

/// Every setting name, secrets first, in the order `/health` reports them.
pub const SETTING_NAMES: [&str; 25] = [
    LAYERCODE_WEBHOOK_SECRET,
    LAYERCODE_API_KEY,
    GOOGLE_GENERATIVE_AI_API_KEY,
    CONVERSATIONS_API_KEY,
    TOOLS_SIGNING_SECRET,
    CONVERSATION_COOKIE_SECRET,
    GEMINI_MODEL,
    GEMINI_API_BASE_URL,
    LAYERCODE_API_BASE_URL,
    GEMINI_TIMEOUT_MS,
    TURN_MAX_MS,
    REPLY_MAX_CHARS,
    LAYERCODE_AGENT_ID,
    ALLOWED_ORIGINS,
    SYSTEM_PROMPT,
    WELCOME_MESSAGE,
    CONVERSATION_TTL_DAYS,
    CONVERSATION_TTL_SECONDS,
    TOOLS,
    MAX_TOOL_ROUNDS,
    VOICE_PAGE,
    CONVERSATION_OWNER_HEADER,
    MODELS,
    SUMMARY_MODEL,
    TIME_ZONE,
];

pub const DEFAULT_GEMINI_MODEL: &str = "gemini-2.5-flash-lite";
pub const DEFAULT_GEMINI_API_BASE_URL: &str = "https://generativelanguage.googleapis.com";
pub const DEFAULT_LAYERCODE_API_BASE_URL: &str = "https://api.layercode.com";
pub const DEFAULT_GEMINI_TIMEOUT_MS: u64 = 10_000;
/// A whole turn, speaking included: far beyond any reply the voice prompt asks for.
pub const DEFAULT_TURN_MAX_MS: u64 = 60_000;
/// About two minutes of speech: far beyond the one to three sentences the prompt asks for.
pub const DEFAULT_REPLY_MAX_CHARS: u64 = 2_000;
/// Model rounds of one turn when it calls tools; the last one must answer in words.
pub const DEFAULT_MAX_TOOL_ROUNDS: u64 = 4;
pub const DEFAULT_WELCOME_MESSAGE: &str = "Hi! How can I help you today?";
pub const DEFAULT_CONVERSATION_TTL_DAYS: u64 = 30;
pub const DEFAULT_TIME_ZONE: &str = "UTC";
const MS_PER_DAY: u64 = 24 * 60 * 60 * 1000;
/// A hundred years: longer periods are clamped, since an alarm date must stay a valid date.
const MAX_CONVERSATION_TTL_MS: u64 = 36_500 * MS_PER_DAY;

/// Written for a voice: what the model writes is spoken as it streams.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are a friendly, helpful voice assistant talking \
with a caller in real time. Everything you write is spoken aloud by a text-to-speech engine as \
you write it, so talk the way people speak: short, natural sentences, usually one to three per \
reply, the most useful sentence first. Never use markdown, bullet points, numbered lists, \
headings, code, tables, emoji or URLs. Write numbers, units, dates and symbols the way they \
should be said. If the caller interrupted you, the conversation shows only what they heard: \
carry on from there. If you did not understand the caller, ask a short clarifying question.";

/// Bounds for `GEMINI_TIMEOUT_MS`, so a typo cannot make a caller wait minutes or cut every reply.
const MIN_TIMEOUT_MS: u64 = 500;
const MAX_TIMEOUT_MS: u64 = 120_000;
/// Bounds for `TURN_MAX_MS` and `REPLY_MAX_CHARS`, for the same reason.
const TURN_MS_RANGE: (u64, u64) = (2_000, 600_000);
const REPLY_CHARS_RANGE: (u64, u64) = (100, 20_000);
/// Bounds for `MAX_TOOL_ROUNDS`: at least one round; more than ten keeps a caller waiting.
const TOOL_ROUNDS_RANGE: (u64, u64) = (1, 10);

/// Which browser origins may call `/authorize` (CORS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedOrigins {
    /// No cross-origin access (same-origin pages still work).
    None,
    /// `*`: any origin.
    Any,
    /// Exact origins such as `https://app.example.com`.
    List(Vec<String>),
}

impl AllowedOrigins {
    fn parse(raw: &str) -> Self {
        let origins: Vec<String> = raw
            .split(',')
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        if origins.iter().any(|o| o == "*") {
            AllowedOrigins::Any
        } else if origins.is_empty() {
            AllowedOrigins::None
        } else {
            AllowedOrigins::List(origins)
        }
    }

    /// The value for `Access-Control-Allow-Origin` when `origin` made the request, if allowed.
    pub fn allow(&self, origin: &str) -> Option<String> {
        match self {
            AllowedOrigins::None => None,
            AllowedOrigins::Any => Some("*".to_string()),
            AllowedOrigins::List(list) => list
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
                .then(|| origin.to_string()),
        }
    }
}

/// What `VOICE_PAGE` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VoicePageMode {
    /// No page (the default): `/` is 404.
    Off,
    /// The page, talking to Layercode's cloud (the SDK's own socket URL).
    On,
    /// Local development: the page's SDK talks to the stand-in at `LAYERCODE_API_BASE_URL`
    /// (`layercode-sim --serve`, started by `./scripts/dev.sh`).
    Local,
}

impl VoicePageMode {
    /// `on` or `local` (any case); anything else, unset included, is off.
    pub fn parse(raw: &str) -> VoicePageMode {
        match raw.trim().to_ascii_lowercase().as_str() {
            "on" => VoicePageMode::On,
            "local" => VoicePageMode::Local,
            _ => VoicePageMode::Off,
        }
    }

    /// How the page's script names the mode.
    pub fn name(self) -> &'static str {
        match self {
            VoicePageMode::Off => "off",
            VoicePageMode::On => "layercode",
            VoicePageMode::Local => "local",
        }
    }
}

/// The typed configuration of one request.
#[derive(Debug, Clone)]
pub struct Config {
    /// Every accepted webhook signing secret (comma-separated in the setting, for rotation).
    pub webhook_secrets: Vec<String>,
    pub layercode_api_key: Option<String>,
    pub gemini_api_key: Option<String>,
    pub gemini_model: String,
    pub gemini_api_base_url: String,
    pub layercode_api_base_url: String,
    pub gemini_timeout_ms: u64,
    /// The ceiling of a whole turn; a reply still going then is cut with a short close.
    pub turn_max_ms: u64,
    /// The longest spoken reply, in characters; a longer one is cut with a short close.
    pub reply_max_chars: usize,
    pub layercode_agent_id: Option<String>,
    pub allowed_origins: AllowedOrigins,
    pub system_prompt: String,
    /// Empty means a silent `session.start`.
    pub welcome_message: String,
    /// Bearer key of the conversations API; `None` turns the API off.
    pub conversations_api_key: Option<String>,
    /// How long an idle conversation is kept, in milliseconds; `0` keeps it forever.
    pub conversation_ttl_ms: u64,
    /// The parsed `TOOLS`; `Err` says why the value was refused (turns then run without tools).
    pub tools: Result<Vec<ToolEntry>, String>,
    pub tools_signing_secret: Option<String>,
    /// Model rounds per turn, counting the first.
    pub max_tool_rounds: u32,
    /// Whether `/` serves the voice page, and whom its SDK talks to.
    pub voice_page: VoicePageMode,
    /// Keys of the conversation cookie: the first signs, every one verifies (rotation). Empty:
    /// resuming a conversation is refused.
    pub conversation_cookie_secrets: Vec<String>,
    /// The header naming the signed-in user, when conversations belong to users.
    pub conversation_owner_header: Option<String>,
    /// The parsed `MODELS`; `Err` says why the value was refused (turns then run with the
    /// default Gemini entry). `Ok(empty)`: not set.
    pub models: Result<Vec<ModelEntry>, String>,
    /// The models a turn asks, in order, keys resolved: `MODELS`, or the default Gemini entry
    /// (`GEMINI_MODEL`, `GEMINI_API_BASE_URL`, `GOOGLE_GENERATIVE_AI_API_KEY`). Never empty.
    pub chain: Vec<Endpoint>,
    /// The model that writes a long call's running summary: the first of `chain`, or the one
    /// `SUMMARY_MODEL` names (`models::summary_endpoint`); `None` with `SUMMARY_MODEL=off`.
    pub summary_model: Option<Endpoint>,
    /// Why `SUMMARY_MODEL` was refused (summaries then use the first of `chain`).
    pub summary_model_error: Option<String>,
    /// IANA name; a name the runtime does not know counts as UTC (each use logs so).
    pub time_zone: String,
}

impl Config {
    /// Builds the configuration from a lookup of raw setting values (`None` = not set).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
        // A value that is only whitespace counts as unset.
        let get = |name: &str| lookup(name).map(|v| v.trim().to_string());
        let non_empty = |name: &str| get(name).filter(|v| !v.is_empty());
        let base_url =
            |name: &str, default: &str| non_empty(name).unwrap_or_else(|| default.to_string());
        // A number within `(min, max)`; unset or unreadable: the default.
        let number = |name: &str, default: u64, (min, max): (u64, u64)| {
            non_empty(name)
                .and_then(|v| v.parse::<u64>().ok())
                .map_or(default, |n| n.clamp(min, max))
        };

        let gemini_api_key = non_empty(GOOGLE_GENERATIVE_AI_API_KEY);
        let gemini_model = non_empty(GEMINI_MODEL)
            .map(|m| m.trim_start_matches("models/").to_string())
            .unwrap_or_else(|| DEFAULT_GEMINI_MODEL.to_string());
        let gemini_api_base_url =
            trim_slash(base_url(GEMINI_API_BASE_URL, DEFAULT_GEMINI_API_BASE_URL));
        // A model key may name any secret but the worker's own: those never go to a provider.
        let reserved: Vec<&str> = SETTING_NAMES
            .iter()
            .copied()
            .filter(|name| *name != GOOGLE_GENERATIVE_AI_API_KEY)
            .collect();
        let models = models::parse(&get(MODELS).unwrap_or_default(), &reserved);
        let chain = match &models {
            Ok(entries) if !entries.is_empty() => entries
                .iter()
                .map(|entry| Endpoint {
                    api: entry.api,
                    model: entry.model.clone(),
                    base_url: entry.base_url.clone().unwrap_or_else(|| match entry.api {
                        Api::Gemini => gemini_api_base_url.clone(),
                        Api::OpenAi => models::DEFAULT_OPENAI_BASE_URL.to_string(),
                    }),
                    key_name: entry.key.clone(),
                    key: match entry.key.as_str() {
                        "" => None,
                        name => non_empty(name),
                    },
                    first_token_ms: entry.first_token_ms,
                })
                .collect(),
            // Unset, or refused: the default entry, exactly as before `MODELS` existed.
            _ => vec![Endpoint {
                api: Api::Gemini,
                model: gemini_model.clone(),
                base_url: gemini_api_base_url.clone(),
                key_name: GOOGLE_GENERATIVE_AI_API_KEY.to_string(),
                key: gemini_api_key.clone(),
                first_token_ms: None,
            }],
        };
        // Unset: the first model of the chain. Refused: the same, and `/health` says why.
        let (summary_model, summary_model_error) = match non_empty(SUMMARY_MODEL) {
            Some(off) if off.eq_ignore_ascii_case("off") => (None, None),
            Some(id) => match models::summary_endpoint(&id, &chain) {
                Ok(endpoint) => (Some(endpoint), None),
                Err(error) => (chain.first().cloned(), Some(error)),
            },
            None => (chain.first().cloned(), None),
        };
        let openai = chain.iter().any(|e| e.api == Api::OpenAi);
        // Tool names must be valid for every configured wire (Gemini's rule always applies:
        // it is what turns fall back to when `MODELS` is refused).
        let tools = tools::parse(&get(TOOLS).unwrap_or_default()).and_then(|entries| {
            if openai {
                tools::check_for_openai(&entries)?;
            }
            Ok(entries)
        });

        // Comma-separated secrets, several accepted so one can be rotated without downtime.
        let secrets = |name: &str| -> Vec<String> {
            get(name)
                .map(|raw| {
                    raw.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };

        Config {
            webhook_secrets: secrets(LAYERCODE_WEBHOOK_SECRET),
            layercode_api_key: non_empty(LAYERCODE_API_KEY),
            gemini_api_key,
            gemini_model,
            gemini_api_base_url,
            layercode_api_base_url: trim_slash(base_url(
                LAYERCODE_API_BASE_URL,
                DEFAULT_LAYERCODE_API_BASE_URL,
            )),
            gemini_timeout_ms: number(
                GEMINI_TIMEOUT_MS,
                DEFAULT_GEMINI_TIMEOUT_MS,
                (MIN_TIMEOUT_MS, MAX_TIMEOUT_MS),
            ),
            turn_max_ms: number(TURN_MAX_MS, DEFAULT_TURN_MAX_MS, TURN_MS_RANGE),
            reply_max_chars: usize::try_from(number(
                REPLY_MAX_CHARS,
                DEFAULT_REPLY_MAX_CHARS,
                REPLY_CHARS_RANGE,
            ))
            .unwrap_or(usize::MAX),
            layercode_agent_id: non_empty(LAYERCODE_AGENT_ID),
            allowed_origins: AllowedOrigins::parse(&get(ALLOWED_ORIGINS).unwrap_or_default()),
            system_prompt: non_empty(SYSTEM_PROMPT)
                .unwrap_or_else(|| DEFAULT_SYSTEM_PROMPT.to_string()),
            // Unset: the default greeting. Set but empty: deliberately silent.
            welcome_message: get(WELCOME_MESSAGE)
                .unwrap_or_else(|| DEFAULT_WELCOME_MESSAGE.to_string()),
            conversations_api_key: non_empty(CONVERSATIONS_API_KEY),
            conversation_ttl_ms: conversation_ttl_ms(&lookup),
            tools,
            tools_signing_secret: non_empty(TOOLS_SIGNING_SECRET),
            max_tool_rounds: u32::try_from(number(
                MAX_TOOL_ROUNDS,
                DEFAULT_MAX_TOOL_ROUNDS,
                TOOL_ROUNDS_RANGE,
            ))
            .unwrap_or(1),
            voice_page: VoicePageMode::parse(&get(VOICE_PAGE).unwrap_or_default()),
            conversation_cookie_secrets: secrets(CONVERSATION_COOKIE_SECRET),
            conversation_owner_header: non_empty(CONVERSATION_OWNER_HEADER),
            models,
            chain,
            summary_model,
            summary_model_error,
            time_zone: non_empty(TIME_ZONE).unwrap_or_else(|| DEFAULT_TIME_ZONE.to_string()),
        }
    }

    /// What `/health` says about `MODELS`: each entry of the chain turns use (`api`, `model`,
    /// host, whether its key is present, never a value) and the refusal, if any.
    pub fn models_report(&self) -> serde_json::Value {
        let len = self.chain.len();
        let entries: Vec<serde_json::Value> = self
            .chain
            .iter()
            .enumerate()
            .map(|(index, entry)| {
                let mut report = endpoint_report(entry);
                report["first_token_ms"] = models::first_token_ms(
                    entry.first_token_ms,
                    index,
                    len,
                    self.gemini_timeout_ms,
                )
                .into();
                report
            })
            .collect();
        serde_json::json!({
            "entries": entries,
            "error": self.models.as_ref().err(),
        })
    }

    /// What `/health` says about `SUMMARY_MODEL`: the model that writes summaries, as a
    /// `MODELS` entry is shown (`"off"` when none does), and the refusal, if any.
    pub fn summary_report(&self) -> serde_json::Value {
        serde_json::json!({
            "model": self.summary_model.as_ref().map_or("off".into(), endpoint_report),
            "error": self.summary_model_error,
        })
    }

    /// The tools turns may use: none when `TOOLS` was refused.
    pub fn tool_entries(&self) -> &[ToolEntry] {
        self.tools.as_deref().unwrap_or_default()
    }

    /// What `/health` says about `TOOLS`: how many, their names, the refusal, the warnings.
    pub fn tools_report(&self) -> serde_json::Value {
        let names: Vec<&str> = self
            .tool_entries()
            .iter()
            .map(|entry| match entry {
                ToolEntry::Http(spec) => spec.name.as_str(),
                ToolEntry::EndCall => tools::END_CALL,
            })
            .collect();
        serde_json::json!({
            "count": names.len(),
            "names": names,
            "error": self.tools.as_ref().err(),
            "warnings": tools::warnings(self.tool_entries(), self.tools_signing_secret.is_some()),
        })
    }

    /// The configuration from the Worker's bindings, read once per isolate: bindings are fixed
    /// for an isolate's life (a new deployment or `wrangler dev` reload starts a new one), and
    /// reading them costs several calls into JS per setting, on every request otherwise.
    pub fn from_env(env: &worker::Env) -> Rc<Config> {
        ISOLATE_CONFIG.with(|cached| {
            Rc::clone(cached.get_or_init(|| Rc::new(Config::from_lookup(env_lookup(env)))))
        })
    }
}

/// A model as `/health` shows it: `api`, `model`, host, the key's name and whether it is set,
/// never its value.
fn endpoint_report(entry: &Endpoint) -> serde_json::Value {
    serde_json::json!({
        "api": entry.api.name(),
        "model": entry.model,
        "host": entry.host(),
        "key": entry.key_name,
        "key_present": entry.key_present(),
    })
}

thread_local! {
    /// See [`Config::from_env`]. A wasm instance has one thread: this is one per isolate.
    static ISOLATE_CONFIG: OnceCell<Rc<Config>> = const { OnceCell::new() };
}

/// A setting's raw value from the Worker's bindings (`[vars]`, `.dev.vars` and secrets alike).
pub fn env_lookup(env: &worker::Env) -> impl Fn(&str) -> Option<String> + '_ {
    |name| env.var(name).ok().map(|v| v.to_string())
}

/// The retention period in milliseconds (`0` = keep forever). A value that does not parse as a
/// non-negative number falls back to the default rather than keeping data forever by accident.
fn conversation_ttl_ms(lookup: impl Fn(&str) -> Option<String>) -> u64 {
    let get = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let seconds = get(CONVERSATION_TTL_SECONDS)
        .and_then(|v| parse_f64(&v))
        .filter(|s| s.is_finite() && *s >= 0.0);
    let ttl_ms = match seconds {
        // Rounded up so a tiny positive value never turns into "forever" (the cast saturates).
        Some(seconds) => (seconds * 1000.0).ceil() as u64,
        None => get(CONVERSATION_TTL_DAYS)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(DEFAULT_CONVERSATION_TTL_DAYS)
            .saturating_mul(MS_PER_DAY),
    };
    ttl_ms.min(MAX_CONVERSATION_TTL_MS)
}

/// `s.parse::<f64>().ok()` for a finite number (`inf` and `nan` give `None`), without std's
/// float parser in the wasm: its tables and code are about 14 KB of the gzipped module, for this
/// one testing-only setting. In the Worker, JavaScript reads a string that std would accept;
/// V8 rounds correctly, as std does, so the value is the same.
fn parse_f64(s: &str) -> Option<f64> {
    if !is_decimal_number(s) {
        return None;
    }
    #[cfg(target_arch = "wasm32")]
    return Some(worker::js_sys::Number::parse_float(s));
    #[cfg(not(target_arch = "wasm32"))]
    return s.parse().ok();
}

/// Whether `s` is a number in std's `f64` grammar: an optional sign, digits with an optional
/// `.` (a digit on at least one side of it), then optionally `e` or `E`, a sign and digits.
fn is_decimal_number(s: &str) -> bool {
    fn unsigned(t: &str) -> &str {
        t.strip_prefix(['+', '-']).unwrap_or(t)
    }
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match unsigned(s).split_once(['e', 'E']) {
        Some((mantissa, exponent)) => (mantissa, Some(unsigned(exponent))),
        None => (unsigned(s), None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    digits(whole)
        && digits(fraction)
        && !(whole.is_empty() && fraction.is_empty())
        && exponent.is_none_or(|e| !e.is_empty() && digits(e))
}

/// Which settings are present (never their values), for `/health`.
pub fn present_settings(lookup: impl Fn(&str) -> Option<String>) -> Vec<(&'static str, bool)> {
    SETTING_NAMES
        .iter()
        .map(|name| (*name, lookup(name).is_some_and(|v| !v.trim().is_empty())))
        .collect()
}

fn trim_slash(url: String) -> String {
    url.trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let c = config(&[]);
        assert!(c.webhook_secrets.is_empty());
        assert_eq!(c.layercode_api_key, None);
        assert_eq!(c.gemini_api_key, None);
        assert_eq!(c.gemini_model, "gemini-2.5-flash-lite");
        assert_eq!(
            c.gemini_api_base_url,
            "https://generativelanguage.googleapis.com"
        );
        assert_eq!(c.layercode_api_base_url, "https://api.layercode.com");
        assert_eq!(c.gemini_timeout_ms, 10_000);
        assert_eq!(c.layercode_agent_id, None);
        assert_eq!(c.allowed_origins, AllowedOrigins::None);
        assert_eq!(c.system_prompt, DEFAULT_SYSTEM_PROMPT);
        assert_eq!(c.welcome_message, DEFAULT_WELCOME_MESSAGE);
        assert_eq!(c.conversations_api_key, None);
        assert_eq!(c.conversation_ttl_ms, 30 * 24 * 60 * 60 * 1000);
        assert_eq!(c.tools, Ok(Vec::new()));
        assert_eq!(c.tools_signing_secret, None);
        assert_eq!(c.max_tool_rounds, 4);
        assert_eq!(c.voice_page, VoicePageMode::Off);
        assert_eq!(c.summary_model.as_ref(), c.chain.first());
        assert_eq!(c.summary_model_error, None);
        assert_eq!(c.time_zone, "UTC");
    }

    #[test]
    fn summary_model_and_time_zone_are_read() {
        let summary = |pairs: &[(&str, &str)]| {
            let c = config(pairs);
            let model = c.summary_model.map(|e| (e.api, e.model, e.key_name));
            (model, c.summary_model_error)
        };
        let gemini = |model: &str| {
            Some((
                Api::Gemini,
                model.to_string(),
                GOOGLE_GENERATIVE_AI_API_KEY.to_string(),
            ))
        };
        // Unset or blank: the first model of the chain.
        assert_eq!(summary(&[]), (gemini(DEFAULT_GEMINI_MODEL), None));
        assert_eq!(
            summary(&[(SUMMARY_MODEL, " ")]),
            (gemini(DEFAULT_GEMINI_MODEL), None)
        );
        assert_eq!(summary(&[(SUMMARY_MODEL, "OFF")]), (None, None));
        assert_eq!(
            summary(&[
                (GEMINI_MODEL, "gemini-2.5-flash"),
                (SUMMARY_MODEL, "models/gemini-2.5-flash-lite")
            ]),
            (gemini("gemini-2.5-flash-lite"), None)
        );
        let groq_then_gemini = r#"[{"api": "openai", "model": "llama-3.3-70b-versatile",
            "base_url": "https://api.groq.com/openai/v1", "key": "GROQ_API_KEY"},
            {"api": "gemini", "model": "gemini-2.5-flash-lite"}]"#;
        let openai = |model: &str| Some((Api::OpenAi, model.to_string(), "GROQ_API_KEY".into()));
        assert_eq!(
            summary(&[(MODELS, groq_then_gemini)]),
            (openai("llama-3.3-70b-versatile"), None)
        );
        assert_eq!(
            summary(&[
                (MODELS, groq_then_gemini),
                (SUMMARY_MODEL, "gemini-2.5-flash-lite")
            ]),
            (gemini("gemini-2.5-flash-lite"), None)
        );
        assert_eq!(
            summary(&[
                (MODELS, groq_then_gemini),
                (SUMMARY_MODEL, "llama-3.1-8b-instant")
            ]),
            (openai("llama-3.1-8b-instant"), None)
        );
        // Refused whole: the first model writes summaries, and /health says why.
        let (model, error) = summary(&[(SUMMARY_MODEL, "gemini 2.5 flash")]);
        assert_eq!(model, gemini(DEFAULT_GEMINI_MODEL));
        assert!(error
            .unwrap()
            .starts_with("SUMMARY_MODEL names no MODELS entry"));
        assert_eq!(
            config(&[(TIME_ZONE, " Europe/Paris ")]).time_zone,
            "Europe/Paris"
        );
    }

    #[test]
    fn health_shows_the_summary_model_never_a_key() {
        let c = config(&[
            (GOOGLE_GENERATIVE_AI_API_KEY, "AIza-secret"),
            (SUMMARY_MODEL, "gemini-2.5-flash-lite"),
        ]);
        assert_eq!(
            c.summary_report(),
            serde_json::json!({
                "model": {"api": "gemini", "model": "gemini-2.5-flash-lite",
                          "host": "generativelanguage.googleapis.com",
                          "key": "GOOGLE_GENERATIVE_AI_API_KEY", "key_present": true},
                "error": null,
            })
        );
        let off = config(&[(SUMMARY_MODEL, "off")]).summary_report();
        assert_eq!(off, serde_json::json!({"model": "off", "error": null}));
        let refused = config(&[(SUMMARY_MODEL, "a/b")]).summary_report();
        assert_eq!(refused["model"]["model"], DEFAULT_GEMINI_MODEL);
        assert!(refused["error"]
            .as_str()
            .unwrap()
            .contains("a gemini model id"));
    }

    #[test]
    fn conversation_ttl_reads_days_and_the_seconds_override() {
        let ttl = |pairs: &[(&str, &str)]| config(pairs).conversation_ttl_ms;
        assert_eq!(ttl(&[(CONVERSATION_TTL_DAYS, "7")]), 7 * MS_PER_DAY);
        assert_eq!(ttl(&[(CONVERSATION_TTL_DAYS, "0")]), 0, "0 keeps forever");
        assert_eq!(ttl(&[(CONVERSATION_TTL_SECONDS, "1.5")]), 1500);
        assert_eq!(
            ttl(&[(CONVERSATION_TTL_SECONDS, "0.0001")]),
            1,
            "never rounds to 0"
        );
        assert_eq!(
            ttl(&[
                (CONVERSATION_TTL_DAYS, "7"),
                (CONVERSATION_TTL_SECONDS, "2")
            ]),
            2000,
            "the test override wins"
        );
        assert_eq!(
            ttl(&[
                (CONVERSATION_TTL_DAYS, "7"),
                (CONVERSATION_TTL_SECONDS, " ")
            ]),
            7 * MS_PER_DAY,
            "a blank override is unset"
        );
    }

    #[test]
    fn parse_f64_reads_what_std_reads() {
        let inputs = [
            "0",
            "7",
            "1.5",
            "-1.5",
            "+2",
            "5.",
            ".5",
            "-.5",
            "007",
            "1e3",
            "1E3",
            "2.5e-3",
            "1e+2",
            "-0",
            "1e999",
            "1e-999",
            "0.30000000000000004",
            "123456789012345678901234",
            "inf",
            "-infinity",
            "NaN",
            "",
            ".",
            "+",
            "-",
            "e5",
            "1e",
            "1e+",
            "1.2.3",
            "1e5e3",
            "+-1",
            "1_000",
            "0x10",
            " 1",
            "1 ",
            "1,5",
            "١",
            "1e-+5",
            "..5",
        ];
        for input in inputs {
            let expected = input.parse::<f64>().ok().filter(|v| v.is_finite());
            let got = parse_f64(input).filter(|v| v.is_finite());
            assert_eq!(
                got.map(f64::to_bits),
                expected.map(f64::to_bits),
                "{input:?}"
            );
            // What std accepts, apart from inf and nan, is exactly what the check lets through.
            let finite_syntax = input.parse::<f64>().is_ok()
                && !input.to_ascii_lowercase().contains("inf")
                && !input.to_ascii_lowercase().contains("nan");
            assert_eq!(is_decimal_number(input), finite_syntax, "{input:?}");
        }
    }

    #[test]
    fn a_bad_conversation_ttl_falls_back_to_the_default_not_forever() {
        let ttl = |pairs: &[(&str, &str)]| config(pairs).conversation_ttl_ms;
        let default = DEFAULT_CONVERSATION_TTL_DAYS * MS_PER_DAY;
        assert_eq!(ttl(&[(CONVERSATION_TTL_DAYS, "thirty")]), default);
        assert_eq!(ttl(&[(CONVERSATION_TTL_DAYS, "-1")]), default);
        assert_eq!(ttl(&[(CONVERSATION_TTL_SECONDS, "-5")]), default);
        assert_eq!(ttl(&[(CONVERSATION_TTL_SECONDS, "NaN")]), default);
        assert_eq!(
            ttl(&[(CONVERSATION_TTL_DAYS, "99999999999999")]),
            MAX_CONVERSATION_TTL_MS,
            "clamped to a valid alarm date"
        );
    }

    #[test]
    fn tools_settings_are_read_and_reported() {
        let tools = r#"[{"name": "shop_hours", "description": "Hours.", "url": "https://x.example/h"},
                        {"builtin": "end_call"}]"#;
        let c = config(&[
            ("TOOLS", tools),
            (TOOLS_SIGNING_SECRET, "tool_secret"),
            ("MAX_TOOL_ROUNDS", "2"),
        ]);
        assert_eq!(c.tool_entries().len(), 2);
        assert_eq!(c.tools_signing_secret.as_deref(), Some("tool_secret"));
        assert_eq!(c.max_tool_rounds, 2);
        assert_eq!(
            c.tools_report(),
            serde_json::json!({"count": 2, "names": ["shop_hours", "end_call"], "error": null,
                               "warnings": []})
        );
        assert!(!c.tools_report().to_string().contains("tool_secret"));

        let unsigned = config(&[("TOOLS", tools)]);
        let report = unsigned.tools_report();
        assert_eq!(report["count"], 2);
        assert!(report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("TOOLS_SIGNING_SECRET is not set"));
    }

    #[test]
    fn invalid_tools_are_reported_and_turns_get_none() {
        let c = config(&[("TOOLS", r#"[{"name": "x y"}]"#)]);
        assert!(c.tool_entries().is_empty());
        let report = c.tools_report();
        assert_eq!(report["count"], 0);
        assert!(report["error"]
            .as_str()
            .unwrap()
            .starts_with("TOOLS[0] (x y): name must start"));
    }

    #[test]
    fn unset_models_mean_the_gemini_entry_of_today() {
        let c = config(&[
            (GOOGLE_GENERATIVE_AI_API_KEY, "g_key"),
            ("GEMINI_MODEL", "gemini-3.1-flash-lite"),
        ]);
        assert_eq!(c.models, Ok(Vec::new()));
        assert_eq!(c.chain.len(), 1);
        let entry = &c.chain[0];
        assert_eq!(
            (entry.api, entry.model.as_str(), entry.base_url.as_str()),
            (
                Api::Gemini,
                "gemini-3.1-flash-lite",
                DEFAULT_GEMINI_API_BASE_URL
            )
        );
        assert_eq!(entry.key.as_deref(), Some("g_key"));
        assert_eq!(config(&[(MODELS, "[]")]).chain.len(), 1);
    }

    #[test]
    fn models_resolve_keys_by_name_and_are_reported_without_them() {
        let c = config(&[
            (
                MODELS,
                r#"[{"api": "openai", "model": "llama-3.3-70b-versatile",
                     "base_url": "https://api.groq.com/openai/v1", "key": "GROQ_API_KEY"},
                    {"api": "gemini", "model": "gemini-2.5-flash-lite"},
                    {"api": "openai", "model": "gpt-4.1-mini"},
                    {"api": "openai", "model": "llama3.2", "base_url": "http://localhost:11434/v1", "key": ""}]"#,
            ),
            ("GROQ_API_KEY", "gsk_secret_value"),
            (GOOGLE_GENERATIVE_AI_API_KEY, "g_secret_value"),
            (GEMINI_API_BASE_URL, "http://127.0.0.1:9/"),
        ]);
        assert_eq!(c.chain.len(), 4);
        assert_eq!(c.chain[0].key.as_deref(), Some("gsk_secret_value"));
        assert_eq!(c.chain[1].base_url, "http://127.0.0.1:9");
        assert_eq!(c.chain[1].key.as_deref(), Some("g_secret_value"));
        assert_eq!(c.chain[2].base_url, "https://api.openai.com/v1");
        assert_eq!(c.chain[2].key, None, "OPENAI_API_KEY is not set");
        assert_eq!(c.chain[3].key, None);
        let report = c.models_report();
        assert_eq!(report["error"], serde_json::Value::Null);
        assert_eq!(
            report["entries"][0],
            serde_json::json!({"api": "openai", "model": "llama-3.3-70b-versatile",
                "host": "api.groq.com", "key": "GROQ_API_KEY", "key_present": true,
                "first_token_ms": 3333})
        );
        assert_eq!(report["entries"][2]["key_present"], false);
        assert_eq!(report["entries"][3]["key_present"], true);
        assert_eq!(report["entries"][3]["first_token_ms"], 10_000);
        let text = report.to_string();
        assert!(!text.contains("secret_value"), "{text}");
    }

    #[test]
    fn refused_models_fall_back_to_gemini_and_say_why() {
        let c = config(&[
            (
                MODELS,
                r#"[{"api": "openai", "model": "m", "key": "LAYERCODE_WEBHOOK_SECRET"}]"#,
            ),
            (LAYERCODE_WEBHOOK_SECRET, "whsec"),
        ]);
        assert_eq!(c.chain.len(), 1);
        assert_eq!(c.chain[0].api, Api::Gemini);
        let report = c.models_report();
        assert!(report["error"]
            .as_str()
            .unwrap()
            .contains("key names LAYERCODE_WEBHOOK_SECRET"));
        assert_eq!(report["entries"][0]["api"], "gemini");
    }

    #[test]
    fn tool_names_must_suit_every_configured_api() {
        let tools =
            r#"[{"name": "shop.hours", "description": "Hours.", "url": "https://x.example/h"}]"#;
        assert!(config(&[("TOOLS", tools)]).tools.is_ok(), "fine for Gemini");
        let c = config(&[
            ("TOOLS", tools),
            (
                MODELS,
                r#"[{"api": "gemini", "model": "g"}, {"api": "openai", "model": "m"}]"#,
            ),
        ]);
        let error = c.tools.unwrap_err();
        assert!(
            error.contains("TOOLS[0] (shop.hours): the name is not valid for the openai api"),
            "{error}"
        );
    }

    #[test]
    fn tool_rounds_are_clamped() {
        assert_eq!(config(&[("MAX_TOOL_ROUNDS", "0")]).max_tool_rounds, 1);
        assert_eq!(config(&[("MAX_TOOL_ROUNDS", "99")]).max_tool_rounds, 10);
        assert_eq!(config(&[("MAX_TOOL_ROUNDS", "many")]).max_tool_rounds, 4);
    }

    #[test]
    fn webhook_secret_list_is_split_on_commas() {
        let c = config(&[(LAYERCODE_WEBHOOK_SECRET, " old_secret , new_secret ,")]);
        assert_eq!(c.webhook_secrets, vec!["old_secret", "new_secret"]);
    }

    #[test]
    fn blank_values_count_as_unset_except_an_empty_welcome() {
        let c = config(&[
            (GOOGLE_GENERATIVE_AI_API_KEY, "  "),
            ("GEMINI_MODEL", ""),
            ("SYSTEM_PROMPT", " "),
            ("WELCOME_MESSAGE", ""),
        ]);
        assert_eq!(c.gemini_api_key, None);
        assert_eq!(c.gemini_model, DEFAULT_GEMINI_MODEL);
        assert_eq!(c.system_prompt, DEFAULT_SYSTEM_PROMPT);
        assert_eq!(c.welcome_message, "");
    }

    #[test]
    fn base_urls_lose_trailing_slashes_and_model_loses_models_prefix() {
        let c = config(&[
            ("GEMINI_API_BASE_URL", "http://127.0.0.1:9000/"),
            ("LAYERCODE_API_BASE_URL", "http://127.0.0.1:9001//"),
            ("GEMINI_MODEL", "models/gemini-3-flash-preview"),
        ]);
        assert_eq!(c.gemini_api_base_url, "http://127.0.0.1:9000");
        assert_eq!(c.layercode_api_base_url, "http://127.0.0.1:9001");
        assert_eq!(c.gemini_model, "gemini-3-flash-preview");
    }

    #[test]
    fn timeout_is_parsed_and_clamped() {
        assert_eq!(
            config(&[("GEMINI_TIMEOUT_MS", "2500")]).gemini_timeout_ms,
            2500
        );
        assert_eq!(config(&[("GEMINI_TIMEOUT_MS", "5")]).gemini_timeout_ms, 500);
        assert_eq!(
            config(&[("GEMINI_TIMEOUT_MS", "999999999")]).gemini_timeout_ms,
            120_000
        );
        assert_eq!(
            config(&[("GEMINI_TIMEOUT_MS", "soon")]).gemini_timeout_ms,
            10_000
        );
        let limits = config(&[("TURN_MAX_MS", "1"), ("REPLY_MAX_CHARS", "5000")]);
        assert_eq!(limits.turn_max_ms, 2_000);
        assert_eq!(limits.reply_max_chars, 5_000);
        assert_eq!(config(&[]).turn_max_ms, 60_000);
        assert_eq!(config(&[]).reply_max_chars, 2_000);
    }

    #[test]
    fn allowed_origins_parse_lists_and_wildcard() {
        let list =
            config(&[("ALLOWED_ORIGINS", "https://a.example, https://b.example/")]).allowed_origins;
        assert_eq!(
            list.allow("https://b.example"),
            Some("https://b.example".to_string())
        );
        assert_eq!(list.allow("https://evil.example"), None);
        let any = config(&[("ALLOWED_ORIGINS", "*")]).allowed_origins;
        assert_eq!(any.allow("https://x.example"), Some("*".to_string()));
        assert_eq!(AllowedOrigins::None.allow("https://a.example"), None);
    }

    #[test]
    fn every_setting_read_is_listed_and_every_listed_one_is_read() {
        let asked = std::cell::RefCell::new(Vec::new());
        Config::from_lookup(|name| {
            asked.borrow_mut().push(name.to_string());
            None
        });
        let mut asked = asked.into_inner();
        asked.sort();
        asked.dedup();
        let mut listed: Vec<String> = SETTING_NAMES.iter().map(|n| n.to_string()).collect();
        listed.sort();
        assert_eq!(asked, listed);
    }

    #[test]
    fn present_settings_report_presence_only() {
        let present = present_settings(|name| match name {
            LAYERCODE_API_KEY => Some("sk_live_value".to_string()),
            CONVERSATIONS_API_KEY => Some("conv_key".to_string()),
            GOOGLE_GENERATIVE_AI_API_KEY => Some("   ".to_string()),
            _ => None,
        });
        assert_eq!(present.len(), SETTING_NAMES.len());
        assert!(present.contains(&(LAYERCODE_API_KEY, true)));
        assert!(present.contains(&(GOOGLE_GENERATIVE_AI_API_KEY, false)));
        assert!(present.contains(&(LAYERCODE_WEBHOOK_SECRET, false)));
        assert!(present.contains(&(CONVERSATIONS_API_KEY, true)));
        assert!(present.contains(&(CONVERSATION_TTL_DAYS, false)));
    }
}

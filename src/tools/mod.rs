//! Tools the model may call inside a spoken turn: the `TOOLS` setting, the [`Tool`] trait and
//! the one [`Registry`] a turn uses, the built-in `end_call`, and the wire shapes of an HTTP
//! tool call. Everything here is pure; the HTTP fetch lives in `tools/http.rs`.
//!
//! `TOOLS` is a JSON array. Each entry is an HTTP tool
//! `{"name", "description", "parameters", "url", "timeout_ms"?, "side_effect"?, "filler"?}` or a
//! built-in, `{"builtin": "end_call"}`. A value that does not parse or breaks a rule is refused
//! whole (one clear message for `/health` and the log): a half-understood tool list would let
//! the model call something the deployer did not mean.
//!
//! A leaf: imports only other leaves (see `tests/layers.rs`). The glue that runs a turn's tools
//! for the engine (`TurnTools`, the engine's `ToolRunner`) is in `turn/tool_runner.rs`.

pub mod args;
pub mod http;
pub mod memory;

use std::future::Future;
use std::pin::Pin;

use serde_json::{json, Map, Value};

/// How long an HTTP tool may take when its entry does not say.
pub const DEFAULT_TIMEOUT_MS: u64 = 5_000;
/// Bounds for `timeout_ms`: a caller on the line cannot wait much longer than this.
pub const TIMEOUT_MS_RANGE: (u64, u64) = (100, 60_000);
/// Gemini accepts up to 512 function declarations.
pub const MAX_TOOLS: usize = 512;
/// Gemini's limit on a function name.
pub const MAX_NAME_CHARS: usize = 128;
/// OpenAI's limits: 128 tools, names of at most 64 letters, digits, `_` and `-`.
pub const MAX_OPENAI_TOOLS: usize = 128;
pub const MAX_OPENAI_NAME_CHARS: usize = 64;
/// A tool answer larger than this is refused rather than fed to the model.
pub const MAX_RESULT_BYTES: usize = 32 * 1024;
/// The header that carries an HTTP tool call's signature.
pub const SIGNATURE_HEADER: &str = "x-tool-signature";
/// The name of the built-in tool that ends the call.
pub const END_CALL: &str = "end_call";

/// One entry of `TOOLS`.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolEntry {
    Http(HttpToolSpec),
    /// `{"builtin": "end_call"}`.
    EndCall,
}

/// An HTTP tool as declared in `TOOLS`.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpToolSpec {
    pub name: String,
    pub description: String,
    /// A JSON Schema of `"type": "object"`, shown to the model and checked before each call.
    pub parameters: Value,
    pub url: String,
    pub timeout_ms: u64,
    /// The call changes something (a booking, a payment): never run twice for one turn.
    pub side_effect: bool,
    /// Spoken when the call starts; `None` means the default filler, `Some("")` silence.
    pub filler: Option<String>,
}

/// Parses `TOOLS`. Unset or blank means no tools.
pub fn parse(raw: &str) -> Result<Vec<ToolEntry>, String> {
    if raw.trim().is_empty() {
        return Ok(Vec::new());
    }
    // `from_slice`, not `from_str` (here and below): the wasm then holds one copy of serde_json's
    // parser, not a second one for `StrRead` (about 2 KB gzipped).
    let value: Value = serde_json::from_slice(raw.as_bytes())
        .map_err(|e| format!("TOOLS is not valid JSON: {e}"))?;
    let Value::Array(items) = value else {
        return Err("TOOLS must be a JSON array of tools".to_string());
    };
    if items.len() > MAX_TOOLS {
        return Err(format!(
            "TOOLS lists {} tools; at most {MAX_TOOLS}",
            items.len()
        ));
    }
    let mut entries = Vec::with_capacity(items.len());
    let mut names: Vec<String> = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let entry = parse_entry(item).map_err(|e| match entry_name(item) {
            Some(name) => format!("TOOLS[{index}] ({name}): {e}"),
            None => format!("TOOLS[{index}]: {e}"),
        })?;
        let name = match &entry {
            ToolEntry::Http(spec) => spec.name.clone(),
            ToolEntry::EndCall => END_CALL.to_string(),
        };
        if names.contains(&name) {
            return Err(format!("TOOLS[{index}]: the name {name} is used twice"));
        }
        names.push(name);
        entries.push(entry);
    }
    Ok(entries)
}

fn entry_name(item: &Value) -> Option<&str> {
    item.get("name")
        .or_else(|| item.get("builtin"))
        .and_then(Value::as_str)
}

const HTTP_FIELDS: [&str; 7] = [
    "name",
    "description",
    "parameters",
    "url",
    "timeout_ms",
    "side_effect",
    "filler",
];

fn parse_entry(item: &Value) -> Result<ToolEntry, String> {
    let Value::Object(fields) = item else {
        return Err("each tool must be a JSON object".to_string());
    };
    if let Some(builtin) = fields.get("builtin") {
        if fields.len() > 1 {
            return Err("a builtin entry takes no other fields".to_string());
        }
        return match builtin.as_str() {
            Some(END_CALL) => Ok(ToolEntry::EndCall),
            _ => Err(format!(
                "unknown builtin {builtin}; the only one is \"{END_CALL}\""
            )),
        };
    }
    if let Some(unknown) = fields.keys().find(|k| !HTTP_FIELDS.contains(&k.as_str())) {
        return Err(format!("unknown field {unknown}"));
    }
    let name = required_string(fields, "name")?;
    check_name(&name)?;
    let description = required_string(fields, "description")?;
    let parameters = match fields.get("parameters") {
        None => json!({"type": "object", "properties": {}}),
        Some(schema) => {
            check_parameters(schema)?;
            schema.clone()
        }
    };
    let url = required_string(fields, "url")?;
    check_url(&url)?;
    let timeout_ms = match fields.get("timeout_ms") {
        None => DEFAULT_TIMEOUT_MS,
        Some(value) => value
            .as_u64()
            .filter(|ms| (TIMEOUT_MS_RANGE.0..=TIMEOUT_MS_RANGE.1).contains(ms))
            .ok_or_else(|| {
                format!(
                    "timeout_ms must be a whole number from {} to {}",
                    TIMEOUT_MS_RANGE.0, TIMEOUT_MS_RANGE.1
                )
            })?,
    };
    let side_effect = match fields.get("side_effect") {
        None => false,
        Some(value) => value.as_bool().ok_or("side_effect must be true or false")?,
    };
    let filler = match fields.get("filler") {
        None => None,
        Some(value) => Some(
            value
                .as_str()
                .ok_or("filler must be a string")?
                .trim()
                .to_string(),
        ),
    };
    Ok(ToolEntry::Http(HttpToolSpec {
        name,
        description,
        parameters,
        url,
        timeout_ms,
        side_effect,
        filler,
    }))
}

fn required_string(fields: &Map<String, Value>, key: &str) -> Result<String, String> {
    match fields.get(key).and_then(Value::as_str).map(str::trim) {
        Some(text) if !text.is_empty() => Ok(text.to_string()),
        _ => Err(format!("{key} must be a non-empty string")),
    }
}

/// Gemini's rule: a letter or underscore first, then letters, digits, `_ . : -`; 128 at most.
fn check_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'));
    if !first_ok || !rest_ok || name.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "name must start with a letter or underscore and hold only letters, digits, \
             _ . : - (at most {MAX_NAME_CHARS})"
        ));
    }
    Ok(())
}

/// The OpenAI wire's stricter rules (`^[a-zA-Z0-9_-]{1,64}$`, at most 128 tools), for `TOOLS`
/// when an `openai` model is configured: a name it would refuse fails every turn with a 400.
pub fn check_for_openai(entries: &[ToolEntry]) -> Result<(), String> {
    if entries.len() > MAX_OPENAI_TOOLS {
        return Err(format!(
            "TOOLS lists {} tools; the openai api takes at most {MAX_OPENAI_TOOLS}",
            entries.len()
        ));
    }
    for (index, entry) in entries.iter().enumerate() {
        let name = match entry {
            ToolEntry::Http(spec) => spec.name.as_str(),
            ToolEntry::EndCall => END_CALL,
        };
        let valid = !name.is_empty()
            && name.chars().count() <= MAX_OPENAI_NAME_CHARS
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'));
        if !valid {
            return Err(format!(
                "TOOLS[{index}] ({name}): the name is not valid for the openai api (MODELS): \
                 letters, digits, _ and - only, at most {MAX_OPENAI_NAME_CHARS}"
            ));
        }
    }
    Ok(())
}

fn check_parameters(schema: &Value) -> Result<(), String> {
    let Some(fields) = schema.as_object() else {
        return Err("parameters must be a JSON Schema object".to_string());
    };
    if fields.get("type").and_then(Value::as_str) != Some("object") {
        return Err("parameters must have \"type\": \"object\"".to_string());
    }
    let properties = match fields.get("properties") {
        None => None,
        Some(Value::Object(properties)) => Some(properties),
        Some(_) => return Err("parameters.properties must be an object".to_string()),
    };
    match fields.get("required") {
        None => Ok(()),
        Some(Value::Array(required)) => {
            for name in required {
                let name = name
                    .as_str()
                    .ok_or("parameters.required must list property names")?;
                if !properties.is_some_and(|p| p.contains_key(name)) {
                    return Err(format!(
                        "parameters.required names {name}, which is not in properties"
                    ));
                }
            }
            Ok(())
        }
        Some(_) => Err("parameters.required must be an array of names".to_string()),
    }
}

/// An absolute `http`/`https` URL with a host. Checked by hand: the `url` crate's IDNA tables
/// would add about 100 KB to the gzipped wasm.
fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or_default());
    let valid = host.is_some_and(|h| !h.is_empty() && !h.starts_with(':') && !h.contains('@'))
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err("url must be an absolute http or https URL".to_string())
    }
}

/// What a deployer should hear about `TOOLS` on `/health` beyond a parse error.
pub fn warnings(entries: &[ToolEntry], signing_secret_set: bool) -> Vec<String> {
    let http = entries.iter().any(|e| matches!(e, ToolEntry::Http(_)));
    if http && !signing_secret_set {
        vec![
            "TOOLS lists HTTP tools but TOOLS_SIGNING_SECRET is not set: calls go out unsigned, \
             so endpoints cannot tell them from anyone else's"
                .to_string(),
        ]
    } else {
        Vec::new()
    }
}

/// One function call of the model, as a tool receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolCall {
    /// The model's id, or one the worker made when the model gave none.
    pub call_id: String,
    pub name: String,
    pub args: Value,
    pub conversation_id: String,
    pub turn_id: String,
}

/// What running a tool gives: the output for the model, or a sentence saying what failed.
pub type ToolResult = Result<Value, String>;

/// The future of one tool run. Dropping it cancels the run (an HTTP tool aborts its fetch).
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = ToolResult> + 'a>>;

/// A tool the model can call. Implement it to add a tool in Rust, and register it in
/// [`registry`].
pub trait Tool {
    fn name(&self) -> &str;
    /// Tells the model when to call it.
    fn description(&self) -> &str;
    /// A JSON Schema of `"type": "object"`; arguments are checked against it before `run`.
    fn parameters(&self) -> &Value;
    /// Runs one call. Only called with arguments that passed the check.
    fn run<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a>;
    /// Whether a run changes something, so that a redelivered turn must not run it again.
    fn side_effect(&self) -> bool {
        false
    }
    /// The longest a run may take.
    fn timeout_ms(&self) -> u64 {
        DEFAULT_TIMEOUT_MS
    }
    /// Spoken when a call starts: `None` for the default filler, `Some("")` for none.
    fn filler(&self) -> Option<&str> {
        None
    }
    /// `response.data` content to send once the reply has been spoken, after a successful run.
    fn after_reply(&self) -> Option<Value> {
        None
    }
}

/// The tools of a turn, in declaration order.
#[derive(Default)]
pub struct Registry {
    tools: Vec<Box<dyn Tool>>,
}

impl Registry {
    pub fn add(&mut self, tool: Box<dyn Tool>) {
        self.tools.push(tool);
    }

    pub fn get(&self, name: &str) -> Option<&dyn Tool> {
        self.tools
            .iter()
            .find(|t| t.name() == name)
            .map(|t| t.as_ref())
    }

    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Tool> {
        self.tools.iter().map(|t| t.as_ref())
    }
}

/// The one place tools are registered: the `TOOLS` entries (`http` builds an HTTP tool from its
/// declaration). A fork adds its own Rust tools here with `registry.add(Box::new(MyTool))`.
pub fn registry(entries: &[ToolEntry], http: impl Fn(&HttpToolSpec) -> Box<dyn Tool>) -> Registry {
    let mut registry = Registry::default();
    for entry in entries {
        match entry {
            ToolEntry::Http(spec) => registry.add(http(spec)),
            ToolEntry::EndCall => registry.add(Box::new(EndCall::new())),
        }
    }
    registry
}

/// What the model is told of one tool, in no wire's shape: each wire family writes it its own
/// way (Gemini `functionDeclarations`, OpenAI `tools[].function`).
#[derive(Debug, Clone, PartialEq)]
pub struct Declaration {
    pub name: String,
    pub description: String,
    /// A JSON Schema of `"type": "object"`.
    pub parameters: Value,
}

/// The declarations of a registry, in order.
pub fn declarations(registry: &Registry) -> Vec<Declaration> {
    registry
        .iter()
        .map(|tool| Declaration {
            name: tool.name().to_string(),
            description: tool.description().to_string(),
            parameters: tool.parameters().clone(),
        })
        .collect()
}

/// The built-in `end_call`: the agent says goodbye, then the browser app is told to hang up
/// with `response.data` `{"action": "end_call"}` (Layercode has no hang-up event of its own).
pub struct EndCall {
    parameters: Value,
}

impl EndCall {
    pub fn new() -> Self {
        EndCall {
            parameters: json!({"type": "object", "properties": {}}),
        }
    }
}

impl Default for EndCall {
    fn default() -> Self {
        EndCall::new()
    }
}

impl Tool for EndCall {
    fn name(&self) -> &str {
        END_CALL
    }
    fn description(&self) -> &str {
        "Ends the phone call. Call it only when the caller has said goodbye or asked to hang \
         up, and say a short goodbye in the same reply."
    }
    fn parameters(&self) -> &Value {
        &self.parameters
    }
    fn run<'a>(&'a self, _call: &'a ToolCall) -> ToolFuture<'a> {
        Box::pin(async { Ok(json!({"status": "the call ends after your goodbye"})) })
    }
    fn filler(&self) -> Option<&str> {
        Some("") // the goodbye is the model's to say
    }
    fn after_reply(&self) -> Option<Value> {
        Some(json!({"action": "end_call"}))
    }
}

/// The JSON body POSTed to an HTTP tool.
pub fn call_body(call: &ToolCall) -> String {
    json!({
        "tool": call.name,
        "call_id": call.call_id,
        "args": call.args,
        "conversation_id": call.conversation_id,
        "turn_id": call.turn_id,
    })
    .to_string()
}

/// What an HTTP tool's answer means for the model: a 2xx JSON body is the output, any other 2xx
/// body is a string output, every other status an error.
pub fn http_result(status: u16, body: &str) -> ToolResult {
    if !(200..300).contains(&status) {
        return Err(format!("the tool failed (HTTP status {status})"));
    }
    if body.len() > MAX_RESULT_BYTES {
        return Err(format!(
            "the tool's answer was larger than {MAX_RESULT_BYTES} bytes"
        ));
    }
    Ok(serde_json::from_slice(body.as_bytes()).unwrap_or_else(|_| Value::String(body.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(entry: &ToolEntry) -> &HttpToolSpec {
        match entry {
            ToolEntry::Http(spec) => spec,
            ToolEntry::EndCall => panic!("not an HTTP tool"),
        }
    }

    const SHOP_HOURS: &str = r#"{"name": "shop_hours", "description": "Opening hours of one shop.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                       "required": ["city"]},
        "url": "https://tools.example.com/shop_hours"}"#;

    #[test]
    fn the_issue_example_parses_with_defaults() {
        let entries = parse(&format!("[{SHOP_HOURS}, {{\"builtin\": \"end_call\"}}]")).unwrap();
        assert_eq!(entries.len(), 2);
        let spec = http(&entries[0]);
        assert_eq!(spec.name, "shop_hours");
        assert_eq!(spec.description, "Opening hours of one shop.");
        assert_eq!(spec.parameters["required"], json!(["city"]));
        assert_eq!(spec.url, "https://tools.example.com/shop_hours");
        assert_eq!(spec.timeout_ms, 5000);
        assert!(!spec.side_effect);
        assert_eq!(spec.filler, None);
        assert_eq!(entries[1], ToolEntry::EndCall);
    }

    #[test]
    fn optional_fields_are_read() {
        let entries = parse(
            r#"[{"name": "book", "description": "Books a table.", "url": "http://127.0.0.1:8/b",
                 "timeout_ms": 800, "side_effect": true, "filler": " Booking that now. "}]"#,
        )
        .unwrap();
        let spec = http(&entries[0]);
        assert_eq!(spec.timeout_ms, 800);
        assert!(spec.side_effect);
        assert_eq!(spec.filler.as_deref(), Some("Booking that now."));
        assert_eq!(spec.parameters, json!({"type": "object", "properties": {}}));
    }

    #[test]
    fn unset_or_blank_means_no_tools() {
        assert_eq!(parse(""), Ok(Vec::new()));
        assert_eq!(parse("  \n"), Ok(Vec::new()));
        assert_eq!(parse("[]"), Ok(Vec::new()));
    }

    #[test]
    fn invalid_values_are_refused_with_a_clear_message() {
        let tool = |patch: &str| {
            format!(r#"[{{"name": "t", "description": "d", "url": "https://x.example/t"{patch}}}]"#)
        };
        let cases: Vec<(String, &str)> = vec![
            ("[".into(), "TOOLS is not valid JSON"),
            (r#"{"name": "t"}"#.into(), "TOOLS must be a JSON array of tools"),
            ("[1]".into(), "TOOLS[0]: each tool must be a JSON object"),
            (r#"[{"builtin": "transfer"}]"#.into(), "TOOLS[0] (transfer): unknown builtin \"transfer\""),
            (r#"[{"builtin": "end_call", "filler": "x"}]"#.into(), "TOOLS[0] (end_call): a builtin entry takes no other fields"),
            (tool(r#", "urll": "x""#), "TOOLS[0] (t): unknown field urll"),
            (r#"[{"description": "d", "url": "https://x.example"}]"#.into(), "TOOLS[0]: name must be a non-empty string"),
            (r#"[{"name": "9lives", "description": "d", "url": "https://x.example"}]"#.into(), "TOOLS[0] (9lives): name must start with a letter"),
            (r#"[{"name": "shop hours", "description": "d", "url": "https://x.example"}]"#.into(), "TOOLS[0] (shop hours): name must start"),
            (format!(r#"[{{"name": "{}", "description": "d", "url": "https://x.example"}}]"#, "a".repeat(129)), "name must start"),
            (r#"[{"name": "t", "url": "https://x.example"}]"#.into(), "TOOLS[0] (t): description must be a non-empty string"),
            (r#"[{"name": "t", "description": "d"}]"#.into(), "TOOLS[0] (t): url must be a non-empty string"),
            (r#"[{"name": "t", "description": "d", "url": "ftp://x.example/t"}]"#.into(), "url must be an absolute http or https URL"),
            (r#"[{"name": "t", "description": "d", "url": "/relative"}]"#.into(), "url must be an absolute http or https URL"),
            (r#"[{"name": "t", "description": "d", "url": "https:///path"}]"#.into(), "url must be an absolute http or https URL"),
            (r#"[{"name": "t", "description": "d", "url": "https://user@x.example/"}]"#.into(), "url must be an absolute http or https URL"),
            (r#"[{"name": "t", "description": "d", "url": "https://x.example/a b"}]"#.into(), "url must be an absolute http or https URL"),
            (tool(r#", "parameters": []"#), "parameters must be a JSON Schema object"),
            (tool(r#", "parameters": {"type": "string"}"#), "parameters must have \"type\": \"object\""),
            (tool(r#", "parameters": {"type": "object", "properties": []}"#), "parameters.properties must be an object"),
            (tool(r#", "parameters": {"type": "object", "required": ["city"]}"#), "parameters.required names city, which is not in properties"),
            (tool(r#", "parameters": {"type": "object", "required": "city"}"#), "parameters.required must be an array of names"),
            (tool(r#", "timeout_ms": 0"#), "timeout_ms must be a whole number from 100 to 60000"),
            (tool(r#", "timeout_ms": "5000""#), "timeout_ms must be a whole number"),
            (tool(r#", "timeout_ms": 60001"#), "timeout_ms must be a whole number"),
            (tool(r#", "side_effect": "yes""#), "side_effect must be true or false"),
            (tool(r#", "filler": 3"#), "filler must be a string"),
            (
                format!(r#"[{SHOP_HOURS}, {SHOP_HOURS}]"#),
                "TOOLS[1]: the name shop_hours is used twice",
            ),
            (
                r#"[{"builtin": "end_call"}, {"name": "end_call", "description": "d", "url": "https://x.example"}]"#.into(),
                "TOOLS[1]: the name end_call is used twice",
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
    fn names_follow_the_gemini_rules() {
        for good in ["a", "_private", "shop.hours:v2-beta", &"a".repeat(128)] {
            assert_eq!(check_name(good), Ok(()), "{good}");
        }
        for bad in ["", "-a", ".a", "1a", "a b", "a/b", "é", &"a".repeat(129)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn openai_names_are_held_to_its_stricter_rule() {
        let named = |name: &str| {
            parse(&format!(
                r#"[{{"name": "{name}", "description": "d", "url": "https://x.example"}}]"#
            ))
            .unwrap()
        };
        assert_eq!(check_for_openai(&named("shop_hours-v2")), Ok(()));
        assert_eq!(check_for_openai(&[ToolEntry::EndCall]), Ok(()));
        for bad in ["shop.hours", "ns:tool", &"a".repeat(65)] {
            let error = check_for_openai(&named(bad)).unwrap_err();
            assert!(
                error.contains("not valid for the openai api"),
                "{bad}: {error}"
            );
        }
    }

    #[test]
    fn a_missing_signing_secret_is_a_warning_for_http_tools_only() {
        let with_http = parse(&format!("[{SHOP_HOURS}]")).unwrap();
        assert_eq!(warnings(&with_http, true), Vec::<String>::new());
        assert_eq!(warnings(&with_http, false).len(), 1);
        assert!(warnings(&with_http, false)[0].contains("TOOLS_SIGNING_SECRET"));
        assert!(warnings(&[ToolEntry::EndCall], false).is_empty());
    }

    #[test]
    fn the_call_body_has_the_five_fields() {
        let call = ToolCall {
            call_id: "call_1".into(),
            name: "shop_hours".into(),
            args: json!({"city": "Paris"}),
            conversation_id: "conv_1".into(),
            turn_id: "turn_1".into(),
        };
        let body: Value = serde_json::from_str(&call_body(&call)).unwrap();
        assert_eq!(
            body,
            json!({"tool": "shop_hours", "call_id": "call_1", "args": {"city": "Paris"},
                   "conversation_id": "conv_1", "turn_id": "turn_1"})
        );
    }

    #[test]
    fn http_answers_become_outputs_or_errors() {
        let cases: &[(u16, &str, ToolResult)] = &[
            (200, r#"{"open": true}"#, Ok(json!({"open": true}))),
            (201, "[1, 2]", Ok(json!([1, 2]))),
            (200, "Open until seven.", Ok(json!("Open until seven."))),
            (204, "", Ok(json!(""))),
            (
                404,
                r#"{"error": "no such shop"}"#,
                Err("the tool failed (HTTP status 404)".into()),
            ),
            (500, "oops", Err("the tool failed (HTTP status 500)".into())),
            (302, "", Err("the tool failed (HTTP status 302)".into())),
        ];
        for (status, body, expected) in cases {
            assert_eq!(&http_result(*status, body), expected, "{status} {body}");
        }
        let huge = "x".repeat(MAX_RESULT_BYTES + 1);
        assert!(http_result(200, &huge).unwrap_err().contains("larger than"));
    }

    #[test]
    fn the_registry_holds_the_entries_in_order_and_end_call_asks_to_hang_up() {
        struct Named(String, Value);
        impl Tool for Named {
            fn name(&self) -> &str {
                &self.0
            }
            fn description(&self) -> &str {
                "test"
            }
            fn parameters(&self) -> &Value {
                &self.1
            }
            fn run<'a>(&'a self, _: &'a ToolCall) -> ToolFuture<'a> {
                Box::pin(async { Ok(Value::Null) })
            }
        }
        let entries = parse(&format!("[{SHOP_HOURS}, {{\"builtin\": \"end_call\"}}]")).unwrap();
        let registry = registry(&entries, |spec| {
            Box::new(Named(spec.name.clone(), spec.parameters.clone()))
        });
        let names: Vec<&str> = registry.iter().map(|t| t.name()).collect();
        assert_eq!(names, vec!["shop_hours", "end_call"]);
        let end_call = registry.get(END_CALL).unwrap();
        assert_eq!(end_call.after_reply(), Some(json!({"action": "end_call"})));
        assert_eq!(end_call.filler(), Some(""));
        assert!(!end_call.side_effect());
        assert!(registry.get("nope").is_none());
    }
}

//! The request body: system prompt, `contents` that are always valid (a user turn first,
//! alternating roles, never an empty text part), voice-friendly generation options, the tools,
//! and the follow-ups after tool rounds.

use serde_json::{json, Value};

use crate::history::{HistoryMessage, Role};
use crate::llm::{conversation, ToolStep};
use crate::tools::Declaration;

/// Caps a spoken reply; the system prompt asks for far less.
const MAX_OUTPUT_TOKENS: u32 = 1024;
pub use crate::llm::CALL_STARTED_BRIDGE;

/// The streaming endpoint for a model.
pub fn stream_url(base_url: &str, model: &str) -> String {
    format!("{base_url}/v1beta/models/{model}:streamGenerateContent?alt=sse")
}

/// The JSON request body: system prompt, the conversation, and voice-friendly generation options.
pub fn request_body(system_prompt: &str, model: &str, history: &[HistoryMessage]) -> Value {
    let mut generation_config = json!({ "maxOutputTokens": MAX_OUTPUT_TOKENS });
    if let Some(thinking) = thinking_config(model) {
        generation_config["thinkingConfig"] = thinking;
    }
    json!({
        "systemInstruction": { "parts": [{ "text": system_prompt }] },
        "contents": build_contents(history),
        "generationConfig": generation_config,
    })
}

/// [`request_body`] plus the tools the model may call (`tools[].functionDeclarations`, each
/// `{name, description, parametersJsonSchema}`) and `toolConfig` mode `AUTO`.
pub fn request_body_with_tools(
    system_prompt: &str,
    model: &str,
    history: &[HistoryMessage],
    declarations: Vec<Value>,
) -> Value {
    let mut body = request_body(system_prompt, model, history);
    body["tools"] = json!([{ "functionDeclarations": declarations }]);
    body["toolConfig"] = json!({ "functionCallingConfig": { "mode": "AUTO" } });
    body
}

/// Gemini's `functionDeclarations` entries: `{name, description, parametersJsonSchema}`.
pub fn function_declarations(declarations: &[Declaration]) -> Vec<Value> {
    declarations
        .iter()
        .map(|d| {
            json!({
                "name": d.name,
                "description": d.description,
                "parametersJsonSchema": d.parameters,
            })
        })
        .collect()
}

/// The request after tool rounds: `base` with each round appended as the model's parts
/// verbatim, then one `user` content holding one `functionResponse` per call, in order (the id
/// only where the model gave one). `calling_allowed` false sets mode `NONE`, so the model must
/// answer in words.
pub fn follow_up_body(base: &Value, steps: &[ToolStep], calling_allowed: bool) -> Value {
    let mut body = base.clone();
    if let Some(contents) = body["contents"].as_array_mut() {
        for step in steps {
            contents.push(json!({ "role": "model", "parts": step.model_parts }));
            let responses: Vec<Value> = step
                .responses
                .iter()
                .map(|r| {
                    let mut answer = json!({ "name": r.name, "response": r.response });
                    if let Some(id) = &r.id {
                        answer["id"] = json!(id);
                    }
                    json!({ "functionResponse": answer })
                })
                .collect();
            contents.push(json!({ "role": "user", "parts": responses }));
        }
    }
    if !calling_allowed {
        body["toolConfig"] = json!({ "functionCallingConfig": { "mode": "NONE" } });
    }
    body
}

/// Thinking costs seconds before the first word, so it is off (2.5) or minimal (3.x).
/// Unknown families get no `thinkingConfig`: a wrong field is a 400.
pub fn thinking_config(model: &str) -> Option<Value> {
    let model = model.trim_start_matches("models/");
    if model.starts_with("gemini-2.5-pro") {
        Some(json!({ "thinkingBudget": 128 })) // 2.5 Pro cannot switch thinking off
    } else if model.starts_with("gemini-2.5") {
        Some(json!({ "thinkingBudget": 0 }))
    } else if model.contains("-pro") && model.starts_with("gemini-3") {
        Some(json!({ "thinkingLevel": "LOW" })) // 3 Pro offers only LOW and HIGH
    } else if model.starts_with("gemini-3") {
        // Upper case, as the REST reference and the official SDKs write the enum.
        Some(json!({ "thinkingLevel": "MINIMAL" }))
    } else {
        None
    }
}

/// Turns stored history into Gemini `contents`: user/model roles only, starting with a user
/// turn, alternating (adjacent same-role messages are merged), and no empty text part, ever.
pub fn build_contents(history: &[HistoryMessage]) -> Vec<Value> {
    conversation(history)
        .into_iter()
        .map(|(role, text)| {
            let role = match role {
                Role::User => "user",
                Role::Assistant => "model",
            };
            json!({ "role": role, "parts": [{ "text": text }] })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::FunctionResponse;

    fn texts(contents: &[Value]) -> Vec<(String, String)> {
        contents
            .iter()
            .map(|c| {
                (
                    c["role"].as_str().unwrap().to_string(),
                    c["parts"][0]["text"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn pair(role: &str, text: &str) -> (String, String) {
        (role.to_string(), text.to_string())
    }

    #[test]
    fn url_uses_the_sse_streaming_endpoint() {
        assert_eq!(
            stream_url("http://127.0.0.1:9", "gemini-2.5-flash-lite"),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-flash-lite:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn body_has_system_prompt_contents_and_thinking_off_for_2_5() {
        let body = request_body(
            "Be brief.",
            "gemini-2.5-flash-lite",
            &[HistoryMessage::user("Hi")],
        );
        assert_eq!(
            body,
            json!({
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                "generationConfig": {"maxOutputTokens": 1024, "thinkingConfig": {"thinkingBudget": 0}}
            })
        );
    }

    #[test]
    fn thinking_config_follows_the_model_family() {
        assert_eq!(
            thinking_config("gemini-2.5-flash"),
            Some(json!({"thinkingBudget": 0}))
        );
        assert_eq!(
            thinking_config("gemini-2.5-pro"),
            Some(json!({"thinkingBudget": 128}))
        );
        assert_eq!(
            thinking_config("gemini-3.1-flash-lite"),
            Some(json!({"thinkingLevel": "MINIMAL"}))
        );
        assert_eq!(
            thinking_config("gemini-3-pro-preview"),
            Some(json!({"thinkingLevel": "LOW"}))
        );
        assert_eq!(thinking_config("gemini-2.0-flash"), None);
        assert_eq!(thinking_config("learnlm-2.0"), None);
    }

    #[test]
    fn contents_start_with_a_user_turn_after_a_welcome() {
        let contents = build_contents(&[
            HistoryMessage::assistant("Hi! How can I help?"),
            HistoryMessage::user("What time is it?"),
        ]);
        assert_eq!(
            texts(&contents),
            vec![
                pair("user", CALL_STARTED_BRIDGE),
                pair("model", "Hi! How can I help?"),
                pair("user", "What time is it?"),
            ]
        );
    }

    #[test]
    fn contents_merge_same_roles_and_drop_empty_messages() {
        let contents = build_contents(&[
            HistoryMessage::user("Hello"),
            HistoryMessage::assistant(""),
            HistoryMessage::assistant("  "),
            HistoryMessage::user("Are you there?"),
            HistoryMessage::assistant("Yes."),
            HistoryMessage::assistant("Sorry, go on."),
            HistoryMessage::user("Tell me a joke"),
        ]);
        assert_eq!(
            texts(&contents),
            vec![
                pair("user", "Hello\nAre you there?"),
                pair("model", "Yes.\nSorry, go on."),
                pair("user", "Tell me a joke"),
            ]
        );
    }

    #[test]
    fn contents_always_alternate_and_never_hold_empty_text() {
        // Every combination of up to 6 messages of either role, empty or not.
        for mask in 0u32..(1 << 12) {
            let history: Vec<_> = (0..6)
                .map(|i| {
                    let role = if mask >> (2 * i) & 1 == 0 {
                        Role::User
                    } else {
                        Role::Assistant
                    };
                    let text = if mask >> (2 * i + 1) & 1 == 0 {
                        "words"
                    } else {
                        ""
                    };
                    HistoryMessage {
                        role,
                        text: text.to_string(),
                    }
                })
                .chain(std::iter::once(HistoryMessage::user("now")))
                .collect();
            let contents = texts(&build_contents(&history));
            assert_eq!(contents.first().unwrap().0, "user");
            assert_eq!(contents.last().unwrap().0, "user");
            assert!(contents.iter().all(|(_, text)| !text.is_empty()));
            assert!(contents.windows(2).all(|w| w[0].0 != w[1].0));
        }
    }

    #[test]
    fn tools_are_declared_and_follow_ups_answer_every_call() {
        let declarations = vec![json!({"name": "shop_hours", "description": "Hours.",
            "parametersJsonSchema": {"type": "object"}})];
        let first = request_body_with_tools(
            "Be brief.",
            "gemini-3-flash-preview",
            &[HistoryMessage::user("Is Paris open?")],
            declarations.clone(),
        );
        assert_eq!(
            first["tools"],
            json!([{"functionDeclarations": declarations}])
        );
        assert_eq!(first["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
        let parts = vec![
            json!({"functionCall": {"name": "shop_hours", "args": {}, "id": "fc_1"}, "thoughtSignature": "c2ln"}),
            json!({"functionCall": {"name": "shop_hours", "args": {}}}),
        ];
        let step = ToolStep {
            model_parts: parts.clone(),
            calls: Vec::new(),
            responses: vec![
                FunctionResponse {
                    name: "shop_hours".into(),
                    id: Some("fc_1".into()),
                    response: json!({"output": {"open": true}}),
                },
                FunctionResponse {
                    name: "shop_hours".into(),
                    id: None,
                    response: json!({"error": "timeout"}),
                },
            ],
        };
        let next = follow_up_body(&first, std::slice::from_ref(&step), true);
        let contents = next["contents"].as_array().unwrap();
        assert_eq!(contents.len(), 3);
        assert_eq!(contents[1], json!({"role": "model", "parts": parts}));
        assert_eq!(
            contents[2],
            json!({"role": "user", "parts": [
                {"functionResponse": {"name": "shop_hours", "id": "fc_1", "response": {"output": {"open": true}}}},
                {"functionResponse": {"name": "shop_hours", "response": {"error": "timeout"}}}
            ]})
        );
        assert_eq!(next["toolConfig"]["functionCallingConfig"]["mode"], "AUTO");
        let last = follow_up_body(&first, &[step.clone(), step], false);
        assert_eq!(last["contents"].as_array().unwrap().len(), 5);
        assert_eq!(last["toolConfig"]["functionCallingConfig"]["mode"], "NONE");
        assert_eq!(last["systemInstruction"], first["systemInstruction"]);
    }
}

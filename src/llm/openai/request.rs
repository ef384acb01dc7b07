//! The request body: the system prompt as the first message, the history as `user` /
//! `assistant` messages (the same always-valid conversation Gemini gets), streaming with usage,
//! the tools, and the follow-ups after tool rounds.

use serde_json::{json, Value};

use crate::history::{HistoryMessage, Role};
use crate::llm::{conversation, ToolStep};
use crate::tools::Declaration;

/// `{base_url}/chat/completions`: the base already ends in its version segment (`/v1`,
/// `/openai/v1`), so the path is appended, never rebuilt.
pub fn chat_url(base_url: &str) -> String {
    format!("{}/chat/completions", base_url.trim_end_matches('/'))
}

/// The streamed request. No token cap is sent: OpenAI's reasoning models refuse `max_tokens`,
/// other servers ignore `max_completion_tokens`, and a spoken reply is bounded by
/// `REPLY_MAX_CHARS` and `TURN_MAX_MS` anyway. With `tools`, they are declared with
/// `tool_choice: "auto"`.
pub fn request_body(
    system_prompt: &str,
    model: &str,
    history: &[HistoryMessage],
    tools: &[Declaration],
) -> Value {
    let mut messages = vec![json!({ "role": "system", "content": system_prompt })];
    messages.extend(conversation(history).into_iter().map(|(role, text)| {
        let role = match role {
            Role::User => "user",
            Role::Assistant => "assistant",
        };
        json!({ "role": role, "content": text })
    }));
    let mut body = json!({
        "model": model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    if !tools.is_empty() {
        let tools: Vec<Value> = tools
            .iter()
            .map(|d| {
                json!({
                    "type": "function",
                    "function": {
                        "name": d.name,
                        "description": d.description,
                        "parameters": d.parameters,
                    }
                })
            })
            .collect();
        body["tools"] = json!(tools);
        body["tool_choice"] = json!("auto");
    }
    body
}

/// The request after tool rounds: `base` with each round appended as the model's `assistant`
/// message (its `tool_calls`, arguments as the model wrote them) and one `tool` message per
/// call, in order, holding the answer as JSON text. `calling_allowed` false sets
/// `tool_choice: "none"` (the tools stay declared), so the model must answer in words.
pub fn follow_up_body(base: &Value, steps: &[ToolStep], calling_allowed: bool) -> Value {
    let mut body = base.clone();
    if let Some(messages) = body["messages"].as_array_mut() {
        for step in steps {
            messages.extend(step.model_parts.iter().cloned());
            for (call, response) in step.calls.iter().zip(&step.responses) {
                messages.push(json!({
                    "role": "tool",
                    "tool_call_id": call.id.as_deref().unwrap_or_default(),
                    "content": response.response.to_string(),
                }));
            }
        }
    }
    if !calling_allowed {
        body["tool_choice"] = json!("none");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{FunctionCall, FunctionResponse, CALL_STARTED_BRIDGE};

    #[test]
    fn the_url_keeps_the_base_path() {
        assert_eq!(
            chat_url("https://api.groq.com/openai/v1"),
            "https://api.groq.com/openai/v1/chat/completions"
        );
        assert_eq!(
            chat_url("http://localhost:11434/v1/"),
            "http://localhost:11434/v1/chat/completions"
        );
    }

    #[test]
    fn the_body_has_the_system_prompt_first_then_a_valid_conversation() {
        let body = request_body(
            "Be brief.",
            "gpt-4.1-mini",
            &[
                HistoryMessage::assistant("Hi! How can I help?"),
                HistoryMessage::user("Hi"),
                HistoryMessage::assistant(""),
                HistoryMessage::user("Is the shop open?"),
            ],
            &[],
        );
        assert_eq!(
            body,
            json!({
                "model": "gpt-4.1-mini",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": CALL_STARTED_BRIDGE},
                    {"role": "assistant", "content": "Hi! How can I help?"},
                    {"role": "user", "content": "Hi\nIs the shop open?"}
                ],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
    }

    #[test]
    fn tools_are_declared_and_follow_ups_answer_every_call_by_id() {
        let declarations = vec![Declaration {
            name: "shop_hours".into(),
            description: "Opening hours.".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }];
        let first = request_body(
            "Be brief.",
            "m",
            &[HistoryMessage::user("Is Paris open?")],
            &declarations,
        );
        assert_eq!(
            first["tools"],
            json!([{"type": "function", "function": {"name": "shop_hours",
                "description": "Opening hours.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}])
        );
        assert_eq!(first["tool_choice"], "auto");
        let assistant = json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a1", "type": "function", "function": {"name": "shop_hours", "arguments": "{\"city\": \"Paris\"}"}},
            {"id": "call_b2", "type": "function", "function": {"name": "shop_hours", "arguments": "{\"city\":"}}
        ]});
        let step = ToolStep {
            model_parts: vec![assistant.clone()],
            calls: vec![
                FunctionCall {
                    id: Some("call_a1".into()),
                    name: "shop_hours".into(),
                    args: json!({"city": "Paris"}),
                },
                FunctionCall {
                    id: Some("call_b2".into()),
                    name: "shop_hours".into(),
                    args: json!("{\"city\":"),
                },
            ],
            responses: vec![
                FunctionResponse {
                    name: "shop_hours".into(),
                    id: Some("call_a1".into()),
                    response: json!({"output": {"open": "09:00-19:00"}}),
                },
                FunctionResponse {
                    name: "shop_hours".into(),
                    id: Some("call_b2".into()),
                    response: json!({"error": "bad arguments"}),
                },
            ],
        };
        let next = follow_up_body(&first, std::slice::from_ref(&step), true);
        let messages = next["messages"].as_array().unwrap();
        assert_eq!(messages.len(), 5);
        assert_eq!(messages[2], assistant);
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "call_a1",
                   "content": "{\"output\":{\"open\":\"09:00-19:00\"}}"})
        );
        assert_eq!(messages[4]["tool_call_id"], "call_b2");
        assert_eq!(next["tool_choice"], "auto");
        let last = follow_up_body(&first, &[step.clone(), step], false);
        assert_eq!(last["messages"].as_array().unwrap().len(), 8);
        assert_eq!(last["tool_choice"], "none");
        assert_eq!(last["tools"], first["tools"]);
    }
}

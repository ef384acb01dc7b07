//! A turn's tools as the engine's [`ToolRunner`], and what of a finished turn's tool rounds is
//! kept for later turns (`tools::memory`).

use crate::engine::{CallPlan, ToolLog, ToolRunner};
use crate::llm::FunctionCall;
use crate::tools::memory::PastCall;
use crate::tools::{args, Registry, Tool, ToolCall, ToolResult};

/// The tools of one turn, as the engine's [`ToolRunner`]: calls are looked up in the registry
/// and their arguments checked before anything runs.
pub struct TurnTools {
    pub registry: Registry,
    pub conversation_id: String,
    pub turn_id: String,
}

impl TurnTools {
    fn tool(&self, name: &str) -> Result<&dyn Tool, String> {
        self.registry
            .get(name)
            .ok_or_else(|| format!("there is no tool named {name}"))
    }
}

impl ToolRunner for TurnTools {
    fn prepare(&self, call: &FunctionCall) -> Result<CallPlan, String> {
        let tool = self.tool(&call.name)?;
        args::check(tool.parameters(), &call.args)?;
        Ok(CallPlan {
            timeout_ms: tool.timeout_ms(),
            filler: tool.filler().map(str::to_string),
            after_reply: tool.after_reply(),
        })
    }

    fn call_id(&self, round: u32, index: usize) -> String {
        format!("{}:{round}:{index}", self.turn_id)
    }

    async fn run(&self, call_id: &str, call: &FunctionCall) -> ToolResult {
        let tool = self.tool(&call.name)?;
        let call = ToolCall {
            call_id: call_id.to_string(),
            name: call.name.clone(),
            args: call.args.clone(),
            conversation_id: self.conversation_id.clone(),
            turn_id: self.turn_id.clone(),
        };
        tool.run(&call).await
    }
}

/// The calls of a turn in the order they were made, each with the answer the model got.
pub fn past_calls(log: &ToolLog) -> Vec<PastCall> {
    log.steps
        .iter()
        .flat_map(|step| {
            // One answer per call, in call order (see `ToolStep`).
            step.calls
                .iter()
                .zip(&step.responses)
                .map(|(call, response)| PastCall {
                    name: response.name.clone(),
                    args: call.args.clone(),
                    answer: response.response.clone(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{FunctionResponse, ToolStep};
    use crate::tools::{declarations, Declaration, EndCall, ToolFuture};
    use serde_json::{json, Value};

    fn step(calls: &[(&str, Value)], answers: &[Value]) -> ToolStep {
        ToolStep {
            model_parts: std::iter::once(json!({"text": "One moment."}))
                .chain(calls.iter().map(|(name, args)| {
                    json!({"functionCall": {"name": name, "args": args}, "thoughtSignature": "s"})
                }))
                .collect(),
            calls: calls
                .iter()
                .map(|(name, args)| FunctionCall {
                    id: None,
                    name: name.to_string(),
                    args: args.clone(),
                })
                .collect(),
            responses: calls
                .iter()
                .zip(answers)
                .map(|((name, _), answer)| FunctionResponse {
                    name: name.to_string(),
                    id: None,
                    response: answer.clone(),
                })
                .collect(),
        }
    }

    #[test]
    fn every_call_of_every_round_is_kept_with_its_answer_in_order() {
        let log = ToolLog {
            rounds: 3,
            calls: Vec::new(),
            steps: vec![
                step(
                    &[("hours", json!({"city": "Oslo"})), ("stock", json!({}))],
                    &[json!({"output": "9-17"}), json!({"error": "timeout"})],
                ),
                step(
                    &[("book", json!({"at": "18:00"}))],
                    &[json!({"error": "interrupted by the caller"})],
                ),
            ],
        };
        let names: Vec<(String, Value)> = past_calls(&log)
            .into_iter()
            .map(|c| (c.name, c.answer))
            .collect();
        assert_eq!(
            names,
            vec![
                ("hours".into(), json!({"output": "9-17"})),
                ("stock".into(), json!({"error": "timeout"})),
                ("book".into(), json!({"error": "interrupted by the caller"})),
            ]
        );
        assert_eq!(past_calls(&ToolLog::default()), Vec::new());
    }

    #[test]
    fn turn_tools_check_arguments_and_pass_the_turn_to_the_tool() {
        struct Echo(Value);
        impl Tool for Echo {
            fn name(&self) -> &str {
                "echo"
            }
            fn description(&self) -> &str {
                "Echoes."
            }
            fn parameters(&self) -> &Value {
                &self.0
            }
            fn run<'a>(&'a self, call: &'a ToolCall) -> ToolFuture<'a> {
                Box::pin(async move {
                    Ok(json!([
                        call.call_id,
                        call.conversation_id,
                        call.turn_id,
                        call.args
                    ]))
                })
            }
            fn timeout_ms(&self) -> u64 {
                700
            }
        }
        let mut registry = Registry::default();
        registry.add(Box::new(Echo(
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        )));
        registry.add(Box::new(EndCall::new()));
        let tools = TurnTools {
            registry,
            conversation_id: "conv".into(),
            turn_id: "turn".into(),
        };
        let call = |name: &str, args: Value| FunctionCall {
            id: None,
            name: name.into(),
            args,
        };
        assert_eq!(
            tools.prepare(&call("echo", json!({"n": 1}))),
            Ok(CallPlan {
                timeout_ms: 700,
                filler: None,
                after_reply: None
            })
        );
        assert_eq!(
            tools.prepare(&call("echo", json!({}))),
            Err("args.n is required".into())
        );
        assert_eq!(
            tools.prepare(&call("nope", json!({}))),
            Err("there is no tool named nope".into())
        );
        assert_eq!(
            tools
                .prepare(&call("end_call", json!({})))
                .unwrap()
                .after_reply,
            Some(json!({"action": "end_call"}))
        );
        assert_eq!(tools.call_id(2, 1), "turn:2:1");
        let ran =
            futures::FutureExt::now_or_never(tools.run("id_1", &call("echo", json!({"n": 1}))));
        assert_eq!(ran, Some(Ok(json!(["id_1", "conv", "turn", {"n": 1}]))));
        assert_eq!(
            declarations(&tools.registry)[0],
            Declaration {
                name: "echo".into(),
                description: "Echoes.".into(),
                parameters: tools.registry.get("echo").unwrap().parameters().clone()
            }
        );
    }
}

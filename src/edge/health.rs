//! `GET /health`: liveness, which settings are present (never their values), what `TOOLS`
//! declares, which models `MODELS` chains and which one writes summaries (never a key), and the
//! placeholders the prompt and the welcome use.

use serde_json::json;
use worker::{Env, Response};

use crate::config::{self, Config};
use crate::edge::ownership;
use crate::error::{json_response, AppError};
use crate::placeholders;

/// Liveness, which settings are present (never their values), what `TOOLS` declares, and the
/// placeholders the prompt and the welcome use.
pub fn handle(env: &Env) -> Result<Response, AppError> {
    let config = Config::from_env(env);
    let tools = config.tools_report();
    let models = config.models_report();
    let settings: serde_json::Map<String, serde_json::Value> =
        config::present_settings(config::env_lookup(env))
            .into_iter()
            .map(|(name, present)| (name.to_string(), present.into()))
            .collect();
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "settings": settings,
        "tools": tools,
        // How `/authorize` resumes a conversation: `cookie`, `owner header <name>`, or why not.
        "resume": ownership::resume_report(&config),
        "models": models,
        // The model that writes a long call's summary, `off`, and why `SUMMARY_MODEL` was refused.
        "summary": config.summary_report(),
        "placeholders": placeholders_report(&config),
    });
    Ok(json_response(200, &body.to_string())?)
}

/// The keys `SYSTEM_PROMPT` and `WELCOME_MESSAGE` use.
fn placeholders_report(config: &Config) -> serde_json::Value {
    json!({
        "system_prompt": placeholders::keys(&config.system_prompt),
        "welcome_message": placeholders::keys(&config.welcome_message),
    })
}

//! `GET /health`: liveness, which settings are present (never their values), what `TOOLS`
//! declares and which models `MODELS` chains (never a key).

use worker::{Env, Response};

use crate::config;
use crate::edge::ownership;
use crate::error::{json_response, AppError};

/// Liveness, which settings are present (never their values), and what `TOOLS` declares.
pub fn handle(env: &Env) -> Result<Response, AppError> {
    let config = config::Config::from_env(env);
    let tools = config.tools_report();
    let models = config.models_report();
    let settings: serde_json::Map<String, serde_json::Value> =
        config::present_settings(config::env_lookup(env))
            .into_iter()
            .map(|(name, present)| (name.to_string(), present.into()))
            .collect();
    let body = serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "settings": settings,
        "tools": tools,
        // How `/authorize` resumes a conversation: `cookie`, `owner header <name>`, or why not.
        "resume": ownership::resume_report(&config),
        "models": models,
    });
    Ok(json_response(200, &body.to_string())?)
}

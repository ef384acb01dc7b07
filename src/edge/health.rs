//! `GET /health`: liveness, which settings are present (never their values), what `TOOLS`
//! declares, and the placeholders the prompt and the welcome use.

use serde_json::json;
use worker::{Env, Response};

use crate::config::{self, Config};
use crate::error::{json_response, AppError};
use crate::placeholders;

/// Liveness, which settings are present (never their values), what `TOOLS` declares, and the
/// placeholders the prompt and the welcome use.
pub fn handle(env: &Env) -> Result<Response, AppError> {
    let config = Config::from_env(env);
    let settings: serde_json::Map<String, serde_json::Value> =
        config::present_settings(config::env_lookup(env))
            .into_iter()
            .map(|(name, present)| (name.to_string(), present.into()))
            .collect();
    let body = json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "settings": settings,
        "tools": config.tools_report(),
        "placeholders": placeholders_report(&config),
    });
    Ok(json_response(200, &body.to_string())?)
}

/// The keys `SYSTEM_PROMPT` and `WELCOME_MESSAGE` use, and whether the runtime knows
/// `TIME_ZONE` (asked only when `{{date}}` or `{{time}}` is used).
fn placeholders_report(config: &Config) -> serde_json::Value {
    let templates = [&config.system_prompt, &config.welcome_message];
    let unknown_zone = templates.iter().any(|t| placeholders::uses_clock(t))
        && placeholders::utc_offset_minutes(&config.time_zone, worker::js_sys::Date::now())
            .is_none();
    json!({
        "system_prompt": placeholders::keys(&config.system_prompt),
        "welcome_message": placeholders::keys(&config.welcome_message),
        "time_zone": config.time_zone,
        "time_zone_error": unknown_zone
            .then_some("the runtime does not know this time zone: {{date}} and {{time}} are in UTC"),
    })
}

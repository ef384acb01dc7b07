//! `GET /`: the voice page, when the deployer turns it on with `VOICE_PAGE`.
//!
//! The page's script, style and the pinned browser SDK are static assets under `/voice/`
//! (`page/public/`, served by Workers static assets without running this Worker). Only the HTML
//! comes from here, because it depends on the settings: which agent to call, whether the SDK
//! talks to Layercode or to the local stand-in, and therefore which origins the
//! Content-Security-Policy allows. Off (the default), `/` answers 404 as it always did: the page
//! lets anyone who opens it start a call, which costs money.

use worker::{Env, Response};

use crate::config::{Config, VoicePageMode as Mode};
use crate::error::AppError;

/// The path the page is served at.
pub const PATH: &str = "/";

/// The page's HTML; `{{agent_id}}`, `{{mode}}` and `{{socket_url}}` are filled in per request.
const TEMPLATE: &str = include_str!("../../page/index.html");

/// Where the browser SDK opens its socket on Layercode, and loads its voice-activity model from.
const LAYERCODE_SOCKET_ORIGIN: &str = "wss://api.layercode.com";
const LAYERCODE_ASSETS_ORIGIN: &str = "https://assets.layercode.com";
/// The socket path under the Layercode API base URL (the stand-in serves the same path).
const SOCKET_PATH: &str = "/v1/agents/web/websocket";

/// The rendered page and the policy it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub html: String,
    pub content_security_policy: String,
}

pub fn handle(env: &Env) -> Result<Response, AppError> {
    let config = Config::from_env(env);
    let page = render(&config).ok_or(AppError::NotFound)?;
    let mut response = Response::ok(page.html)?;
    let headers = response.headers_mut();
    headers.set("content-type", "text/html; charset=utf-8")?;
    headers.set("content-security-policy", &page.content_security_policy)?;
    headers.set("x-content-type-options", "nosniff")?;
    headers.set("referrer-policy", "no-referrer")?;
    headers.set("cross-origin-opener-policy", "same-origin")?;
    headers.set(
        "permissions-policy",
        "microphone=(self), camera=(), geolocation=()",
    )?;
    // The HTML carries settings: a changed setting shows at the next load.
    headers.set("cache-control", "no-store")?;
    Ok(response)
}

/// The page for these settings, or `None` when it is off (or local without a usable stand-in
/// URL).
pub fn render(config: &Config) -> Option<Page> {
    let socket_url = match config.voice_page {
        Mode::Off => return None,
        Mode::On => None,
        Mode::Local => Some(local_socket_url(&config.layercode_api_base_url)?),
    };
    let agent_id = config.layercode_agent_id.as_deref().unwrap_or_default();
    let html = TEMPLATE
        .replace("{{agent_id}}", &escape_attribute(agent_id))
        .replace("{{mode}}", config.voice_page.name())
        .replace(
            "{{socket_url}}",
            &escape_attribute(socket_url.as_deref().unwrap_or_default()),
        );
    Some(Page {
        html,
        content_security_policy: content_security_policy(socket_url.as_deref()),
    })
}

/// The stand-in's socket: the API base URL with `ws`/`wss` for `http`/`https`, as Layercode
/// serves its REST API and its socket from one host.
pub fn local_socket_url(api_base_url: &str) -> Option<String> {
    let rest = api_base_url
        .strip_prefix("http://")
        .map(|rest| ("ws://", rest))
        .or_else(|| api_base_url.strip_prefix("https://").map(|r| ("wss://", r)));
    let (scheme, authority) = rest?;
    let authority = authority.trim_end_matches('/');
    let valid = !authority.is_empty()
        && authority
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._:[]".contains(c));
    valid.then(|| format!("{scheme}{authority}{SOCKET_PATH}"))
}

/// Only what the page uses: its own files, the audio worklets the SDK builds from `blob:`
/// URLs, and the socket. On Layercode the SDK also fetches its voice-activity model and runtime
/// (WebAssembly) from Layercode's asset host; locally the stand-in turns that model off.
pub fn content_security_policy(local_socket_url: Option<&str>) -> String {
    let (script, connect) = match local_socket_url {
        Some(url) => (String::new(), format!(" {}", origin_of(url))),
        None => (
            format!(" {LAYERCODE_ASSETS_ORIGIN} 'wasm-unsafe-eval'"),
            format!(" {LAYERCODE_SOCKET_ORIGIN} {LAYERCODE_ASSETS_ORIGIN}"),
        ),
    };
    format!(
        "default-src 'none'; script-src 'self' blob:{script}; worker-src 'self' blob:; \
         connect-src 'self'{connect}; style-src 'self'; img-src 'self'; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'"
    )
}

/// `scheme://authority` of a URL that [`local_socket_url`] built.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let end = url[after_scheme..]
        .find('/')
        .map_or(url.len(), |at| after_scheme + at);
    &url[..end]
}

/// Text safe inside a double-quoted HTML attribute.
pub fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{LAYERCODE_AGENT_ID, LAYERCODE_API_BASE_URL, VOICE_PAGE};

    fn config(pairs: &[(&str, &str)]) -> Config {
        Config::from_lookup(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn the_page_is_off_unless_asked_for() {
        assert_eq!(render(&config(&[])), None);
        for off in ["", "off", "yes", "true", "1"] {
            assert_eq!(render(&config(&[(VOICE_PAGE, off)])), None, "{off:?}");
        }
        assert_eq!(Mode::parse(" ON "), Mode::On);
        assert_eq!(Mode::parse("Local"), Mode::Local);
    }

    #[test]
    fn on_layercode_the_sdk_keeps_its_own_socket_and_the_policy_allows_layercode() {
        let page = render(&config(&[(VOICE_PAGE, "on"), (LAYERCODE_AGENT_ID, "ag_1")])).unwrap();
        assert!(page.html.contains(r#"data-agent-id="ag_1""#));
        assert!(page.html.contains(r#"data-mode="layercode""#));
        assert!(page.html.contains(r#"data-socket-url="""#));
        let csp = &page.content_security_policy;
        assert!(csp.starts_with("default-src 'none'; script-src 'self' blob: "));
        assert!(csp
            .contains("connect-src 'self' wss://api.layercode.com https://assets.layercode.com;"));
        assert!(!csp.contains("unsafe-inline") && !csp.contains("127.0.0.1"));
        // No inline script anywhere in the page.
        assert!(!page.html.contains("<script>"));
        assert_eq!(page.html.matches("<script").count(), 1);
        assert!(page
            .html
            .contains(r#"<script type="module" src="/voice/app.js"></script>"#));
    }

    #[test]
    fn locally_the_socket_is_the_stand_in_at_the_api_base_url() {
        let page = render(&config(&[
            (VOICE_PAGE, "local"),
            (LAYERCODE_AGENT_ID, "local_agent"),
            (LAYERCODE_API_BASE_URL, "http://127.0.0.1:4321/"),
        ]))
        .unwrap();
        assert!(page
            .html
            .contains(r#"data-socket-url="ws://127.0.0.1:4321/v1/agents/web/websocket""#));
        assert!(page.html.contains(r#"data-mode="local""#));
        let csp = &page.content_security_policy;
        assert!(
            csp.contains("connect-src 'self' ws://127.0.0.1:4321;"),
            "{csp}"
        );
        assert!(!csp.contains("layercode.com") && !csp.contains("wasm-unsafe-eval"));
    }

    #[test]
    fn socket_urls_follow_the_scheme_and_refuse_odd_bases() {
        assert_eq!(
            local_socket_url("https://lc.example:8443").as_deref(),
            Some("wss://lc.example:8443/v1/agents/web/websocket")
        );
        for bad in [
            "ftp://x",
            "http://",
            "http://a b",
            "http://x/path",
            "http://x\"y",
        ] {
            assert_eq!(local_socket_url(bad), None, "{bad:?}");
        }
        let off = config(&[(VOICE_PAGE, "local"), (LAYERCODE_API_BASE_URL, "ftp://x")]);
        assert_eq!(render(&off), None, "local without a usable stand-in URL");
    }

    #[test]
    fn settings_are_escaped_into_the_attributes() {
        let page = render(&config(&[
            (VOICE_PAGE, "on"),
            (LAYERCODE_AGENT_ID, r#""><script>alert('x')</script>"#),
        ]))
        .unwrap();
        assert!(page.html.contains(
            r#"data-agent-id="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;""#
        ));
        assert_eq!(page.html.matches("<script").count(), 1);
    }
}

//! Whose conversation it is: `/authorize` resumes a conversation only for the caller that
//! started it, so knowing a conversation id is not enough to read its history back through the
//! agent (issue 22).
//!
//! By default the caller is a browser, and the proof is a cookie: when `/authorize` answers a
//! new conversation it sets `__Host-lc_conversation_<16 hex>` (one cookie per conversation, the
//! name from a hash of the id) holding the HMAC-SHA256 of the conversation id under
//! `CONVERSATION_COOKIE_SECRET`; `HttpOnly` (no script reads it), `Secure`, `SameSite=Strict`
//! (never sent from another site), `Path=/`, kept as long as the conversation is. A request
//! naming a conversation without that proof is refused before Layercode is called: whether or
//! not we store anything for it, since Layercode only resumes ids it issued, and a conversation
//! not stored yet (or expired) is no less someone's. The proof is stateless: no lookup.
//!
//! A deployment with its own login says who is calling in [`caller`] (by default, the header
//! named by `CONVERSATION_OWNER_HEADER`, set by its proxy); then a conversation belongs to that
//! user, whatever the browser: the conversation's object records a keyed digest of the user when
//! the conversation starts and is asked for it when it is resumed.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use worker::{Env, Request};

use crate::config::Config;
use crate::conversation::ConversationClient;
use crate::error::AppError;

type HmacSha256 = Hmac<Sha256>;

/// Every conversation cookie's name starts so; `__Host-` makes browsers refuse it unless it is
/// `Secure`, has `Path=/` and no `Domain`, so no sibling subdomain can set one.
pub const COOKIE_PREFIX: &str = "__Host-lc_conversation_";
/// Browsers keep a cookie at most 400 days (RFC 6265bis), whatever `Max-Age` says.
const MAX_COOKIE_AGE_SECS: u64 = 400 * 24 * 60 * 60;
/// The answer to a resume without proof; the same whether or not the conversation exists.
const NOT_YOURS: &str = "this conversation was not started here: start a new one";
/// The answer to a request without the user header, when conversations belong to users.
const SIGN_IN: &str = "a signed-in user is required (see CONVERSATION_OWNER_HEADER)";
/// The answer to any resume while `CONVERSATION_COOKIE_SECRET` is not set.
const RESUME_OFF: &str =
    "resuming a conversation is off: the server has no CONVERSATION_COOKIE_SECRET";

/// Who is calling `/authorize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A browser, known only by the cookies it keeps.
    Browser,
    /// A user the deployment's own login vouches for.
    User(String),
}

/// Who is calling: the one place where a deployment with its own login puts its user identity
/// in place of the cookie. By default the value of the header named by
/// `CONVERSATION_OWNER_HEADER`, which only a proxy in front of the worker may set (a client
/// reaching the worker directly could set it too, so use it only behind one). Replace the body
/// to check your own session or token instead, returning `Caller::User(id)`.
pub fn caller(req: &Request, config: &Config) -> Result<Caller, AppError> {
    let Some(header) = config.conversation_owner_header.as_deref() else {
        return Ok(Caller::Browser);
    };
    match req.headers().get(header).ok().flatten() {
        Some(user) if !user.trim().is_empty() => Ok(Caller::User(user.trim().to_string())),
        _ => Err(AppError::Forbidden(SIGN_IN.to_string())),
    }
}

/// Refuses to resume `conversation_id` unless the caller proves it is theirs: the cookie, or
/// the user its object recorded. Without `CONVERSATION_COOKIE_SECRET` every resume is refused.
pub async fn check_resume(
    req: &Request,
    env: &Env,
    config: &Config,
    caller: &Caller,
    conversation_id: &str,
) -> Result<(), AppError> {
    let Some(secret) = config.conversation_cookie_secrets.first() else {
        return Err(AppError::Forbidden(RESUME_OFF.to_string()));
    };
    let proven = match caller {
        Caller::Browser => {
            let cookies = req.headers().get("cookie").ok().flatten();
            cookie_proves(
                cookies.as_deref(),
                &config.conversation_cookie_secrets,
                conversation_id,
            )
        }
        Caller::User(user) => {
            let client = ConversationClient::new(env, conversation_id)?;
            client.owned_by(&owner_digest(secret, user), false).await?
        }
    };
    if proven {
        Ok(())
    } else {
        Err(AppError::Forbidden(NOT_YOURS.to_string()))
    }
}

/// After Layercode granted a session on `conversation_id`: the browser's cookie (set again on a
/// resume, so it lasts as long as the conversation is used), or, for a new conversation of a
/// signed-in user, its owner recorded in the conversation's object. `None`: no cookie to set.
pub async fn grant(
    env: &Env,
    config: &Config,
    caller: &Caller,
    conversation_id: &str,
    new: bool,
) -> Result<Option<String>, AppError> {
    let Some(secret) = config.conversation_cookie_secrets.first() else {
        return Ok(None);
    };
    match caller {
        Caller::Browser => Ok(Some(set_cookie(
            secret,
            conversation_id,
            config.conversation_ttl_ms,
        ))),
        Caller::User(user) if new => {
            let client = ConversationClient::new(env, conversation_id)?;
            // Layercode issued a fresh id; one already owned by someone else is not handed over.
            if client.owned_by(&owner_digest(secret, user), true).await? {
                Ok(None)
            } else {
                Err(AppError::Forbidden(NOT_YOURS.to_string()))
            }
        }
        Caller::User(_) => Ok(None),
    }
}

/// How `/health` describes resuming: by cookie, by the owner header, or refused (and why).
pub fn resume_report(config: &Config) -> &'static str {
    match (
        config.conversation_cookie_secrets.is_empty(),
        config.conversation_owner_header.is_some(),
    ) {
        (true, _) => "refused: CONVERSATION_COOKIE_SECRET is not set",
        (false, false) => "cookie",
        (false, true) => "owner_header",
    }
}

/// The cookie's name for a conversation: the prefix and 16 hex digits of the id's SHA-256, so
/// any id (up to 256 bytes of anything) makes a short, valid name.
pub fn cookie_name(conversation_id: &str) -> String {
    let digest = Sha256::digest(conversation_id.as_bytes());
    format!("{COOKIE_PREFIX}{}", hex::encode(&digest[..8]))
}

/// The `Set-Cookie` value proving this browser started `conversation_id`, kept for the
/// retention period (`0`, forever: as long as browsers keep cookies).
pub fn set_cookie(secret: &str, conversation_id: &str, ttl_ms: u64) -> String {
    let max_age = match ttl_ms / 1000 {
        0 => MAX_COOKIE_AGE_SECS,
        secs => secs.min(MAX_COOKIE_AGE_SECS),
    };
    format!(
        "{}={}; Max-Age={max_age}; Path=/; Secure; HttpOnly; SameSite=Strict",
        cookie_name(conversation_id),
        hex::encode(proof(secret, conversation_id))
    )
}

/// Whether a `Cookie` header holds the proof for `conversation_id` under one of `secrets`,
/// compared in constant time.
pub fn cookie_proves(
    cookie_header: Option<&str>,
    secrets: &[String],
    conversation_id: &str,
) -> bool {
    let name = cookie_name(conversation_id);
    let Some(value) = cookie_header.and_then(|header| {
        header
            .split(';')
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.trim())
    }) else {
        return false;
    };
    let mut presented = [0u8; 32];
    if hex::decode_to_slice(value, &mut presented).is_err() {
        return false;
    }
    secrets.iter().any(|secret| {
        keyed(secret, "conversation:", conversation_id)
            .is_some_and(|mac| mac.verify_slice(&presented).is_ok())
    })
}

/// What an object records of its conversation's user: a keyed digest, so a leaked store names
/// nobody.
pub fn owner_digest(secret: &str, user: &str) -> String {
    hex::encode(finish(keyed(secret, "owner:", user)))
}

fn proof(secret: &str, conversation_id: &str) -> [u8; 32] {
    finish(keyed(secret, "conversation:", conversation_id))
}

fn finish(mac: Option<HmacSha256>) -> [u8; 32] {
    mac.map(|mac| mac.finalize().into_bytes().into())
        .unwrap_or_default()
}

/// HMAC-SHA256 of `purpose` and `text` under `secret`; the purpose keeps the cookie's and the
/// owner's MACs apart.
fn keyed(secret: &str, purpose: &str, text: &str) -> Option<HmacSha256> {
    // HMAC takes keys of any length, so this never fails; stay panic-free anyway.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(purpose.as_bytes());
    mac.update(text.as_bytes());
    Some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "cookie_secret";

    /// The `name=value` part of a `Set-Cookie` value, as a browser sends it back.
    fn sent_back(set_cookie: &str) -> String {
        set_cookie.split(';').next().unwrap().to_string()
    }

    #[test]
    fn the_cookie_is_scoped_and_kept_as_long_as_the_conversation() {
        let day_ms = 24 * 60 * 60 * 1000;
        let cookie = set_cookie(SECRET, "lc_conv_1", 30 * day_ms);
        let (pair, attributes) = cookie.split_once("; ").unwrap();
        let (name, value) = pair.split_once('=').unwrap();
        assert_eq!(name, cookie_name("lc_conv_1"));
        assert!(
            name.starts_with("__Host-lc_conversation_") && name.len() == 23 + 16,
            "{name}"
        );
        assert_eq!(value.len(), 64);
        assert!(value.bytes().all(|b| b.is_ascii_hexdigit()), "{value}");
        assert_eq!(
            attributes,
            "Max-Age=2592000; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        // Forever, or longer than browsers keep cookies: 400 days.
        for ttl_ms in [0, 1000 * day_ms] {
            assert!(set_cookie(SECRET, "c", ttl_ms).contains("; Max-Age=34560000;"));
        }
        // Any id makes a short, valid name; different ids, different names.
        let long = "x".repeat(256);
        assert_eq!(cookie_name(&long).len(), 39);
        assert_ne!(cookie_name("a"), cookie_name("b"));
        assert_eq!(cookie_name("a;b=c\u{1F600}").len(), 39);
    }

    #[test]
    fn only_the_cookie_of_that_conversation_under_our_secret_proves_it() {
        let secrets = vec![SECRET.to_string()];
        let mine = sent_back(&set_cookie(SECRET, "lc_conv_1", 0));
        let other = sent_back(&set_cookie(SECRET, "lc_conv_2", 0));
        let forged = sent_back(&set_cookie("another secret", "lc_conv_1", 0));
        let name = cookie_name("lc_conv_1");
        let cases: [(Option<String>, bool); 10] = [
            (Some(mine.clone()), true),
            (Some(format!("theme=dark; {mine}; lang=en")), true),
            (Some(format!("{other}; {mine}")), true),
            (None, false),
            (Some(String::new()), false),
            (Some(other.clone()), false),
            (Some(forged), false),
            // The right name with a value that is not the proof.
            (Some(format!("{name}=")), false),
            (
                Some(format!("{name}=zz{}", &mine[mine.len() - 62..])),
                false,
            ),
            (Some(format!("{name}={}", "0".repeat(64))), false),
        ];
        for (header, expected) in cases {
            assert_eq!(
                cookie_proves(header.as_deref(), &secrets, "lc_conv_1"),
                expected,
                "{header:?}"
            );
        }
    }

    #[test]
    fn a_rotated_secret_still_proves_cookies_it_signed() {
        let old = sent_back(&set_cookie("old", "lc_conv_1", 0));
        let new = sent_back(&set_cookie("new", "lc_conv_1", 0));
        let rotated = vec!["new".to_string(), "old".to_string()];
        assert!(cookie_proves(Some(&old), &rotated, "lc_conv_1"));
        assert!(cookie_proves(Some(&new), &rotated, "lc_conv_1"));
        assert!(!cookie_proves(
            Some(&old),
            &["new".to_string()],
            "lc_conv_1"
        ));
        assert!(!cookie_proves(Some(&new), &[], "lc_conv_1"));
    }

    #[test]
    fn owner_digests_name_nobody_and_differ_by_user_and_secret() {
        let alice = owner_digest(SECRET, "alice@example.com");
        assert_eq!(alice.len(), 64);
        assert!(!alice.contains("alice"));
        assert_eq!(alice, owner_digest(SECRET, "alice@example.com"));
        assert_ne!(alice, owner_digest(SECRET, "bob@example.com"));
        assert_ne!(alice, owner_digest("other", "alice@example.com"));
        // Never the conversation cookie's value for the same text.
        assert_ne!(alice, hex::encode(proof(SECRET, "alice@example.com")));
    }

    #[test]
    fn health_says_how_conversations_are_resumed() {
        let config = |pairs: &[(&str, &str)]| {
            Config::from_lookup(|name| {
                pairs
                    .iter()
                    .find(|(key, _)| *key == name)
                    .map(|(_, value)| value.to_string())
            })
        };
        assert_eq!(
            resume_report(&config(&[])),
            "refused: CONVERSATION_COOKIE_SECRET is not set"
        );
        assert_eq!(
            resume_report(&config(&[("CONVERSATION_OWNER_HEADER", "X-User")])),
            "refused: CONVERSATION_COOKIE_SECRET is not set"
        );
        let secret = ("CONVERSATION_COOKIE_SECRET", "s");
        assert_eq!(resume_report(&config(&[secret])), "cookie");
        assert_eq!(
            resume_report(&config(&[secret, ("CONVERSATION_OWNER_HEADER", "X-User")])),
            "owner_header"
        );
    }
}

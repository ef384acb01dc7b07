//! The Worker's side of the hop: a typed client of one conversation's Durable Object.

use worker::js_sys::Uint8Array;
use worker::web_sys::{self, AbortSignal};
use worker::{Env, Method, Response};

use super::{
    EraseReply, ReadReply, Route, BINDING, OWNER_CHECK_PATH, OWNER_CLAIM_PATH, TRANSCRIPT_PATH,
};
use crate::store::Transcript;

/// Calls one conversation's Durable Object.
pub struct ConversationClient {
    stub: worker::Stub,
}

impl ConversationClient {
    pub fn new(env: &Env, conversation_id: &str) -> worker::Result<Self> {
        let stub = env.durable_object(BINDING)?.get_by_name(conversation_id)?;
        Ok(ConversationClient { stub })
    }

    /// Hands a verified webhook body to the object; its response goes back to Layercode as is.
    /// `caller` is the signal of Layercode's request: when Layercode hangs up (barge-in) the
    /// object's request is aborted too, so the turn notices at once.
    pub async fn forward(
        &self,
        route: Route,
        raw_body: &[u8],
        caller: &AbortSignal,
    ) -> worker::Result<Response> {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&Uint8Array::from(raw_body));
        init.set_signal(Some(caller));
        // The host is never resolved; the stub routes the request to the object.
        let url = format!("https://conversation{}", route.path());
        let request = web_sys::Request::new_with_str_and_init(&url, &init)?;
        self.stub.fetch_with_request(request.into()).await
    }

    /// Everything stored, or `None` for a conversation that does not exist (or expired).
    pub async fn read(&self) -> worker::Result<Option<Transcript>> {
        let reply: ReadReply = self.call_transcript(Method::Get).await?;
        Ok(reply.transcript)
    }

    /// Erases the conversation now; false if nothing was stored.
    pub async fn erase(&self) -> worker::Result<bool> {
        let reply: EraseReply = self.call_transcript(Method::Delete).await?;
        Ok(reply.erased)
    }

    /// Whether the user of this digest owns the conversation; with `claim`, a conversation
    /// without an owner (a new one) becomes theirs first.
    pub async fn owned_by(&self, owner_digest: &str, claim: bool) -> worker::Result<bool> {
        let path = if claim {
            OWNER_CLAIM_PATH
        } else {
            OWNER_CHECK_PATH
        };
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&owner_digest.into());
        let url = format!("https://conversation{path}");
        let request = crate::upstream::request(&url, &init)?;
        let response = self.stub.fetch_with_request(request).await?;
        match response.status_code() {
            204 => Ok(true),
            403 => Ok(false),
            status => Err(worker::Error::RustError(format!(
                "conversation store answered {status} to an owner check"
            ))),
        }
    }

    async fn call_transcript<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
    ) -> worker::Result<T> {
        let init = web_sys::RequestInit::new();
        init.set_method(method.as_ref());
        let url = format!("https://conversation{TRANSCRIPT_PATH}");
        let request = crate::upstream::request(&url, &init)?;
        let mut response = self.stub.fetch_with_request(request).await?;
        if response.status_code() != 200 {
            let detail = response.text().await.unwrap_or_default();
            return Err(worker::Error::RustError(format!(
                "conversation store answered {}: {detail}",
                response.status_code()
            )));
        }
        let text = response.text().await?;
        // `from_slice`, not `from_str` (here and elsewhere): the wasm then holds one copy of
        // serde_json's parser, not a second one for `StrRead` (about 2 KB gzipped).
        serde_json::from_slice(text.as_bytes()).map_err(|_| unreadable_transcript())
    }
}

/// serde's message can quote a value, here a caller's words: it must not reach the log.
fn unreadable_transcript() -> worker::Error {
    worker::Error::RustError("the conversation store's transcript did not parse".into())
}

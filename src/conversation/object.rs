//! The Durable Object: one per conversation. Its routes hand a turn to `turn`, a `session.end`
//! and the transcript requests to the store; its alarm applies the retention period
//! (`retention::decide`).

use std::rc::Rc;

use worker::{console_log, durable_object, DurableObject, Env, Method, Request, Response, State};

use super::{EraseReply, ReadReply, Route, OWNER_CHECK_PATH, OWNER_CLAIM_PATH, TRANSCRIPT_PATH};
use crate::config::Config;
use crate::layercode::events::{self, WebhookEvent};
use crate::retention::{self, Decision};
use crate::store::{unix_ms, SessionRecord, Store};
use crate::turn;

/// One conversation: its rows, and the turns that read and write them.
#[durable_object]
pub struct Conversation {
    /// Shared with the retention alarm, which every `Store` clone can arm.
    state: Rc<State>,
    store: Store,
    /// Read once per object instance: settings do not change while it lives.
    config: Rc<Config>,
}

impl DurableObject for Conversation {
    fn new(state: State, env: Env) -> Self {
        // No schema here: the tables are created by the first write (`Store::ensure_schema`).
        let state = Rc::new(state);
        let config = Config::from_env(&env);
        let store = Store::new(Rc::clone(&state), config.conversation_ttl_ms);
        Conversation {
            state,
            store,
            config,
        }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if req.path() == TRANSCRIPT_PATH {
            return match req.method() {
                Method::Get => self.read_response(),
                Method::Delete => self.erase_response().await,
                _ => Response::error("method not allowed", 405),
            };
        }
        let claim = req.path() == OWNER_CLAIM_PATH;
        if claim || req.path() == OWNER_CHECK_PATH {
            let digest = req.text().await?;
            return match self.store.owned_by(&digest, claim) {
                Ok(true) => Ok(Response::empty()?.with_status(204)),
                Ok(false) => Response::error("not the owner", 403),
                Err(e) => Response::error(format!("storage error: {e}"), 500),
            };
        }
        let Some(route) = Route::from_path(&req.path()) else {
            return Response::error("unknown conversation route", 404);
        };
        // Read the body before answering: workerd cannot read it once a response was sent.
        let raw = req.bytes().await?;
        // Aborts when the Worker's request is cancelled: Layercode hung up (barge-in).
        let signal = req.inner().signal();
        let event = match events::parse(&raw) {
            Ok(event) => event,
            Err(e) => return Response::error(format!("bad event: {e}"), 400),
        };
        // Schema problems surface from the first write, as that write's storage error.
        let store = self.store.clone();
        match (route, event) {
            (Route::Message, WebhookEvent::Message(message)) => {
                turn::start_message(store, self.config.clone(), message, signal)
            }
            (Route::SessionStart, WebhookEvent::SessionStart(start)) => {
                turn::start_welcome(store, self.config.clone(), start, signal)
            }
            (Route::SessionEnd, WebhookEvent::SessionEnd(end)) => {
                match store.end_session(&SessionRecord::from_event(&end, unix_ms())) {
                    Ok(()) => Response::from_json(&serde_json::json!({ "status": "ok" })),
                    Err(e) => Response::error(format!("storage error: {e}"), 500),
                }
            }
            _ => Response::error("event does not match the route", 400),
        }
    }

    async fn alarm(&self) -> worker::Result<Response> {
        let activity = self.store.activity()?;
        let decision = retention::decide(unix_ms(), self.config.conversation_ttl_ms, activity);
        let action = match decision {
            Decision::KeepForever => {
                self.store.alarm_spent();
                "kept"
            }
            Decision::Erase if activity.last_active_ms.is_none() => {
                self.store.alarm_spent();
                "nothing_stored"
            }
            Decision::Erase => {
                self.store.erase().await?;
                "expired"
            }
            Decision::CheckAgainIn(ms) => {
                self.state.storage().set_alarm(ms).await?;
                "rearmed"
            }
        };
        self.log_retention(action);
        Response::ok("")
    }
}

impl Conversation {
    fn read_response(&self) -> worker::Result<Response> {
        match self.store.read() {
            Ok(transcript) => Response::from_json(&ReadReply { transcript }),
            Err(e) => Response::error(format!("storage error: {e}"), 500),
        }
    }

    async fn erase_response(&self) -> worker::Result<Response> {
        match self.store.erase().await {
            Ok(erased) => Response::from_json(&EraseReply { erased }),
            Err(e) => Response::error(format!("storage error: {e}"), 500),
        }
    }

    /// One line per alarm: the conversation and what happened, never its content.
    fn log_retention(&self, action: &str) {
        let id = self.state.id();
        let line = serde_json::json!({
            "event": "retention",
            "conversation_id": id.name(),
            "object_id": id.to_string(),
            "action": action,
        });
        console_log!("{line}");
    }
}

//! The store: one conversation's SQLite (in its Durable Object), and what its running turns
//! have sent so far.
//!
//! Each method is a run of synchronous `exec` calls with no `.await` between them, which the
//! runtime applies atomically. The tables are created by the first write (so reading an unknown
//! id stores nothing); every write also records the time of last activity and arms the
//! retention alarm once per object instance.
//!
//! * `turns`: begin a turn (dedupe, interruption clamp, history window), commit its start, store
//!   what was heard; `welcome`: the greeting of `session.start`;
//! * `transcript`: what the conversations API reads, and the `session.end` records;
//! * `tool_calls`: the calls later turns are reminded of (`tools::memory`);
//! * `summary`: the running summary of a long call (`summary`), at most one call at a time;
//! * `activity`: the last activity, the retention alarm and erasure; `schema`: the tables;
//! * `owner`: the signed-in user a conversation belongs to, when the deployment has a login.
//!
//! May import: `layercode` and leaves (see `tests/layers.rs`); never the engine or a model.

mod activity;
mod owner;
mod schema;
mod summary;
mod tool_calls;
mod transcript;
mod turns;
mod welcome;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use serde::Deserialize;
use worker::{SqlStorage, SqlStorageValue, State};

use crate::history::Role;
use activity::RetentionAlarm;
use summary::SummaryState;
pub use summary::{Saved, SummaryJob};
pub use transcript::{SessionRecord, StoredMessage, Transcript};
pub use turns::{Begun, StartWrites, TurnStart};
pub use welcome::welcome_key;

/// The conversation's SQL, and what its running turns have sent so far. Cloning is cheap
/// (handles), so a turn can own one.
#[derive(Clone)]
pub struct Store {
    sql: SqlStorage,
    /// Text sent so far by each turn still running in this object, by `turn_id`: what an
    /// interruption context is checked against while the reply's row is still pending.
    in_flight: Rc<RefCell<HashMap<String, Rc<RefCell<String>>>>>,
    /// The tables exist. Shared by every clone: created lazily, gone again after an erase.
    schema_ready: Rc<Cell<bool>>,
    alarm: Rc<RetentionAlarm>,
    /// Erasures of this object instance, so a summary planned before one is never written after.
    erasures: Rc<Cell<u32>>,
    summary: Rc<RefCell<SummaryState>>,
}

impl Store {
    /// The store of the object whose `state` this is, with a retention period of `ttl_ms`
    /// (`0` sets no alarm). Creates nothing: the tables come with the first write.
    pub fn new(state: Rc<State>, ttl_ms: u64) -> Self {
        Store {
            sql: state.storage().sql(),
            in_flight: Rc::default(),
            schema_ready: Rc::new(Cell::new(false)),
            alarm: Rc::new(RetentionAlarm::new(state, ttl_ms)),
            erasures: Rc::default(),
            summary: Rc::default(),
        }
    }

    /// The rows of a query that builds them as one JSON array in a column `rows`
    /// (`json_group_array`): one value to cross into wasm and one serde_json parse, instead of
    /// a JS object per row converted field by field.
    pub(super) fn json_rows<T: serde::de::DeserializeOwned>(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> worker::Result<Vec<T>> {
        let json: Vec<JsonRows> = self.sql.exec(query, bindings)?.rows()?;
        match json.first() {
            Some(json) => Ok(serde_json::from_slice(json.rows.as_bytes())?),
            None => Ok(Vec::new()),
        }
    }

    /// The message rows a query builds as [`MessageRow`]s, in the order they were stored.
    fn message_rows(
        &self,
        query: &str,
        bindings: Vec<SqlStorageValue>,
    ) -> worker::Result<Vec<MessageRow>> {
        let mut rows: Vec<MessageRow> = self.json_rows(query, bindings)?;
        rows.sort_by_key(|row| row.seq);
        Ok(rows)
    }

    pub(super) fn count(&self, query: &str, turn_id: &str) -> worker::Result<i64> {
        // `rows` rather than `one`: `one` on zero rows hangs the request.
        let rows: Vec<Count> = self.sql.exec(query, vec![turn_id.into()])?.rows()?;
        Ok(rows.first().map_or(0, |row| row.n))
    }
}

#[derive(Deserialize)]
struct Count {
    n: i64,
}

#[derive(Deserialize)]
struct JsonRows {
    rows: String,
}

#[derive(Deserialize)]
struct TextRow {
    text: String,
}

/// A stored message as `json_object('seq', seq, 'role', role, 'text', text)` gives it.
#[derive(Deserialize)]
struct MessageRow {
    seq: i64,
    /// Only where the query selects it: the history reads it to find a reply still running.
    #[serde(default)]
    turn_id: String,
    role: String,
    text: String,
}

impl MessageRow {
    fn role_of(role: &str) -> Role {
        match role {
            "user" => Role::User,
            _ => Role::Assistant,
        }
    }
}

/// Milliseconds since the Unix epoch, as stored (SQLite integers are `i64`). Not the engine's
/// `Clock::now_ms`, which is on any monotonic origin.
pub fn unix_ms() -> i64 {
    // `Date.now()`, not `new Date()`: no object per call.
    worker::js_sys::Date::now() as i64
}

/// A cursor's rows as `T`, through JSON: `JSON.stringify` in JS, then serde_json, which the wasm
/// has anyway. `SqlCursor::to_array` would convert them with serde_wasm_bindgen, a second
/// deserialiser with its own copy of each row type's `Deserialize` (about 5 KB of the gzipped
/// wasm). SQLite values are numbers, strings and nulls, which JSON carries as they are; a REAL
/// goes through its shortest decimal form, read back exactly when that has at most 15
/// significant digits and a power of ten within ±22 (as when the Worker parses this object's
/// JSON replies).
trait Rows {
    fn rows<T: serde::de::DeserializeOwned>(self) -> worker::Result<Vec<T>>;
}

impl Rows for worker::SqlCursor {
    fn rows<T: serde::de::DeserializeOwned>(self) -> worker::Result<Vec<T>> {
        let rows = worker::js_sys::Array::new();
        for row in self {
            rows.push(&row?);
        }
        let json = String::from(worker::js_sys::JSON::stringify(&rows)?);
        Ok(serde_json::from_slice(json.as_bytes())?)
    }
}

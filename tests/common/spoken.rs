//! What the worker says in its own words, as the caller hears it. Written here once (not taken
//! from the library) so that the tests pin the text: a changed apology fails them.

/// Spoken when the model fails before saying anything (stored as the failed reply).
pub const APOLOGY_BEFORE: &str =
    "Sorry, I'm having trouble answering right now. Could you say that again in a moment?";
/// Spoken when the model fails part-way through a reply.
pub const APOLOGY_MID: &str = "Sorry, I lost my train of thought there.";
/// Spoken when a reply is cut short (`TURN_MAX_MS`, `REPLY_MAX_CHARS`, a policy stop).
pub const CLOSE_AFTER_CUT: &str = "I'll stop there.";
/// The user turn Gemini is given first when the window starts with the agent.
pub const CALL_STARTED_BRIDGE: &str = "(The caller joined the call.)";
/// Said once in a round of tool calls that has taken longer than 2 s.
pub const STILL_CHECKING: &str = "Still checking, thanks for waiting.";

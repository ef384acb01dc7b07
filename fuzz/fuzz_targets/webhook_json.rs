//! `events::parse` never panics on any body, and an accepted `message` always has a non-blank
//! `turn_id` (and a non-blank `conversation_id`; every id at most 256 bytes): the contract the
//! webhook handler relies on. Its `text` may be blank: that turn just gets `response.end`.
#![no_main]

use layercode_gemini_worker::layercode::events::{parse, WebhookEvent};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = parse(data) else {
        return;
    };
    let _ = event.kind();
    match &event {
        WebhookEvent::Message(message) => {
            assert!(!message.turn_id.trim().is_empty(), "{message:?}");
            assert!(message.turn_id.len() <= 256, "{message:?}");
            assert!(!message.conversation_id.trim().is_empty(), "{message:?}");
            assert!(message.conversation_id.len() <= 256, "{message:?}");
            if let Some(context) = &message.interruption_context {
                let _ = context.applies();
            }
        }
        WebhookEvent::SessionStart(start) => {
            assert!(!start.conversation_id.trim().is_empty(), "{start:?}");
            assert!(start.conversation_id.len() <= 256, "{start:?}");
            assert!(start.turn_id.as_ref().is_none_or(|t| t.len() <= 256), "{start:?}");
            assert!(start.session_id.as_ref().is_none_or(|s| s.len() <= 256), "{start:?}");
        }
        WebhookEvent::SessionEnd(end) => {
            assert!(!end.conversation_id.trim().is_empty(), "{end:?}");
            assert!(end.conversation_id.len() <= 256, "{end:?}");
        }
        _ => {}
    }
});

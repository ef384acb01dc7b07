//! A time zone's UTC offset, from the runtime: the wasm carries no time-zone database (one
//! would cost far more than the whole worker's size budget allows), and workerd's V8 has
//! `Intl.DateTimeFormat` with the IANA zones. Only the offset crosses over; the calendar is
//! `clock`'s, tested natively.

use wasm_bindgen::prelude::*;
use worker::js_sys::{Object, Reflect};

use super::clock::{local_time, parse_utc_offset, LocalTime};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = Intl, js_name = DateTimeFormat)]
    type DateTimeFormat;

    /// Throws a `RangeError` for a zone the runtime does not know: caught, never a trap.
    #[wasm_bindgen(constructor, js_namespace = Intl, js_class = "DateTimeFormat", catch)]
    fn new(locale: &str, options: &Object) -> Result<DateTimeFormat, JsValue>;

    /// `format` takes a number of milliseconds as well as a `Date`.
    #[wasm_bindgen(method, catch)]
    fn format(this: &DateTimeFormat, unix_ms: f64) -> Result<String, JsValue>;
}

/// How many minutes `time_zone` (an IANA name such as `Europe/Paris`) is ahead of UTC at
/// `unix_ms`; `None` for a name the runtime does not know. Only on the Workers runtime.
pub fn utc_offset_minutes(time_zone: &str, unix_ms: f64) -> Option<i32> {
    let options = Object::new();
    Reflect::set(&options, &"timeZone".into(), &time_zone.into()).ok()?;
    Reflect::set(&options, &"timeZoneName".into(), &"longOffset".into()).ok()?;
    let formatter = DateTimeFormat::new("en-US", &options).ok()?;
    parse_utc_offset(&formatter.format(unix_ms).ok()?)
}

/// Now (`Date.now()`) in `time_zone`; in UTC, with a line in the log each time, when the
/// runtime does not know the zone.
pub fn local_time_in(time_zone: &str) -> LocalTime {
    let now = worker::js_sys::Date::now();
    let offset = utc_offset_minutes(time_zone, now).unwrap_or_else(|| {
        worker::console_error!(
            "TIME_ZONE is not a zone the runtime knows: {{{{date}}}} and {{{{time}}}} are in UTC"
        );
        0
    });
    local_time(now, offset)
}

//! Checks a call's arguments against the tool's declared parameters before anything is called.
//!
//! The parameters are plain JSON Schema; this checks the part a voice tool relies on: `type`
//! (one name or a list), `properties`, `required`, `enum` and array `items`, nested to any depth.
//! Keywords it does not know are ignored (the model was shown them, the endpoint can check them).

use serde_json::{Map, Value};

/// `Ok` when `args` fit `schema`; otherwise one sentence for the model naming the first mismatch.
pub fn check(schema: &Value, args: &Value) -> Result<(), String> {
    check_at("args", schema, args)
}

fn check_at(path: &str, schema: &Value, value: &Value) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(()); // `true` or an empty schema: anything goes
    };
    if let Some(expected) = schema.get("type") {
        let names: Vec<&str> = match expected {
            Value::String(name) => vec![name.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !names.is_empty() && !names.iter().any(|name| has_type(value, name)) {
            return Err(format!(
                "{path} must be {}, not {}",
                names.join(" or "),
                type_of(value)
            ));
        }
    }
    if let Some(Value::Array(allowed)) = schema.get("enum") {
        if !allowed.contains(value) {
            let allowed: Vec<String> = allowed.iter().map(Value::to_string).collect();
            return Err(format!("{path} must be one of {}", allowed.join(", ")));
        }
    }
    if let Value::Object(fields) = value {
        check_object(path, schema, fields)?;
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (index, item) in items.iter().enumerate() {
            check_at(&format!("{path}[{index}]"), item_schema, item)?;
        }
    }
    Ok(())
}

fn check_object(
    path: &str,
    schema: &Map<String, Value>,
    fields: &Map<String, Value>,
) -> Result<(), String> {
    if let Some(Value::Array(required)) = schema.get("required") {
        for name in required.iter().filter_map(Value::as_str) {
            if !fields.contains_key(name) {
                return Err(format!("{path}.{name} is required"));
            }
        }
    }
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, field) in fields {
        match properties.and_then(|p| p.get(name)) {
            Some(field_schema) => check_at(&format!("{path}.{name}"), field_schema, field)?,
            None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                return Err(format!("{path}.{name} is not a known parameter"));
            }
            None => {}
        }
    }
    Ok(())
}

fn has_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        // 3.0 is an integer in JSON Schema; models sometimes write whole numbers that way.
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0)
        }
        _ => true, // an unknown type name is not ours to enforce
    }
}

fn type_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "day": {"type": "string", "enum": ["today", "tomorrow"]},
                "party": {"type": "integer"},
                "price": {"type": "number"},
                "vip": {"type": "boolean"},
                "note": {"type": ["string", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "contact": {"type": "object", "properties": {"phone": {"type": "string"}},
                            "required": ["phone"]}
            },
            "required": ["city"]
        })
    }

    #[test]
    fn arguments_are_checked_table() {
        let cases: &[(Value, Result<(), &str>)] = &[
            (json!({"city": "Paris"}), Ok(())),
            (
                json!({"city": "Paris", "day": "today", "party": 4, "price": 9.5, "vip": true,
                       "note": null, "tags": ["a"], "contact": {"phone": "1"}, "extra": 1}),
                Ok(()),
            ),
            (json!({"city": "Paris", "party": 4.0}), Ok(())),
            (json!({}), Err("args.city is required")),
            (
                json!({"city": 7}),
                Err("args.city must be string, not a number"),
            ),
            (
                json!({"city": "Paris", "day": "monday"}),
                Err(r#"args.day must be one of "today", "tomorrow""#),
            ),
            (
                json!({"city": "Paris", "party": 2.5}),
                Err("args.party must be integer, not a number"),
            ),
            (
                json!({"city": "Paris", "price": "9"}),
                Err("args.price must be number, not a string"),
            ),
            (
                json!({"city": "Paris", "vip": "yes"}),
                Err("args.vip must be boolean, not a string"),
            ),
            (
                json!({"city": "Paris", "note": 1}),
                Err("args.note must be string or null, not a number"),
            ),
            (
                json!({"city": "Paris", "tags": ["a", 2]}),
                Err("args.tags[1] must be string, not a number"),
            ),
            (
                json!({"city": "Paris", "contact": {}}),
                Err("args.contact.phone is required"),
            ),
            (json!(["Paris"]), Err("args must be object, not an array")),
            (json!(null), Err("args must be object, not null")),
        ];
        for (args, expected) in cases {
            assert_eq!(
                check(&schema(), args),
                expected.map_err(str::to_string),
                "{args}"
            );
        }
    }

    #[test]
    fn closed_objects_refuse_unknown_fields() {
        let closed =
            json!({"type": "object", "properties": {"a": {}}, "additionalProperties": false});
        assert_eq!(check(&closed, &json!({"a": 1})), Ok(()));
        assert_eq!(
            check(&closed, &json!({"a": 1, "b": 2})),
            Err("args.b is not a known parameter".to_string())
        );
    }

    #[test]
    fn schemas_without_constraints_accept_anything() {
        assert_eq!(
            check(&json!({"type": "object"}), &json!({"x": [1]})),
            Ok(())
        );
        assert_eq!(check(&json!({}), &json!("anything")), Ok(()));
        assert_eq!(check(&json!({"type": "mystery"}), &json!(1)), Ok(()));
    }
}

//! Conversions between wire types (strings, `Timestamp`, `Struct`) and domain types, each
//! failing with a message fit for a field violation.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use prost_types::{ListValue, Struct, Timestamp, Value, value::Kind};
use serde::{Serialize, de::DeserializeOwned};
use uuid::Uuid;

use crate::error::{ApiError, Violations};

/// Parses a required UUID, recording a violation under `field` when it is missing or malformed.
pub fn required_id(violations: &mut Violations, field: &str, raw: &str) -> Option<Uuid> {
    if raw.is_empty() {
        violations.add(field, "is required");
        return None;
    }
    violations.check(field, parse_uuid(raw))
}

/// Parses an optional UUID: empty means absent.
pub fn optional_id(violations: &mut Violations, field: &str, raw: &str) -> Option<Option<Uuid>> {
    if raw.is_empty() {
        return Some(None);
    }
    violations.check(field, parse_uuid(raw)).map(Some)
}

/// Parses a single required id, for requests that carry nothing else.
pub fn parse_id(field: &str, raw: &str) -> Result<Uuid, ApiError> {
    let mut violations = Violations::new();
    let id = required_id(&mut violations, field, raw);
    violations.into_result()?;
    Ok(id.expect("a parsed id when no violation was recorded"))
}

fn parse_uuid(raw: &str) -> Result<Uuid, String> {
    Uuid::try_parse(raw).map_err(|_| format!("'{}' is not a valid UUID", truncate(raw, 64)))
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

pub fn opt_id_to_string(id: Option<Uuid>) -> String {
    id.map(|id| id.to_string()).unwrap_or_default()
}

pub fn timestamp(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        nanos: time.timestamp_subsec_nanos() as i32,
    }
}

pub fn opt_timestamp(time: Option<DateTime<Utc>>) -> Option<Timestamp> {
    time.map(timestamp)
}

pub fn from_timestamp(ts: &Timestamp) -> Result<DateTime<Utc>, String> {
    let nanos = u32::try_from(ts.nanos).map_err(|_| "nanos must not be negative".to_string())?;
    DateTime::from_timestamp(ts.seconds, nanos).ok_or_else(|| "timestamp out of range".to_string())
}

/// A protobuf `Struct` as a JSON object (`{}` when absent).
pub fn struct_to_json(value: Option<Struct>) -> serde_json::Value {
    match value {
        Some(s) => serde_json::Value::Object(
            s.fields
                .into_iter()
                .map(|(k, v)| (k, value_to_json(v)))
                .collect(),
        ),
        None => serde_json::Value::Object(Default::default()),
    }
}

fn value_to_json(value: Value) -> serde_json::Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
        Some(Kind::NumberValue(n)) => serde_json::Number::from_f64(n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Some(Kind::StringValue(s)) => serde_json::Value::String(s),
        Some(Kind::BoolValue(b)) => serde_json::Value::Bool(b),
        Some(Kind::StructValue(s)) => struct_to_json(Some(s)),
        Some(Kind::ListValue(l)) => {
            serde_json::Value::Array(l.values.into_iter().map(value_to_json).collect())
        }
    }
}

/// A JSON object as a protobuf `Struct`; other JSON values give an empty struct.
pub fn json_to_struct(value: &serde_json::Value) -> Struct {
    match value {
        serde_json::Value::Object(map) => Struct {
            fields: map
                .iter()
                .map(|(k, v)| (k.clone(), json_to_value(v)))
                .collect(),
        },
        _ => Struct::default(),
    }
}

fn json_to_value(value: &serde_json::Value) -> Value {
    let kind = match value {
        serde_json::Value::Null => Kind::NullValue(0),
        serde_json::Value::Bool(b) => Kind::BoolValue(*b),
        serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        serde_json::Value::String(s) => Kind::StringValue(s.clone()),
        serde_json::Value::Array(items) => Kind::ListValue(ListValue {
            values: items.iter().map(json_to_value).collect(),
        }),
        serde_json::Value::Object(_) => Kind::StructValue(json_to_struct(value)),
    };
    Value { kind: Some(kind) }
}

/// Largest JSON document accepted in a flexible field, in bytes once encoded.
pub const MAX_JSON_BYTES: usize = 64 * 1024;

/// A `Struct` field as JSON, recording a violation when it is too large.
pub fn bounded_json(
    violations: &mut Violations,
    field: &str,
    value: Option<Struct>,
) -> serde_json::Value {
    let json = struct_to_json(value);
    let text = json.to_string();
    if text.len() > MAX_JSON_BYTES {
        violations.add(field, format!("must be at most {MAX_JSON_BYTES} bytes"));
    }
    // jsonb cannot store NUL (serialized as \u0000).
    if text.contains("\\u0000") {
        violations.add(field, "must not contain NUL characters");
    }
    json
}

/// Page size bounds shared by every List RPC.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 500;

/// The effective page size of a request: 0 means the default, larger values are capped.
pub fn page_size(violations: &mut Violations, requested: i32) -> i64 {
    match requested {
        0 => DEFAULT_PAGE_SIZE,
        n if n < 0 => {
            violations.add("page_size", "must not be negative");
            DEFAULT_PAGE_SIZE
        }
        n => i64::from(n).min(MAX_PAGE_SIZE),
    }
}

/// The keyset position of lists ordered by (time, id) descending.
pub type TimePosition = (DateTime<Utc>, Uuid);

/// Decodes a page token of a (time, id) ordered list; empty means the first page.
pub fn decode_time_position(violations: &mut Violations, token: &str) -> Option<TimePosition> {
    let (micros, id): (i64, Uuid) = decode_page_token(violations, token)?;
    match DateTime::from_timestamp_micros(micros) {
        Some(time) => Some((time, id)),
        None => {
            violations.add("page_token", "is not a page token issued by this service");
            None
        }
    }
}

/// Splits a (time, id) ordered page fetched with one extra row into the page and the
/// next page token (empty on the last page).
pub fn paginate_by_time<T>(
    mut rows: Vec<T>,
    limit: i64,
    position: impl Fn(&T) -> TimePosition,
) -> (Vec<T>, String) {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if rows.len() > limit {
        rows.truncate(limit);
        let (time, id) = position(rows.last().expect("a non-empty page"));
        (rows, encode_page_token(&(time.timestamp_micros(), id)))
    } else {
        (rows, String::new())
    }
}

/// Encodes a keyset position as an opaque page token.
pub fn encode_page_token<T: Serialize>(position: &T) -> String {
    let json = serde_json::to_vec(position).expect("page positions serialize");
    URL_SAFE_NO_PAD.encode(json)
}

/// Decodes a page token; empty means the first page.
pub fn decode_page_token<T: DeserializeOwned>(
    violations: &mut Violations,
    token: &str,
) -> Option<T> {
    if token.is_empty() {
        return None;
    }
    let decoded = URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    if decoded.is_none() {
        violations.add("page_token", "is not a page token issued by this service");
    }
    decoded
}

/// The paths of an `update_mask`, each checked against the fields the RPC may change.
/// A missing or empty mask is a violation: updates never change fields by accident.
pub fn update_mask(
    violations: &mut Violations,
    mask: Option<prost_types::FieldMask>,
    allowed: &[&str],
) -> std::collections::HashSet<String> {
    let paths = mask.map(|m| m.paths).unwrap_or_default();
    if paths.is_empty() {
        violations.add(
            "update_mask",
            format!("is required; allowed paths: {}", allowed.join(", ")),
        );
    }
    for path in &paths {
        if !allowed.contains(&path.as_str()) {
            violations.add(
                "update_mask",
                format!(
                    "'{}' cannot be updated; allowed paths: {}",
                    truncate(path, 64),
                    allowed.join(", ")
                ),
            );
        }
    }
    paths.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_round_trips_through_json() {
        let json = serde_json::json!({"a": 1.5, "b": [true, null, "x"], "c": {"d": "e"}});
        assert_eq!(struct_to_json(Some(json_to_struct(&json))), json);
    }

    #[test]
    fn malformed_ids_are_violations() {
        let mut v = Violations::new();
        assert_eq!(required_id(&mut v, "id", "nope"), None);
        assert_eq!(required_id(&mut v, "other", ""), None);
        assert!(v.into_result().is_err());
    }

    #[test]
    fn page_tokens_round_trip_and_reject_garbage() {
        let mut v = Violations::new();
        let token = encode_page_token(&("x", 3));
        assert_eq!(
            decode_page_token::<(String, i32)>(&mut v, &token),
            Some(("x".into(), 3))
        );
        assert!(v.is_empty());
        assert_eq!(decode_page_token::<(String, i32)>(&mut v, "!!"), None);
        assert!(!v.is_empty());
    }
}

//! Validates Plaid request and response bodies against `tests/fixtures/plaid/openapi-subset.json`.
//!
//! The subset is OpenAPI 3.0, which is *almost* JSON Schema. Before compiling, each schema is
//! rewritten:
//! - `nullable: true` becomes `anyOf: [{"type": "null"}, <schema>]`. Wrapping (rather than
//!   adding `"null"` to `type`) also covers schemas without `type` (`allOf`, `$ref`) and enums
//!   that do not list `null` (e.g. `AccountSubtype`), which OpenAPI 3.0 still lets be null.
//! - boolean `exclusiveMinimum`/`exclusiveMaximum` (3.0 style) become the numeric 2020-12 form.
//!
//! `$ref`s resolve because every validator is compiled from a root document that carries the
//! whole converted `components` section. Formats (`date`, `date-time`) are checked; unknown ones
//! (`url`, `double`) are ignored. Validators are cached per schema.
//!
//! Panicking helpers (`validate_*`) are for tests; `*_errors` return the messages instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::Validator;
use serde_json::{Map, Value, json};

/// Keys whose values are data, not schemas, and must not be rewritten.
const DATA_KEYS: &[&str] = &["example", "examples", "enum", "default", "const"];

fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_str(crate::support::fixtures::OPENAPI_SUBSET).expect("the OpenAPI subset is JSON")
    })
}

fn components() -> &'static Value {
    static COMPONENTS: OnceLock<Value> = OnceLock::new();
    COMPONENTS.get_or_init(|| to_json_schema(&spec()["components"]))
}

/// Rewrites an OpenAPI 3.0 schema (recursively) into JSON Schema 2020-12.
fn to_json_schema(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, v) in map {
                let converted = if DATA_KEYS.contains(&key.as_str()) || key.starts_with("x-") {
                    v.clone()
                } else {
                    to_json_schema(v)
                };
                out.insert(key.clone(), converted);
            }
            for (flag, bound) in [("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")] {
                if let Some(Value::Bool(exclusive)) = out.get(flag).cloned() {
                    out.remove(flag);
                    if exclusive && let Some(limit) = out.remove(bound) {
                        out.insert(flag.to_owned(), limit);
                    }
                }
            }
            match out.remove("nullable") {
                Some(Value::Bool(true)) => json!({"anyOf": [{"type": "null"}, Value::Object(out)]}),
                Some(other) if !other.is_boolean() => {
                    // A property that happens to be named `nullable`: put it back.
                    out.insert("nullable".to_owned(), other);
                    Value::Object(out)
                }
                _ => Value::Object(out),
            }
        }
        other => other.clone(),
    }
}

/// A validator for `schema` (an OpenAPI schema object, usually a `$ref`), cached by `key`.
fn validator(key: &str, schema: &Value) -> Arc<Validator> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Validator>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(v) = cache.lock().unwrap().get(key) {
        return Arc::clone(v);
    }
    let root = json!({
        "allOf": [to_json_schema(schema)],
        "components": components(),
    });
    let compiled = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|err| panic!("schema {key} does not compile: {err}"));
    let compiled = Arc::new(compiled);
    cache
        .lock()
        .unwrap()
        .insert(key.to_owned(), Arc::clone(&compiled));
    compiled
}

fn errors_for(validator: &Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("at `{}`: {e}", e.instance_path))
        .collect()
}

fn operation(path: &str) -> &'static Value {
    let op = &spec()["paths"][path]["post"];
    assert!(op.is_object(), "{path} is not in the OpenAPI subset");
    op
}

fn json_schema_of(content_holder: &Value) -> &Value {
    &content_holder["content"]["application/json"]["schema"]
}

/// Schema errors for a response body of `path` with HTTP `status`. Non-2xx bodies are checked
/// against the `default` (PlaidError) response and must be an object with an `error_code`
/// (the nullable PlaidError schema alone would accept `null`).
pub fn response_errors(path: &str, status: u16, body: &Value) -> Vec<String> {
    let responses = &operation(path)["responses"];
    let key = status.to_string();
    let (key, response) = match responses.get(&key) {
        Some(r) => (key, r),
        None if (200..300).contains(&status) => {
            return vec![format!("{path} documents no {status} response")];
        }
        None => ("default".to_owned(), &responses["default"]),
    };
    let schema = json_schema_of(response);
    let mut errors = errors_for(&validator(&format!("{path} {key}"), schema), body);
    if key == "default" && !body["error_code"].is_string() {
        errors.push("error responses must be objects with an error_code".to_owned());
    }
    errors
}

/// Schema errors for a request body of `path`.
pub fn request_errors(path: &str, body: &Value) -> Vec<String> {
    let schema = json_schema_of(&operation(path)["requestBody"]);
    errors_for(&validator(&format!("{path} request"), schema), body)
}

/// Schema errors for `value` against `#/components/schemas/<name>` (e.g. a webhook body
/// against `SyncUpdatesAvailableWebhook`).
pub fn schema_errors(name: &str, value: &Value) -> Vec<String> {
    assert!(
        spec()["components"]["schemas"][name].is_object(),
        "schema {name} is not in the OpenAPI subset"
    );
    let schema = json!({"$ref": format!("#/components/schemas/{name}")});
    errors_for(&validator(&format!("schema {name}"), &schema), value)
}

fn check(what: &str, errors: Vec<String>, value: &Value) {
    assert!(
        errors.is_empty(),
        "{what} does not match the OpenAPI subset:\n  {}\nbody: {}",
        errors.join("\n  "),
        truncate(value)
    );
}

fn truncate(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 2_000 {
        format!("{}…", &text[..2_000])
    } else {
        text
    }
}

/// Panics unless `body` is a valid `status` response of `path`.
pub fn validate_response(path: &str, status: u16, body: &Value) {
    check(
        &format!("{status} response of {path}"),
        response_errors(path, status, body),
        body,
    );
}

/// Panics unless `body` is a valid request body for `path`.
pub fn validate_request(path: &str, body: &Value) {
    check(&format!("request to {path}"), request_errors(path, body), body);
}

/// Panics unless `value` matches `#/components/schemas/<name>`.
pub fn validate_schema(name: &str, value: &Value) {
    check(&format!("schema {name}"), schema_errors(name, value), value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_examples_validate_and_broken_bodies_do_not() {
        let example = &spec()["paths"]["/transactions/sync"]["post"]["responses"]["200"]["content"]["application/json"]
            ["examples"]["example-1"]["value"];
        validate_response("/transactions/sync", 200, example);

        let mut broken = example.clone();
        broken["added"][0]["amount"] = json!("72.10");
        broken["added"][0]["date"] = json!("24/09/2023");
        broken.as_object_mut().unwrap().remove("next_cursor");
        let errors = response_errors("/transactions/sync", 200, &broken);
        assert!(errors.len() >= 3, "expected 3+ errors, got {errors:?}");
    }

    #[test]
    fn openapi_nullable_fields_accept_null_and_reject_other_types() {
        let account = json!({
            "account_id": "a", "name": "n", "mask": null, "official_name": null,
            "type": "depository", "subtype": null,
            "balances": {"available": null, "current": 1.5, "limit": null,
                         "iso_currency_code": "USD", "unofficial_currency_code": null}
        });
        validate_schema("AccountBase", &account);
        let mut bad = account.clone();
        bad["mask"] = json!(1234);
        assert!(!schema_errors("AccountBase", &bad).is_empty());
        let mut bad = account;
        bad["subtype"] = json!("not-a-subtype");
        assert!(!schema_errors("AccountBase", &bad).is_empty());
    }

    #[test]
    fn openapi_requests_check_required_fields_and_bounds() {
        validate_request("/transactions/sync", &json!({"access_token": "t", "count": 500}));
        assert!(!request_errors("/transactions/sync", &json!({"count": 10})).is_empty());
        assert!(
            !request_errors("/transactions/sync", &json!({"access_token": "t", "count": 501})).is_empty()
        );
        assert!(!request_errors("/transactions/sync", &json!({"access_token": "t", "count": 0})).is_empty());
    }

    #[test]
    fn openapi_error_bodies_need_an_error_code() {
        let err = json!({"error_type": "API_ERROR", "error_code": "INTERNAL_SERVER_ERROR",
                         "error_message": "m", "display_message": null, "request_id": "r"});
        validate_response("/item/get", 500, &err);
        assert!(!response_errors("/item/get", 500, &Value::Null).is_empty());
        assert!(!response_errors("/item/get", 400, &json!({"error_type": "NOPE"})).is_empty());
    }
}

//! Parsing and validating Plaid API requests: content type, JSON body, credentials, fields.

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use serde_json::{Map, Value};

use crate::plaid_error::ApiError;

/// A parsed API request body.
pub(crate) struct ApiRequest {
    body: Map<String, Value>,
}

impl ApiRequest {
    /// Plaid answers `INVALID_BODY` both for a non-JSON content type and for a body that does
    /// not parse as a JSON object (PLAID.md §1).
    pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<ApiRequest, ApiError> {
        let is_json = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("application/json"));
        if !is_json {
            return Err(ApiError::code("INVALID_BODY"));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(body)) => Ok(ApiRequest { body }),
            _ => Err(ApiError::code("INVALID_BODY")),
        }
    }

    /// Credentials come from the `PLAID-CLIENT-ID`/`PLAID-SECRET` headers or the body's
    /// `client_id`/`secret`; missing or wrong both give `INVALID_API_KEYS`.
    pub(crate) fn authenticate(
        &self,
        headers: &HeaderMap,
        client_id: &str,
        secret: &str,
    ) -> Result<(), ApiError> {
        let pick = |header: &str, field: &str| -> Option<String> {
            headers
                .get(header)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .or_else(|| self.body.get(field)?.as_str().map(str::to_owned))
        };
        let ok = pick("plaid-client-id", "client_id").as_deref() == Some(client_id)
            && pick("plaid-secret", "secret").as_deref() == Some(secret);
        if ok {
            Ok(())
        } else {
            Err(ApiError::code("INVALID_API_KEYS"))
        }
    }

    /// `MISSING_FIELDS` listing every required field that is absent or null.
    pub(crate) fn require(&self, fields: &[&str]) -> Result<(), ApiError> {
        let missing: Vec<&str> = fields
            .iter()
            .copied()
            .filter(|f| self.body.get(*f).is_none_or(Value::is_null))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ApiError::missing_fields(&missing))
        }
    }

    pub(crate) fn has(&self, field: &str) -> bool {
        self.body.contains_key(field)
    }

    pub(crate) fn get(&self, field: &str) -> Option<&Value> {
        self.body.get(field).filter(|v| !v.is_null())
    }

    pub(crate) fn str(&self, field: &str) -> Result<Option<&str>, ApiError> {
        str_in(&self.body, field, field)
    }

    pub(crate) fn u64(&self, field: &str) -> Result<Option<u64>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(v) => v
                .as_u64()
                .map(Some)
                .ok_or_else(|| ApiError::invalid_field(format!("{field} must be a non-negative integer"))),
        }
    }

    pub(crate) fn object(&self, field: &str) -> Result<Option<&Map<String, Value>>, ApiError> {
        match self.get(field) {
            None => Ok(None),
            Some(Value::Object(map)) => Ok(Some(map)),
            Some(_) => Err(ApiError::invalid_field(format!("{field} must be an object"))),
        }
    }

    pub(crate) fn strings(&self, field: &str) -> Result<Option<Vec<String>>, ApiError> {
        strings_in(&self.body, field, field)
    }
}

/// A string field of a nested object; `path` names it in error messages.
pub(crate) fn str_in<'a>(
    map: &'a Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<&'a str>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid_field(format!("{path} must be a string"))),
    }
}

/// An array-of-strings field of a nested object.
pub(crate) fn strings_in(
    map: &Map<String, Value>,
    field: &str,
    path: &str,
) -> Result<Option<Vec<String>>, ApiError> {
    let invalid = || ApiError::invalid_field(format!("{path} must be an array of strings"));
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(invalid))
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(invalid()),
    }
}

/// A boolean field of a nested object.
pub(crate) fn bool_in(map: &Map<String, Value>, field: &str, path: &str) -> Result<Option<bool>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(_) => Err(ApiError::invalid_field(format!("{path} must be a boolean"))),
    }
}

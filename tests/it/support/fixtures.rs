//! Plaid's published schemas and example bodies, kept in `tests/fixtures/plaid/`
//! (its README says where they come from and how to refresh them). Compiled in,
//! so no test depends on the directory it runs from.

/// Plaid's OpenAPI 3.0 subset for the endpoints plaid-sync calls.
pub const OPENAPI_SUBSET: &str = include_str!("../../fixtures/plaid/openapi-subset.json");

/// The spec's example bodies, keyed by path (`/item/get`) or schema name.
pub const EXAMPLES: &str = include_str!("../../fixtures/plaid/examples.json");

/// [`EXAMPLES`] parsed.
pub fn examples() -> serde_json::Value {
    serde_json::from_str(EXAMPLES).expect("examples.json is JSON")
}

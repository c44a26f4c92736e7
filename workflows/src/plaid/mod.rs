//! The Plaid API client: typed requests and responses over `reqwest`.
//!
//! Every Plaid call is a `POST` of JSON with the `PLAID-CLIENT-ID`,
//! `PLAID-SECRET` and `Plaid-Version: 2020-09-14` headers
//! (Plaid's API reference, "Making API calls"). [`PlaidClient`] has one async method per
//! endpoint, each taking a request struct from [`types`] and returning the
//! typed response or a [`PlaidError`].
//!
//! Design points, each with its reason:
//!
//! * **Tolerant parsing.** Plaid adds response fields and enum values
//!   (including new `error_code`s) without a version bump (PLAID.md §1,
//!   "non-breaking changes"). Unknown fields are ignored and every enum has an
//!   `Unknown(String)` variant that keeps the original value.
//! * **Raw transactions.** The sync engine stores each transaction's full JSON,
//!   so [`types::Transaction::raw`] keeps it next to the typed fields.
//! * **Exact amounts.** Money is an [`Amount`], a decimal string, never an
//!   `f64` that the database would get as `72.09999…`.
//! * **Errors carry a class.** [`PlaidError::class`] says whether to retry,
//!   ask the user to re-authenticate, or give up; the table lives in
//!   [`error`] and cites PLAID.md §3.
//! * **No secrets in logs or errors.** Access tokens are [`AccessToken`]s,
//!   whose `Debug`/`Display` print `access-***`; the client secret lives only
//!   in a header marked sensitive; error strings never include request bodies.

pub mod client;
pub mod config;
pub mod error;
pub mod types;

pub use client::PlaidClient;
pub use config::PlaidConfig;
pub use error::{ApiError, ErrorClass, PlaidError};
pub use types::{AccessToken, Amount, PublicToken};

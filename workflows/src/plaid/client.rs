//! [`PlaidClient`]: one `reqwest::Client`, one method per endpoint.

use std::{fmt, time::Duration};

use reqwest::{
    header::{HeaderMap, HeaderName, HeaderValue},
    redirect,
};
use secrecy::ExposeSecret;
use serde::{Serialize, de::DeserializeOwned};
use tracing::{Instrument, field};

use super::{
    config::PlaidConfig,
    error::{ApiError, PlaidError, redact_quoted},
    types::*,
};

/// The API version every request pins (PLAID.md §1 "Versioning"; the
/// official libraries send the same).
pub const PLAID_VERSION: &str = "2020-09-14";

/// A Plaid API client. Cheap to clone (the connection pool is shared).
///
/// Every method is one `POST` with the credentials in headers and the
/// request struct as the JSON body, bounded by [`PlaidConfig::timeout`].
/// Each call runs in a `plaid_request` tracing span with the endpoint, HTTP
/// status, Plaid `request_id`, `error_code` and outcome; never a token.
#[derive(Clone)]
pub struct PlaidClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
}

impl fmt::Debug for PlaidClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlaidClient")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl PlaidClient {
    /// Builds the client. Fails if the base URL is not an absolute
    /// `http(s)` URL or a credential cannot be an HTTP header value.
    pub fn new(config: &PlaidConfig) -> Result<Self, PlaidError> {
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url).map_err(|err| PlaidError::Config {
            reason: format!("base_url is not a URL: {err}"),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(PlaidError::Config {
                reason: "base_url must be http or https".to_owned(),
            });
        }

        let mut headers = HeaderMap::new();
        let client_id = HeaderValue::from_str(&config.client_id).map_err(|_| PlaidError::Config {
            reason: "client_id is not a valid HTTP header value".to_owned(),
        })?;
        // Marked sensitive so `reqwest`/`http` print it as "Sensitive" in any
        // Debug output of the headers.
        let mut secret =
            HeaderValue::from_str(config.secret.expose_secret()).map_err(|_| PlaidError::Config {
                reason: "secret is not a valid HTTP header value".to_owned(),
            })?;
        secret.set_sensitive(true);
        headers.insert(HeaderName::from_static("plaid-client-id"), client_id);
        headers.insert(HeaderName::from_static("plaid-secret"), secret);
        headers.insert(
            HeaderName::from_static("plaid-version"),
            HeaderValue::from_static(PLAID_VERSION),
        );

        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(config.timeout)
            .user_agent(concat!("plaid-sync/", env!("CARGO_PKG_VERSION")))
            // Plaid never redirects; following one would carry our secret
            // header to another host.
            .redirect(redirect::Policy::none())
            .build()
            .map_err(|err| PlaidError::Config {
                reason: format!("could not build HTTP client: {err}"),
            })?;

        Ok(Self {
            http,
            base_url,
            timeout: config.timeout,
        })
    }

    /// The base URL requests go to, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /link/token/create`: a token to open Link with, for a new Item
    /// or for update mode.
    pub async fn link_token_create(
        &self,
        request: &LinkTokenCreateRequest,
    ) -> Result<LinkTokenCreateResponse, PlaidError> {
        self.post("/link/token/create", request).await
    }

    /// `POST /item/public_token/exchange`: trades Link's public token for the
    /// Item's permanent access token and id.
    pub async fn item_public_token_exchange(
        &self,
        request: &ItemPublicTokenExchangeRequest,
    ) -> Result<ItemPublicTokenExchangeResponse, PlaidError> {
        self.post("/item/public_token/exchange", request).await
    }

    /// `POST /accounts/get`: the Item's active accounts with cached balances.
    pub async fn accounts_get(
        &self,
        request: &AccountsGetRequest,
    ) -> Result<AccountsGetResponse, PlaidError> {
        self.post("/accounts/get", request).await
    }

    /// `POST /item/get`: the Item, its current error and update status.
    pub async fn item_get(&self, request: &ItemGetRequest) -> Result<ItemGetResponse, PlaidError> {
        self.post("/item/get", request).await
    }

    /// `POST /item/remove`: deletes the Item and stops its billing; the access
    /// token is invalid afterwards.
    pub async fn item_remove(&self, request: &ItemRemoveRequest) -> Result<ItemRemoveResponse, PlaidError> {
        self.post("/item/remove", request).await
    }

    /// `POST /item/webhook/update`: sets or (with `None`) clears the Item's
    /// webhook URL.
    pub async fn item_webhook_update(
        &self,
        request: &ItemWebhookUpdateRequest,
    ) -> Result<ItemWebhookUpdateResponse, PlaidError> {
        self.post("/item/webhook/update", request).await
    }

    /// `POST /transactions/sync`: one page of changes since a cursor. The
    /// caller loops while `has_more` (PLAID.md §2.5).
    pub async fn transactions_sync(
        &self,
        request: &TransactionsSyncRequest,
    ) -> Result<TransactionsSyncResponse, PlaidError> {
        self.post("/transactions/sync", request).await
    }

    /// [`Self::transactions_sync`], also handing back the page's exact JSON
    /// text, so the sync engine can stage the page as Plaid sent it instead of
    /// serialising what it just parsed (the parse still validates every
    /// transaction first).
    pub async fn transactions_sync_page(
        &self,
        request: &TransactionsSyncRequest,
    ) -> Result<(TransactionsSyncResponse, bytes::Bytes), PlaidError> {
        self.post_raw("/transactions/sync", request).await
    }

    /// `POST /webhook_verification_key/get`: the public key a webhook's JWT
    /// names by `kid`.
    pub async fn webhook_verification_key_get(
        &self,
        request: &WebhookVerificationKeyGetRequest,
    ) -> Result<WebhookVerificationKeyGetResponse, PlaidError> {
        self.post("/webhook_verification_key/get", request).await
    }

    /// `POST /sandbox/public_token/create` (Sandbox only): an Item without
    /// Link.
    pub async fn sandbox_public_token_create(
        &self,
        request: &SandboxPublicTokenCreateRequest,
    ) -> Result<SandboxPublicTokenCreateResponse, PlaidError> {
        self.post("/sandbox/public_token/create", request).await
    }

    /// `POST /sandbox/item/fire_webhook` (Sandbox only): makes Plaid send a
    /// webhook now.
    pub async fn sandbox_item_fire_webhook(
        &self,
        request: &SandboxItemFireWebhookRequest,
    ) -> Result<SandboxItemFireWebhookResponse, PlaidError> {
        self.post("/sandbox/item/fire_webhook", request).await
    }

    /// `POST /sandbox/item/reset_login` (Sandbox only): puts the Item into
    /// `ITEM_LOGIN_REQUIRED`.
    pub async fn sandbox_item_reset_login(
        &self,
        request: &SandboxItemResetLoginRequest,
    ) -> Result<SandboxItemResetLoginResponse, PlaidError> {
        self.post("/sandbox/item/reset_login", request).await
    }

    async fn post<Req, Resp>(&self, endpoint: &'static str, request: &Req) -> Result<Resp, PlaidError>
    where
        Req: Serialize,
        Resp: DeserializeOwned + PlaidResponse,
    {
        self.post_raw(endpoint, request)
            .await
            .map(|(response, _)| response)
    }

    /// [`Self::post`], also handing back the exact body bytes of a success.
    async fn post_raw<Req, Resp>(
        &self,
        endpoint: &'static str,
        request: &Req,
    ) -> Result<(Resp, bytes::Bytes), PlaidError>
    where
        Req: Serialize,
        Resp: DeserializeOwned + PlaidResponse,
    {
        let span = tracing::info_span!(
            "plaid_request",
            endpoint,
            status = field::Empty,
            request_id = field::Empty,
            error_code = field::Empty,
            outcome = field::Empty,
        );
        async {
            let started = std::time::Instant::now();
            let result: Result<(Resp, bytes::Bytes), PlaidError> = self.send(endpoint, request).await;
            let span = tracing::Span::current();
            let elapsed_ms = started.elapsed().as_millis() as u64;
            crate::metrics::plaid_call(endpoint, metrics_code(&result), started.elapsed());
            match &result {
                Ok((response, _)) => {
                    span.record("request_id", response.request_id());
                    span.record("outcome", "ok");
                    tracing::debug!(elapsed_ms, "Plaid call succeeded");
                }
                Err(err) => {
                    if let Some(api) = err.api() {
                        span.record("error_code", api.error_code.as_str());
                        if let Some(request_id) = &api.request_id {
                            span.record("request_id", request_id.as_str());
                        }
                    }
                    span.record("outcome", field::debug(err.class()));
                    // The error's Display is secret-free by construction.
                    tracing::warn!(elapsed_ms, error = %err, "Plaid call failed");
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send<Req, Resp>(
        &self,
        endpoint: &'static str,
        request: &Req,
    ) -> Result<(Resp, bytes::Bytes), PlaidError>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
    {
        let transport = |source: reqwest::Error| {
            if source.is_timeout() {
                PlaidError::Timeout {
                    endpoint,
                    timeout: self.timeout,
                }
            } else {
                PlaidError::Transport { endpoint, source }
            }
        };

        let response = self
            .http
            .post(format!("{}{endpoint}", self.base_url))
            .json(request)
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        tracing::Span::current().record("status", status.as_u16());
        let body = response.bytes().await.map_err(transport)?;

        let decode_error = |err: serde_json::Error| PlaidError::Decode {
            endpoint,
            status: status.as_u16(),
            detail: redact_quoted(&err.to_string()),
        };
        if status.is_success() {
            let parsed = serde_json::from_slice(&body).map_err(decode_error)?;
            Ok((parsed, body))
        } else {
            let error: ErrorBody = serde_json::from_slice(&body).map_err(decode_error)?;
            Err(PlaidError::Api(Box::new(ApiError::new(
                endpoint,
                status.as_u16(),
                error,
            ))))
        }
    }
}

/// The `error_code` label of a call: Plaid's code, ours for failures without one, or `ok`.
fn metrics_code<T>(result: &Result<T, PlaidError>) -> &str {
    match result {
        Ok(_) => "ok",
        Err(PlaidError::Api(api)) => api.error_code.as_str(),
        Err(PlaidError::Timeout { .. }) => "timeout",
        Err(PlaidError::Transport { .. }) => "transport_error",
        Err(PlaidError::Decode { .. }) => "bad_response",
        Err(_) => "client_error",
    }
}

//! Every `PlaidClient` call against the Plaid simulator over real HTTP:
//! success paths with their typed fields. Error classes, timeouts and secret
//! hygiene are in `plaid_client_errors`.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use plaid_simulator::{
    CreatedItem, ItemSpec, NewTransaction, ReadyState, Simulator, SimulatorConfig, SimulatorHandle,
    TransactionPatch,
};
use secrecy::SecretString;
use workflows::plaid::{
    AccessToken, PlaidClient, PlaidConfig,
    types::{
        AccountType, AccountsGetRequest, ItemGetRequest, ItemPublicTokenExchangeRequest,
        ItemRemoveReasonCode, ItemRemoveRequest, ItemUpdateType, ItemWebhookUpdateRequest,
        LinkTokenCreateRequest, PaymentChannel, Product, SandboxItemFireWebhookRequest,
        SandboxItemResetLoginRequest, SandboxPublicTokenCreateOptions, SandboxPublicTokenCreateRequest,
        SandboxWebhookCode, Transaction, TransactionsSyncOptions, TransactionsSyncRequest,
        TransactionsUpdateStatus, WebhookType, WebhookVerificationKeyGetRequest,
    },
};

/// Distinctive credentials, so tests can prove they never leak.
pub(crate) const CLIENT_ID: &str = "sim-client-id-plaid-client-tests";
pub(crate) const SECRET: &str = "sim-secret-never-print-7f3a9c";

/// A webhook URL on the loopback discard port: deliveries fail fast and harmlessly.
pub(crate) const WEBHOOK_URL: &str = "http://127.0.0.1:9/webhooks/plaid";

pub(crate) async fn start_simulator(adjust: impl FnOnce(&mut SimulatorConfig)) -> SimulatorHandle {
    let mut config = SimulatorConfig {
        client_id: CLIENT_ID.to_owned(),
        secret: SECRET.to_owned(),
        seed: Some(7),
        auto_webhooks: false,
        ..SimulatorConfig::default()
    };
    adjust(&mut config);
    Simulator::start(config).await.expect("simulator starts")
}

pub(crate) fn client(sim: &SimulatorHandle, timeout: Duration) -> PlaidClient {
    let config =
        PlaidConfig::new(sim.base_url(), CLIENT_ID, SecretString::from(SECRET)).with_timeout(timeout);
    PlaidClient::new(&config).expect("client builds")
}

pub(crate) fn token(item: &CreatedItem) -> AccessToken {
    AccessToken::new(item.access_token.clone())
}

fn days_ago(days: i64) -> NaiveDate {
    Utc::now().date_naive() - chrono::Duration::days(days)
}

/// Pulls every page from `cursor`, as the sync engine does.
pub(crate) async fn sync_all(
    plaid: &PlaidClient,
    access_token: &AccessToken,
    cursor: Option<String>,
    count: u32,
) -> (Vec<Transaction>, Vec<Transaction>, Vec<String>, String, usize) {
    let (mut added, mut modified, mut removed) = (Vec::new(), Vec::new(), Vec::new());
    let mut cursor = cursor;
    let mut pages = 0;
    loop {
        let mut request = TransactionsSyncRequest::new(access_token.clone()).with_cursor(cursor);
        request.count = Some(count);
        let page = plaid.transactions_sync(&request).await.expect("sync page");
        pages += 1;
        added.extend(page.added);
        modified.extend(page.modified);
        removed.extend(page.removed.into_iter().map(|r| r.transaction_id));
        cursor = Some(page.next_cursor.clone());
        if !page.has_more {
            return (added, modified, removed, page.next_cursor, pages);
        }
    }
}

#[tokio::test]
async fn link_token_create_returns_a_token_for_new_items_and_for_update_mode() {
    // Arrange
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());
    let mut new_item = LinkTokenCreateRequest::new("plaid-sync", "user-1", vec![Product::Transactions]);
    new_item.webhook = Some(WEBHOOK_URL.to_owned());
    new_item.transactions = Some(workflows::plaid::types::LinkTokenTransactions { days_requested: 730 });

    // Act
    let created = plaid.link_token_create(&new_item).await.expect("new-item token");
    let update = plaid
        .link_token_create(&LinkTokenCreateRequest::update_mode(
            "plaid-sync",
            "user-1",
            token(&item),
        ))
        .await
        .expect("update-mode token");

    // Assert: Plaid's lifetimes, 4 h for new Items and 30 min in update mode.
    assert!(created.link_token.starts_with("link-"), "{}", created.link_token);
    assert!(!created.request_id.is_empty());
    let left = created.expiration - Utc::now();
    assert!(left > chrono::Duration::minutes(235) && left <= chrono::Duration::hours(4));
    let left = update.expiration - Utc::now();
    assert!(left > chrono::Duration::minutes(25) && left <= chrono::Duration::minutes(30));
    assert!(sim.complete_link(&update.link_token).unwrap().update_mode);
}

#[tokio::test]
async fn a_public_token_from_link_exchanges_for_the_items_access_token() {
    // Arrange: a Link session completed in the simulator.
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let link = plaid
        .link_token_create(&LinkTokenCreateRequest::new(
            "plaid-sync",
            "u",
            vec![Product::Transactions],
        ))
        .await
        .unwrap();
    let completion = sim.complete_link(&link.link_token).unwrap();

    // Act
    let exchanged = plaid
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest {
            public_token: completion.public_token.clone().into(),
        })
        .await
        .expect("exchange");

    // Assert
    assert_eq!(exchanged.item_id, completion.item_id);
    assert_eq!(
        exchanged.access_token.expose_secret(),
        sim.item(&completion.item_id).unwrap().access_token
    );
    assert!(!exchanged.request_id.is_empty());
}

#[tokio::test]
async fn sandbox_public_token_create_makes_an_item_whose_accounts_and_item_parse() {
    // Arrange
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let mut request = SandboxPublicTokenCreateRequest::transactions("ins_109508");
    request.options = Some(SandboxPublicTokenCreateOptions {
        webhook: Some(WEBHOOK_URL.to_owned()),
        ..Default::default()
    });

    // Act
    let public = plaid
        .sandbox_public_token_create(&request)
        .await
        .expect("public token");
    let exchanged = plaid
        .item_public_token_exchange(&ItemPublicTokenExchangeRequest {
            public_token: public.public_token,
        })
        .await
        .expect("exchange");
    let accounts = plaid
        .accounts_get(&AccountsGetRequest::new(exchanged.access_token.clone()))
        .await
        .expect("accounts");
    let item = plaid
        .item_get(&ItemGetRequest {
            access_token: exchanged.access_token,
        })
        .await
        .expect("item");

    // Assert: Sandbox's checking, savings and credit card, with exact balances.
    let types: Vec<_> = accounts.accounts.iter().map(|a| a.account_type.clone()).collect();
    assert_eq!(
        types,
        [
            AccountType::Depository,
            AccountType::Depository,
            AccountType::Credit
        ]
    );
    let checking = &accounts.accounts[0];
    assert_eq!(checking.subtype.as_deref(), Some("checking"));
    assert_eq!(checking.mask.as_deref(), Some("0000"));
    assert_eq!(
        checking.balances.current.as_ref().map(|a| a.as_str()),
        Some("110")
    );
    assert_eq!(checking.balances.iso_currency_code.as_deref(), Some("USD"));
    assert_eq!(
        accounts.accounts[2].balances.limit.as_ref().map(|a| a.as_str()),
        Some("2000")
    );
    assert_eq!(accounts.item.item_id, exchanged.item_id);

    assert_eq!(item.item.item_id, exchanged.item_id);
    assert_eq!(item.item.institution_id.as_deref(), Some("ins_109508"));
    assert_eq!(item.item.webhook.as_deref(), Some(WEBHOOK_URL));
    assert!(item.item.error.is_none());
    assert!(item.item.products.contains(&Product::Transactions));
    assert_eq!(item.item.update_type, Some(ItemUpdateType::Background));
}

#[tokio::test]
async fn accounts_get_can_filter_by_account_id() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());

    let mut request = AccountsGetRequest::new(token(&item));
    request.options = Some(workflows::plaid::types::AccountsGetOptions {
        account_ids: vec![item.account_ids[1].clone()],
    });
    let accounts = plaid.accounts_get(&request).await.expect("accounts");

    assert_eq!(accounts.accounts.len(), 1);
    assert_eq!(accounts.accounts[0].account_id, item.account_ids[1]);
    assert_eq!(accounts.accounts[0].name, "Plaid Saving");
}

#[tokio::test]
async fn transactions_sync_pages_through_adds_then_reports_modified_and_removed() {
    // Arrange: amounts that an f64 round-trip through the database would mangle.
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());
    let checking = &item.account_ids[0];
    let ids = sim
        .add_transactions(
            &item.item_id,
            vec![
                NewTransaction::new(checking, 72.1, days_ago(3), "PURCHASE WM SUPERCENTER")
                    .merchant("Walmart"),
                NewTransaction::new(checking, -1234.56, days_ago(2), "PAYROLL"),
                NewTransaction::new(checking, 0.01, days_ago(1), "ROUNDING").pending(),
            ],
        )
        .unwrap();

    // Act: first full pull, two per page.
    let (added, modified, removed, cursor, pages) = sync_all(&plaid, &token(&item), None, 2).await;

    // Assert
    assert_eq!(pages, 2);
    assert!(modified.is_empty() && removed.is_empty());
    let amount_of = |id: &str| {
        added
            .iter()
            .find(|t| t.transaction_id == id)
            .map(|t| t.amount.as_str().to_owned())
    };
    assert_eq!(amount_of(&ids[0]).as_deref(), Some("72.1"));
    assert_eq!(amount_of(&ids[1]).as_deref(), Some("-1234.56"));
    assert_eq!(amount_of(&ids[2]).as_deref(), Some("0.01"));
    let walmart = added.iter().find(|t| t.transaction_id == ids[0]).unwrap();
    assert_eq!(walmart.account_id, *checking);
    assert_eq!(walmart.date, days_ago(3));
    assert_eq!(walmart.merchant_name.as_deref(), Some("Walmart"));
    assert_eq!(walmart.payment_channel, Some(PaymentChannel::InStore));
    assert_eq!(walmart.iso_currency_code.as_deref(), Some("USD"));
    assert!(!walmart.pending);
    assert_eq!(walmart.raw()["transaction_id"], ids[0].as_str());
    assert!(
        walmart.raw().get("counterparties").is_some(),
        "raw keeps untyped fields"
    );
    assert!(added.iter().find(|t| t.transaction_id == ids[2]).unwrap().pending);

    // Arrange: a change and a removal after the stored cursor.
    sim.modify_transaction(
        &item.item_id,
        &ids[0],
        TransactionPatch {
            amount: Some(80.35),
            ..Default::default()
        },
    )
    .unwrap();
    sim.remove_transactions(&item.item_id, &[ids[1].as_str()])
        .unwrap();

    // Act
    let (added, modified, removed, _, _) = sync_all(&plaid, &token(&item), Some(cursor), 100).await;

    // Assert
    assert!(added.is_empty());
    assert_eq!(modified.len(), 1);
    assert_eq!(modified[0].transaction_id, ids[0]);
    assert_eq!(modified[0].amount.as_str(), "80.35");
    assert_eq!(removed, [ids[1].clone()]);
}

#[tokio::test]
async fn transactions_sync_on_a_fresh_item_is_not_ready_with_an_empty_cursor() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::default());

    let mut request = TransactionsSyncRequest::new(token(&item));
    request.options = Some(TransactionsSyncOptions {
        include_original_description: Some(true),
        days_requested: Some(730),
        ..Default::default()
    });
    let page = plaid.transactions_sync(&request).await.expect("sync");

    assert_eq!(
        page.transactions_update_status,
        TransactionsUpdateStatus::NotReady
    );
    assert_eq!(page.next_cursor, "");
    assert!(!page.has_more);
    assert!(page.added.is_empty() && page.modified.is_empty() && page.removed.is_empty());

    // Once ready, the same call reports the new status.
    sim.mark_ready(&item.item_id, ReadyState::InitialUpdateComplete)
        .unwrap();
    let page = plaid.transactions_sync(&request).await.expect("sync");
    assert_eq!(
        page.transactions_update_status,
        TransactionsUpdateStatus::InitialUpdateComplete
    );
}

#[tokio::test]
async fn item_webhook_update_sets_and_clears_the_webhook() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());

    let set = plaid
        .item_webhook_update(&ItemWebhookUpdateRequest {
            access_token: token(&item),
            webhook: Some(WEBHOOK_URL.to_owned()),
        })
        .await
        .expect("set");
    assert_eq!(set.item.item_id, item.item_id);
    assert_eq!(set.item.webhook.as_deref(), Some(WEBHOOK_URL));
    assert_eq!(
        sim.item(&item.item_id).unwrap().webhook.as_deref(),
        Some(WEBHOOK_URL)
    );

    let cleared = plaid
        .item_webhook_update(&ItemWebhookUpdateRequest {
            access_token: token(&item),
            webhook: None,
        })
        .await
        .expect("clear");
    assert_eq!(cleared.item.webhook, None);
    assert_eq!(sim.item(&item.item_id).unwrap().webhook, None);
}

#[tokio::test]
async fn webhook_verification_key_get_returns_the_current_signing_key() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let kid = sim.current_webhook_key_id();

    let response = plaid
        .webhook_verification_key_get(&WebhookVerificationKeyGetRequest { key_id: kid.clone() })
        .await
        .expect("key");

    let key = response.key;
    assert_eq!(key.kid, kid);
    assert_eq!(
        (key.alg.as_str(), key.crv.as_str(), key.kty.as_str()),
        ("ES256", "P-256", "EC")
    );
    assert_eq!(key.key_use, "sig");
    assert!(!key.x.is_empty() && !key.y.is_empty());
    assert!(key.created_at > 0);
    assert_eq!(key.expired_at, None);

    // After rotation the old key reports its expiry.
    sim.rotate_webhook_key().unwrap();
    let old = plaid
        .webhook_verification_key_get(&WebhookVerificationKeyGetRequest { key_id: kid })
        .await
        .expect("old key");
    assert!(old.key.expired_at.is_some());
}

#[tokio::test]
async fn sandbox_fire_webhook_and_reset_login_act_on_the_item() {
    // Arrange
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready().with_webhook(WEBHOOK_URL));

    // Act
    let fired = plaid
        .sandbox_item_fire_webhook(&SandboxItemFireWebhookRequest {
            access_token: token(&item),
            webhook_type: Some(WebhookType::Transactions),
            webhook_code: SandboxWebhookCode::SyncUpdatesAvailable,
        })
        .await
        .expect("fire");
    let reset = plaid
        .sandbox_item_reset_login(&SandboxItemResetLoginRequest {
            access_token: token(&item),
        })
        .await
        .expect("reset");

    // Assert
    assert!(fired.webhook_fired);
    assert!(reset.reset_login);
    assert_eq!(
        sim.item(&item.item_id).unwrap().error_code.as_deref(),
        Some("ITEM_LOGIN_REQUIRED")
    );
    let item_now = plaid
        .item_get(&ItemGetRequest {
            access_token: token(&item),
        })
        .await
        .expect("item/get still answers");
    let error = item_now.item.error.expect("item error");
    assert_eq!(error.error_code, "ITEM_LOGIN_REQUIRED");
    assert_eq!(error.class(), workflows::plaid::ErrorClass::NeedsReauth);
}

#[tokio::test]
async fn item_remove_invalidates_the_access_token() {
    let sim = start_simulator(|_| {}).await;
    let plaid = client(&sim, Duration::from_secs(5));
    let item = sim.create_item(ItemSpec::ready());

    let mut request = ItemRemoveRequest::new(token(&item));
    request.reason_code = Some(ItemRemoveReasonCode::Other);
    let removed = plaid.item_remove(&request).await.expect("remove");

    assert!(!removed.request_id.is_empty());
    assert!(sim.item(&item.item_id).unwrap().removed);
    let err = plaid
        .item_get(&ItemGetRequest {
            access_token: token(&item),
        })
        .await
        .expect_err("token is dead");
    assert_eq!(err.error_code(), Some("INVALID_ACCESS_TOKEN"));
}

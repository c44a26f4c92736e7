//! The legacy backfill: legacy `accounts` rows (provider `plaid`, a shared
//! `secret_ref` per Item) become `plaid_items` and `plaid_item_accounts`.
//!
//! Most tests run the app without workers (`Role::Api`) and drive the real
//! migrate step (`db::migrate_all`) and the resolver's `run_once`/`execute`
//! directly, so nothing else writes while they compare table snapshots; one
//! test goes end to end through the `plaid-sync migrate` binary, the worker
//! and `plaid-sync check backfill`.

use std::time::Duration;

use plaid_simulator::{CreatedItem, Fault, FaultError, ItemSpec, SimulatorConfig};
use plaid_sync::cli::Role;
use secrecy::SecretString;
use serde_json::Value;
use workflows::{
    backfill::{self, Env, Report},
    db::migrate_all,
    jobs::legacy_backfill::{self, LegacyBackfill},
    plaid::{AccessToken, PlaidClient, PlaidConfig, types::ItemRemoveRequest},
    redact::Secret,
    secrets::{SecretStore, SecretsKey},
};

use crate::support::{
    TestApp,
    plaid::{link_new_item, pending_sync_jobs},
    wait_until,
};

const QUEUE: &str = "plaid-sync.legacy-backfill";

/// A legacy secret and the accounts that share it.
struct Legacy {
    secret_ref: String,
    accounts: Vec<i64>,
}

fn secret_store(app: &TestApp) -> SecretStore {
    SecretStore::new(SecretsKey::from_base64(&app.vars["SECRETS_KEY"]).unwrap(), vec![])
}

fn plaid_client(app: &TestApp) -> PlaidClient {
    let defaults = SimulatorConfig::default();
    PlaidClient::new(&PlaidConfig::new(
        app.sim.base_url(),
        defaults.client_id,
        SecretString::from(defaults.secret),
    ))
    .unwrap()
}

/// Stores `access_token` as a legacy secret and the legacy accounts using it
/// (`(name, mask)` each), the way the pre-plaid_items code did.
async fn seed_legacy(
    app: &TestApp,
    user_id: i64,
    access_token: &str,
    accounts: &[(&str, Option<&str>)],
) -> Legacy {
    let mut conn = app.pool.acquire().await.unwrap();
    let secret_ref = secret_store(app)
        .put(&mut conn, &Secret::new(access_token))
        .await
        .unwrap();
    let mut ids = Vec::new();
    for (name, mask) in accounts {
        ids.push(legacy_account(app, user_id, &secret_ref, name, *mask).await);
    }
    Legacy {
        secret_ref,
        accounts: ids,
    }
}

async fn legacy_account(
    app: &TestApp,
    user_id: i64,
    secret_ref: &str,
    name: &str,
    mask: Option<&str>,
) -> i64 {
    sqlx::query_scalar(
        "insert into accounts (user_id, provider, name, mask, type, sync_status, last_synced_at, secret_ref)
         values ($1, 'plaid', $2, $3, 'depository', 'active', now() - interval '3 days', $4) returning id",
    )
    .bind(user_id)
    .bind(name)
    .bind(mask)
    .bind(secret_ref)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// The resolver's core, as the job runs it.
async fn run_backfill(app: &TestApp) -> Report {
    let (plaid, secrets) = (plaid_client(app), secret_store(app));
    let env = Env {
        pool: &app.pool,
        plaid: &plaid,
        secrets: &secrets,
    };
    backfill::run_once(env, backfill::RUN_BUDGET).await.unwrap()
}

/// One whole job run (guard release, resolve, re-queue).
async fn execute_job(app: &TestApp, job: &LegacyBackfill) -> Report {
    let (plaid, secrets) = (plaid_client(app), secret_store(app));
    let env = Env {
        pool: &app.pool,
        plaid: &plaid,
        secrets: &secrets,
    };
    legacy_backfill::execute(env, job).await.unwrap()
}

/// The account's mapping: (Plaid item id, Plaid account id, active).
async fn mapping(app: &TestApp, account_id: i64) -> Option<(String, String, bool)> {
    sqlx::query_as(
        "select i.item_id, m.plaid_account_id, m.active
         from plaid_item_accounts m join plaid_items i on i.id = m.plaid_item_id
         where m.account_id = $1",
    )
    .bind(account_id)
    .fetch_optional(&app.pool)
    .await
    .unwrap()
}

fn mapped_to(item: &CreatedItem, index: usize) -> Option<(String, String, bool)> {
    Some((item.item_id.clone(), item.account_ids[index].clone(), true))
}

async fn table(app: &TestApp, from: &str) -> Value {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select coalesce(jsonb_agg(to_jsonb(t) order by to_jsonb(t)::text), '[]'::jsonb) from {from} t"
    )))
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Every row the backfill could touch, in full (`updated_at` included, so
/// even a no-op update shows).
async fn snapshot(app: &TestApp) -> Value {
    let mut all = serde_json::Map::new();
    for name in [
        "users",
        "accounts",
        "secrets",
        "plaid_items",
        "plaid_item_accounts",
        "legacy_backfill",
        "legacy_backfill_job",
        "sync_pending",
    ] {
        all.insert(name.into(), table(app, name).await);
    }
    all.insert(
        "apalis.jobs".into(),
        table(
            app,
            "(select id, job_type, status, attempts, run_at, job from apalis.jobs)",
        )
        .await,
    );
    Value::Object(all)
}

async fn backfill_jobs(app: &TestApp) -> Vec<(String, String, bool)> {
    sqlx::query_as(
        "select id, convert_from(job, 'UTF8'), run_at > now() + interval '20 seconds'
         from apalis.jobs where job_type = $1 order by id",
    )
    .bind(QUEUE)
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

async fn guard(app: &TestApp) -> Option<String> {
    sqlx::query_scalar("select task_id from legacy_backfill_job")
        .fetch_optional(&app.pool)
        .await
        .unwrap()
}

/// An item's row with its mappings.
async fn item_view(app: &TestApp, item_id: &str) -> Value {
    table(
        app,
        &format!(
            "(select i.*, (select jsonb_agg(to_jsonb(m) order by m.account_id) from plaid_item_accounts m
                           where m.plaid_item_id = i.id) as mappings
              from plaid_items i where i.item_id = '{item_id}')"
        ),
    )
    .await
}

/// (status, error_code, plaid_item_id, unmatched_accounts) of a secret's row.
async fn backfill_row(app: &TestApp, secret_ref: &str) -> (String, Option<String>, Option<i64>, i32) {
    sqlx::query_as(
        "select status, error_code, plaid_item_id, unmatched_accounts from legacy_backfill where secret_ref = $1",
    )
    .bind(secret_ref)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

/// Runs the real binary with the app's configuration; (exit code, stdout).
async fn plaid_sync(app: &TestApp, args: &[&str]) -> (i32, String) {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_plaid-sync"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(app.vars.iter())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("plaid-sync {args:?} did not finish within 60 s"))
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    let code = output.status.code().expect("exited");
    assert!(
        code == 0 || code == 1,
        "{args:?}: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (code, stdout)
}

/// The value of a `key: value` line of `check backfill`.
fn figure(stdout: &str, key: &str) -> i64 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{stdout}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_legacy_database_is_backfilled_with_one_item_per_secret_and_every_account_mapped_idempotently() {
    // Arrange: Alice has two Items (one legacy secret each), Bob one. Alice
    // renamed her checking account (matched by mask) and her savings account
    // has no mask (matched by name); her second Item's legacy rows cover only
    // two of its three accounts.
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (alice, _) = app.user_with_token("alice@example.com").await;
    let (bob, _) = app.user_with_token("bob@example.com").await;
    let a1 = app.sim.create_item(ItemSpec::default());
    let a2 = app.sim.create_item(ItemSpec::default());
    let b1 = app.sim.create_item(ItemSpec::default());
    let alice_1 = seed_legacy(
        &app,
        alice.id,
        &a1.access_token,
        &[
            ("My everyday account", Some("0000")),
            ("plaid saving", None),
            ("Plaid Credit Card", Some("3333")),
        ],
    )
    .await;
    let alice_2 = seed_legacy(
        &app,
        alice.id,
        &a2.access_token,
        &[
            ("Plaid Checking", Some("0000")),
            ("Plaid Credit Card", Some("3333")),
        ],
    )
    .await;
    let bob_1 = seed_legacy(
        &app,
        bob.id,
        &b1.access_token,
        &[
            ("Plaid Checking", Some("0000")),
            ("Plaid Saving", Some("1111")),
            ("Plaid Credit Card", Some("3333")),
        ],
    )
    .await;
    let accounts_before = table(&app, "accounts").await;

    // Act: the migrate step, twice, then the resolver.
    migrate_all(&app.pool).await.unwrap();
    let jobs = backfill_jobs(&app).await;
    assert_eq!(jobs.len(), 1, "one resolver job for all pending secrets");
    assert_eq!(guard(&app).await.as_deref(), Some(jobs[0].0.as_str()));
    migrate_all(&app.pool).await.unwrap();
    assert_eq!(
        backfill_jobs(&app).await,
        jobs,
        "no second job while one is pending"
    );
    let pending: i64 = sqlx::query_scalar("select count(*) from legacy_backfill where status = 'pending'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(pending, 3, "one pending row per distinct legacy secret");
    let report = run_backfill(&app).await;

    // Assert: every account on the right Plaid account.
    assert_eq!(
        (report.resolved, report.failed, report.retry_later),
        (3, 0, 0),
        "{report:?}"
    );
    assert_eq!((report.mapped_accounts, report.unmatched_accounts), (8, 0));
    for (legacy, item, indexes) in [
        (&alice_1, &a1, &[0, 1, 2][..]),
        (&alice_2, &a2, &[0, 2][..]),
        (&bob_1, &b1, &[0, 1, 2][..]),
    ] {
        for (account, index) in legacy.accounts.iter().zip(indexes) {
            assert_eq!(mapping(&app, *account).await, mapped_to(item, *index));
        }
        let (user_id, secret_ref, institution, sync_status, requested, id): (
            i64,
            String,
            Option<String>,
            String,
            bool,
            i64,
        ) = sqlx::query_as(
            "select user_id, secret_ref, institution_id, sync_status, sync_requested_at is not null, id
             from plaid_items where item_id = $1",
        )
        .bind(&item.item_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        let owner = if legacy.secret_ref == bob_1.secret_ref {
            bob.id
        } else {
            alice.id
        };
        assert_eq!(
            (user_id, secret_ref.as_str(), institution.as_deref()),
            (owner, legacy.secret_ref.as_str(), Some("ins_109508"))
        );
        assert_eq!(sync_status, "sync_needed");
        assert!(requested, "a sync is requested");
        assert_eq!(pending_sync_jobs(&app, id).await, 1);
        assert_eq!(
            backfill_row(&app, &legacy.secret_ref).await,
            ("resolved".to_owned(), None, Some(id), 0)
        );
    }
    let items: i64 = sqlx::query_scalar("select count(*) from plaid_items")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(items, 3, "one item per distinct secret");
    assert_eq!(
        table(&app, "accounts").await,
        accounts_before,
        "the legacy accounts themselves are not changed"
    );

    // A second run (migrate step and resolver) changes nothing at all.
    let before = snapshot(&app).await;
    migrate_all(&app.pool).await.unwrap();
    let again = run_backfill(&app).await;
    assert_eq!(again, Report::default());
    assert_eq!(snapshot(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn secrets_that_no_longer_work_are_reported_as_failed_and_their_accounts_are_kept_as_they_were() {
    // Arrange: one working Item, one removed at Plaid, one needing reauth, and
    // a legacy reference whose secret row is gone.
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let good = app.sim.create_item(ItemSpec::default());
    let removed = app.sim.create_item(ItemSpec::default());
    let locked = app.sim.create_item(ItemSpec::default());
    plaid_client(&app)
        .item_remove(&ItemRemoveRequest::new(AccessToken::new(
            removed.access_token.clone(),
        )))
        .await
        .unwrap();
    app.sim.reset_login(&locked.item_id).unwrap();
    let accounts = [("Plaid Checking", Some("0000")), ("Plaid Saving", Some("1111"))];
    let good_legacy = seed_legacy(&app, user.id, &good.access_token, &accounts).await;
    let removed_legacy = seed_legacy(&app, user.id, &removed.access_token, &accounts).await;
    let locked_legacy = seed_legacy(&app, user.id, &locked.access_token, &accounts).await;
    let lost = legacy_account(&app, user.id, "sec_gone", "Plaid Checking", Some("0000")).await;
    let accounts_before = table(&app, "accounts").await;

    // Act
    migrate_all(&app.pool).await.unwrap();
    let report = run_backfill(&app).await;

    // Assert
    assert_eq!(
        (report.resolved, report.failed, report.retry_later),
        (1, 3, 0),
        "{report:?}"
    );
    assert_eq!(backfill_row(&app, &removed_legacy.secret_ref).await.0, "failed");
    assert_eq!(
        backfill_row(&app, &removed_legacy.secret_ref).await.1.as_deref(),
        Some("INVALID_ACCESS_TOKEN")
    );
    assert_eq!(
        backfill_row(&app, &locked_legacy.secret_ref).await.1.as_deref(),
        Some("ITEM_LOGIN_REQUIRED")
    );
    assert_eq!(
        backfill_row(&app, "sec_gone").await,
        ("failed".to_owned(), Some("secret_missing".to_owned()), None, 0)
    );
    for account in removed_legacy
        .accounts
        .iter()
        .chain(&locked_legacy.accounts)
        .chain([&lost])
    {
        assert_eq!(mapping(&app, *account).await, None);
    }
    assert_eq!(mapping(&app, good_legacy.accounts[1]).await, mapped_to(&good, 1));
    assert_eq!(
        table(&app, "accounts").await,
        accounts_before,
        "failed accounts are neither deleted, archived nor changed"
    );
    let items: Vec<String> = sqlx::query_scalar("select item_id from plaid_items")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(items, [good.item_id.as_str()]);

    // The check reports them and fails.
    let (code, out) = plaid_sync(&app, &["check", "backfill"]).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(figure(&out, "legacy_plaid_accounts"), 7);
    assert_eq!(figure(&out, "with_mapping"), 2);
    assert_eq!(figure(&out, "unmapped"), 5);
    assert_eq!(figure(&out, "secrets_failed"), 3);
    assert_eq!(figure(&out, "secrets_resolved"), 1);
    assert!(
        out.contains(&format!(
            "failed secret {}: INVALID_ACCESS_TOKEN (2 accounts",
            removed_legacy.secret_ref
        )),
        "{out}"
    );
    assert!(
        out.contains("failed secret sec_gone: secret_missing (1 accounts"),
        "{out}"
    );
    assert!(out.contains(&format!("unmapped account {lost} ")), "{out}");

    // Failed secrets stay failed: a second run changes nothing.
    let before = snapshot(&app).await;
    migrate_all(&app.pool).await.unwrap();
    assert_eq!(run_backfill(&app).await, Report::default());
    assert_eq!(snapshot(&app).await, before);
    app.stop().await;
}

#[tokio::test]
async fn check_backfill_exits_1_while_accounts_are_unmapped_and_0_once_the_worker_has_mapped_them() {
    // Arrange: a worker process and a legacy Item nobody has looked at yet.
    let app = TestApp::spawn_with(|_| {}, Role::Worker).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let item = app.sim.create_item(ItemSpec::default());
    let legacy = seed_legacy(
        &app,
        user.id,
        &item.access_token,
        &[
            ("Plaid Checking", Some("0000")),
            ("Plaid Saving", Some("1111")),
            ("Plaid Credit Card", Some("3333")),
        ],
    )
    .await;

    let (code, out) = plaid_sync(&app, &["check", "backfill"]).await;
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("legacy backfill: incomplete"), "{out}");
    assert_eq!(
        [
            "legacy_plaid_accounts",
            "with_item",
            "without_item",
            "with_mapping",
            "unmapped"
        ]
        .map(|k| figure(&out, k)),
        [3, 0, 3, 0, 3]
    );
    assert!(out.contains("not discovered yet"), "{out}");

    // Act: the real migrate command; the worker picks the resolver job up.
    let (code, out) = plaid_sync(&app, &["migrate"]).await;
    assert_eq!(code, 0, "{out}");
    wait_until("the resolver job to finish", Duration::from_secs(30), || async {
        let done: bool = sqlx::query_scalar(
            "select not exists (select 1 from legacy_backfill where status = 'pending')
                and exists (select 1 from apalis.jobs where job_type = $1)
                and not exists (select 1 from apalis.jobs where job_type = $1 and status <> 'Done')",
        )
        .bind(QUEUE)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        done.then_some(())
    })
    .await;

    // Assert
    let (code, out) = plaid_sync(&app, &["check", "backfill"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("legacy backfill: complete"), "{out}");
    assert_eq!(
        [
            "legacy_plaid_accounts",
            "with_item",
            "without_item",
            "with_mapping",
            "unmapped",
            "secrets_resolved"
        ]
        .map(|k| figure(&out, k)),
        [3, 3, 0, 3, 0, 1]
    );
    for (index, account) in legacy.accounts.iter().enumerate() {
        assert_eq!(mapping(&app, *account).await, mapped_to(&item, index));
    }
    let sync_jobs: i64 = sqlx::query_scalar(
        "select count(*) from apalis.jobs j join plaid_items i
           on convert_from(j.job, 'UTF8')::jsonb ->> 'plaid_item_id' = i.id::text
         where j.job_type = 'plaid-sync.sync-item' and i.item_id = $1",
    )
    .bind(&item.item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(sync_jobs >= 1, "the backfilled item's sync was requested");
    app.stop().await;
}

#[tokio::test]
async fn a_passing_plaid_error_keeps_the_secret_pending_and_requeues_the_job_with_a_delay() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let item = app.sim.create_item(ItemSpec::default());
    let legacy = seed_legacy(
        &app,
        user.id,
        &item.access_token,
        &[("Plaid Checking", Some("0000"))],
    )
    .await;
    app.sim
        .inject_fault(
            Fault::new(FaultError::internal_server_error(), 1)
                .on_endpoint("/item/get")
                .for_item(&item.item_id),
        )
        .unwrap();
    migrate_all(&app.pool).await.unwrap();
    let first = backfill_jobs(&app).await;
    assert_eq!(first.len(), 1);

    // Act: the job runs while Plaid fails.
    let report = execute_job(&app, &LegacyBackfill::default()).await;

    // Assert: still pending, error noted, one delayed follow-up job (round 1).
    assert_eq!((report.retry_later, report.failed), (1, 0));
    let (status, code, attempts): (String, Option<String>, i32) =
        sqlx::query_as("select status, error_code, attempts from legacy_backfill where secret_ref = $1")
            .bind(&legacy.secret_ref)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        (status.as_str(), code.as_deref(), attempts),
        ("pending", Some("INTERNAL_SERVER_ERROR"), 1)
    );
    assert_eq!(mapping(&app, legacy.accounts[0]).await, None);
    let jobs = backfill_jobs(&app).await;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let next = jobs.iter().find(|j| j.0 != first[0].0).unwrap();
    assert!(next.2, "the follow-up is delayed: {next:?}");
    assert_eq!(
        serde_json::from_str::<LegacyBackfill>(&next.1).unwrap(),
        LegacyBackfill { round: 1 }
    );
    assert_eq!(guard(&app).await.as_deref(), Some(next.0.as_str()));
    assert_eq!(legacy_backfill::backoff(0), Duration::from_secs(30));
    assert_eq!(legacy_backfill::backoff(30), Duration::from_secs(3600));

    // The follow-up resolves it and queues nothing more.
    let report = execute_job(&app, &LegacyBackfill { round: 1 }).await;
    assert_eq!(report.resolved, 1);
    assert_eq!(mapping(&app, legacy.accounts[0]).await, mapped_to(&item, 0));
    assert_eq!(backfill_jobs(&app).await.len(), 2);
    assert_eq!(guard(&app).await, None);

    // An operator re-opens the secret while the guard names a dead job: the
    // stale guard does not block the next run.
    sqlx::query("update apalis.jobs set status = 'Killed' where job_type = $1")
        .bind(QUEUE)
        .execute(&app.pool)
        .await
        .unwrap();
    let dead = &backfill_jobs(&app).await[0].0;
    sqlx::query("insert into legacy_backfill_job (task_id) values ($1)")
        .bind(dead)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "update legacy_backfill set status = 'pending', finished_at = null, error_code = null where secret_ref = $1",
    )
    .bind(&legacy.secret_ref)
    .execute(&app.pool)
    .await
    .unwrap();
    migrate_all(&app.pool).await.unwrap();
    let jobs = backfill_jobs(&app).await;
    assert_eq!(jobs.len(), 3, "a fresh job replaces the dead one");
    assert_ne!(guard(&app).await.as_deref(), Some(dead.as_str()));
    app.stop().await;
}

#[tokio::test]
async fn an_existing_item_is_reused_another_users_item_is_refused_and_ambiguous_accounts_stay_unmapped() {
    let app = TestApp::spawn_with(|_| {}, Role::Api).await;
    let (alice, _) = app.user_with_token("alice@example.com").await;
    let (_, bob_token) = app.user_with_token("bob@example.com").await;

    // Alice's Item is already in plaid_items (no secret, no mappings yet).
    let known = app.sim.create_item(ItemSpec::default());
    let known_id: i64 = sqlx::query_scalar(
        "insert into plaid_items (user_id, item_id, sync_status) values ($1, $2, 'active') returning id",
    )
    .bind(alice.id)
    .bind(&known.item_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let reused = seed_legacy(
        &app,
        alice.id,
        &known.access_token,
        &[("Plaid Checking", Some("0000")), ("Plaid Saving", Some("1111"))],
    )
    .await;
    // Bob linked an Item under the new flow; a legacy secret of Alice's opens it.
    let bobs = link_new_item(&app, &bob_token).await;
    let bobs_item = bobs["item_id"].as_str().unwrap().to_owned();
    let bobs_token = app.sim.item(&bobs_item).unwrap().access_token;
    let bobs_before = item_view(&app, &bobs_item).await;
    let stolen = seed_legacy(&app, alice.id, &bobs_token, &[("Plaid Checking", Some("0000"))]).await;
    // Two identical legacy rows for one Plaid account: which is which is unknowable.
    let twins = app.sim.create_item(ItemSpec::default());
    let ambiguous = seed_legacy(
        &app,
        alice.id,
        &twins.access_token,
        &[
            ("Plaid Checking", Some("0000")),
            ("Plaid Checking", Some("0000")),
            ("Plaid Saving", Some("1111")),
        ],
    )
    .await;

    // Act
    migrate_all(&app.pool).await.unwrap();
    let report = run_backfill(&app).await;

    // Assert
    assert_eq!((report.resolved, report.failed), (2, 1), "{report:?}");
    // Reused: same row, the legacy secret adopted, accounts mapped.
    let (count, secret_ref): (i64, Option<String>) =
        sqlx::query_as("select count(*), max(secret_ref) from plaid_items where item_id = $1")
            .bind(&known.item_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!((count, secret_ref), (1, Some(reused.secret_ref.clone())));
    assert_eq!(
        backfill_row(&app, &reused.secret_ref).await,
        ("resolved".to_owned(), None, Some(known_id), 0)
    );
    assert_eq!(mapping(&app, reused.accounts[0]).await, mapped_to(&known, 0));
    assert_eq!(mapping(&app, reused.accounts[1]).await, mapped_to(&known, 1));
    // Refused: Bob's item is untouched and Alice's account unmapped.
    let (status, code, _, _) = backfill_row(&app, &stolen.secret_ref).await;
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("failed", Some("item_owned_by_another_user"))
    );
    assert_eq!(mapping(&app, stolen.accounts[0]).await, None);
    let bobs_after = item_view(&app, &bobs_item).await;
    assert_eq!(bobs_after, bobs_before);
    // Ambiguous twins stay unmapped; the unique one is mapped.
    assert_eq!(mapping(&app, ambiguous.accounts[0]).await, None);
    assert_eq!(mapping(&app, ambiguous.accounts[1]).await, None);
    assert_eq!(mapping(&app, ambiguous.accounts[2]).await, mapped_to(&twins, 1));
    let (status, _, item, unmatched) = backfill_row(&app, &ambiguous.secret_ref).await;
    assert_eq!(
        (status.as_str(), item.is_some(), unmatched),
        ("resolved", true, 2)
    );

    let (code, out) = plaid_sync(&app, &["check", "backfill"]).await;
    assert_eq!(code, 1, "{out}");
    assert_eq!(figure(&out, "unmapped"), 3);
    assert_eq!(figure(&out, "with_item"), 5, "the twins' item is known");
    assert!(
        out.contains(&format!(
            "unmapped account {} (user {}, \"Plaid Checking\", mask 0000): secret {}: no unique Plaid account matches it",
            ambiguous.accounts[0], alice.id, ambiguous.secret_ref
        )),
        "{out}"
    );
    app.stop().await;
}

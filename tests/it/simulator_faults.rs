//! Fault injection against the simulator: rate limits, queued errors, latency and chaos.

use std::time::{Duration, Instant};

use plaid_simulator::{Chaos, Fault, FaultError, ItemSpec, Latency, PlaidError};
use reqwest::Method;
use serde_json::json;

use crate::simulator_support::{CLIENT_ID, SECRET, start, start_with};

#[tokio::test]
async fn simulator_rate_limits_sync_per_item() {
    let sim = start_with(|c| c.sync_rate_limit = Some(5)).await;
    let a = sim.handle.create_item(ItemSpec::ready());
    let b = sim.handle.create_item(ItemSpec::ready());

    for _ in 0..5 {
        assert_eq!(sim.sync(&a.access_token, "", None).await.0, 200);
    }
    let (status, err) = sim.sync(&a.access_token, "", None).await;
    assert_eq!(status, 429);
    assert_eq!(err["error_type"], "RATE_LIMIT_EXCEEDED");
    assert_eq!(err["error_code"], "TRANSACTIONS_SYNC_LIMIT");
    // Other items and other endpoints are unaffected.
    assert_eq!(sim.sync(&b.access_token, "", None).await.0, 200);
    sim.ok("/item/get", json!({"access_token": a.access_token})).await;

    // The default is Plaid's 50/min, and the limit can be changed at runtime.
    assert_eq!(start().await.handle.sync_rate_limit(), Some(50));
    let (status, body) = sim
        .control(Method::POST, "/rate_limit", json!({"sync_per_window": null}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(sim.sync(&a.access_token, "", None).await.0, 200);
}

#[tokio::test]
async fn simulator_injected_faults_fail_the_next_n_matching_calls() {
    let sim = start().await;
    let item = sim.handle.create_item(ItemSpec::ready());
    let other = sim.handle.create_item(ItemSpec::ready());
    let mut custom = PlaidError::custom("API_ERROR", "PLANNED_MAINTENANCE", "down for a bit");
    custom.display_message = Some("Try later".into());
    let kinds = [
        (
            FaultError::internal_server_error(),
            500,
            "API_ERROR",
            "INTERNAL_SERVER_ERROR",
        ),
        (
            FaultError::sync_rate_limit(),
            429,
            "RATE_LIMIT_EXCEEDED",
            "TRANSACTIONS_SYNC_LIMIT",
        ),
        (
            FaultError::institution_down(),
            400,
            "INSTITUTION_ERROR",
            "INSTITUTION_DOWN",
        ),
        (
            FaultError::item_login_required(),
            400,
            "ITEM_ERROR",
            "ITEM_LOGIN_REQUIRED",
        ),
        (
            FaultError::Custom {
                status: 503,
                error: custom,
            },
            503,
            "API_ERROR",
            "PLANNED_MAINTENANCE",
        ),
    ];
    for (error, status, error_type, code) in kinds {
        sim.handle
            .inject_fault(
                Fault::new(error, 2)
                    .on_endpoint("/transactions/sync")
                    .for_item(&item.item_id),
            )
            .unwrap();
        // Non-matching calls pass and do not consume the fault.
        assert_eq!(sim.sync(&other.access_token, "", None).await.0, 200);
        sim.ok("/accounts/get", json!({"access_token": item.access_token}))
            .await;
        for _ in 0..2 {
            let (got, err) = sim.sync(&item.access_token, "", None).await;
            assert_eq!(got, status, "{err}");
            assert_eq!(err["error_type"], error_type);
            assert_eq!(err["error_code"], code);
        }
        assert_eq!(
            sim.sync(&item.access_token, "", None).await.0,
            200,
            "only 2 failures for {code}"
        );
    }
    // The item itself was never put in error: faults are per call.
    assert_eq!(sim.handle.item(&item.item_id).unwrap().error_code, None);
    let failed: Vec<String> = sim
        .handle
        .calls()
        .iter()
        .filter(|c| c.item_id.as_deref() == Some(item.item_id.as_str()) && c.status != 200)
        .map(|c| c.error_code.clone().unwrap())
        .collect();
    assert_eq!(failed.len(), 10);
    assert!(
        sim.handle
            .inject_fault(Fault::new(FaultError::Code("NOPE".into()), 1))
            .is_err()
    );
}

#[tokio::test]
async fn simulator_faults_can_be_injected_over_http() {
    let sim = start().await;
    let item = sim.handle.create_item(ItemSpec::ready());
    let (status, view) = sim
        .control(
            Method::POST,
            "/faults",
            json!({"error": "INSTITUTION_DOWN", "times": 1, "endpoint": "/item/get"}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["faults"][0]["times"], 1);
    let (_, code) = sim
        .err("/item/get", json!({"access_token": item.access_token}))
        .await;
    assert_eq!(code, "INSTITUTION_DOWN");
    sim.ok("/item/get", json!({"access_token": item.access_token}))
        .await;

    let (status, _) = sim
        .control(Method::POST, "/faults", json!({"error": "NOT_A_CODE"}))
        .await;
    assert_eq!(status, 400);
    let (_, view) = sim.control(Method::DELETE, "/faults", json!({})).await;
    assert_eq!(view["faults"], json!([]));
}

#[tokio::test]
async fn simulator_latency_delays_responses_after_applying_them() {
    let sim = start().await;
    let item = sim.handle.create_item(ItemSpec::ready());
    sim.handle.set_latency(Some(Latency {
        millis: 400,
        endpoint: Some("/item/remove".into()),
    }));

    // A client with a short timeout gives up...
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let result = impatient
        .post(sim.url("/item/remove"))
        .header("PLAID-CLIENT-ID", CLIENT_ID)
        .header("PLAID-SECRET", SECRET)
        .json(&json!({"access_token": item.access_token}))
        .send()
        .await;
    assert!(result.unwrap_err().is_timeout());
    // ...but the removal happened, as it can with the real API.
    assert!(sim.handle.item(&item.item_id).unwrap().removed);

    // Other endpoints are not delayed; the delayed one takes at least the latency.
    let other = sim.handle.create_item(ItemSpec::ready());
    let started = Instant::now();
    sim.ok("/item/get", json!({"access_token": other.access_token}))
        .await;
    assert!(started.elapsed() < Duration::from_millis(400));
    let started = Instant::now();
    sim.ok("/item/remove", json!({"access_token": other.access_token}))
        .await;
    assert!(started.elapsed() >= Duration::from_millis(400));
}

#[tokio::test]
async fn simulator_chaos_failures_are_reproducible_for_a_seed() {
    async fn pattern(seed: u64) -> Vec<u16> {
        let sim = start().await;
        let item = sim.handle.create_item(ItemSpec::ready());
        sim.handle
            .set_chaos(Some(Chaos {
                failure_rate: 0.3,
                seed,
                errors: vec![
                    FaultError::internal_server_error(),
                    FaultError::institution_down(),
                ],
                endpoints: Some(vec!["/item/get".into()]),
            }))
            .unwrap();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(
                sim.call("/item/get", json!({"access_token": item.access_token}))
                    .await
                    .0,
            );
        }
        // Endpoints outside the list never fail.
        for _ in 0..10 {
            sim.ok("/accounts/get", json!({"access_token": item.access_token}))
                .await;
        }
        statuses
    }
    let first = pattern(5).await;
    assert_eq!(first, pattern(5).await);
    assert_ne!(first, pattern(6).await);
    let failures = first.iter().filter(|s| **s != 200).count();
    assert!(
        (3..=25).contains(&failures),
        "{failures} failures of 40 at rate 0.3"
    );
    assert!(first.contains(&500) || first.contains(&400));
}

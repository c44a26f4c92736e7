//! The fuzz target's property, deterministic and cheap enough for CI: seeded
//! random mutations of a validly signed webhook (HMAC or Plaid's JWT), and pure
//! random headers and bodies, are never accepted and never stored.
//!
//! Every mutation changes what is signed or the signature itself (a body byte,
//! the timestamp, a signature digit, a JWT segment), so none can be a
//! legitimate equivalent of the original. `WEBHOOK_MUTATION_CASES` and
//! `WEBHOOK_MUTATION_SEED` change the run; a failure prints its case and seed.

use std::collections::BTreeMap;

use plaid_sync::http::webhooks::hmac_sig;
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::StatusCode;

use crate::support::{
    TestApp,
    plaid::{event_count, post_webhook, seed_item, sync_updates},
};

const SECRET: &str = "whsec-mutations";
const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const HEX: &[u8] = b"0123456789abcdef";

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A byte of `bytes` changed, inserted or removed, or the body re-serialised,
/// padded or truncated: always different bytes.
fn mutate_body(rng: &mut StdRng, body: &[u8]) -> (Vec<u8>, &'static str) {
    let mut out = body.to_vec();
    let at = rng.gen_range(0..out.len());
    let kind = match rng.gen_range(0..7) {
        0 => {
            out[at] ^= 1 << rng.gen_range(0..8);
            "flip a bit"
        }
        1 => {
            out.insert(at, rng.r#gen());
            "insert a byte"
        }
        2 => {
            out.remove(at);
            "delete a byte"
        }
        3 => {
            out.extend_from_slice(if rng.gen_bool(0.5) { b"\n" } else { b" " });
            "append whitespace"
        }
        4 => {
            out.truncate(at);
            "truncate"
        }
        5 => {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap();
            out = serde_json::to_vec(&value).unwrap();
            "re-serialise compactly"
        }
        _ => {
            out.extend_from_slice(body);
            "repeat the body"
        }
    };
    (out, kind)
}

/// A different character from `alphabet` at `at`.
fn replace_char(rng: &mut StdRng, text: &mut [u8], at: usize, alphabet: &[u8]) {
    let original = text[at].to_ascii_lowercase();
    loop {
        let c = alphabet[rng.gen_range(0..alphabet.len())];
        if c.to_ascii_lowercase() != original {
            text[at] = c;
            return;
        }
    }
}

/// `t=<t>,v1=<hex>` with its timestamp or its signature changed.
fn mutate_hmac(rng: &mut StdRng, header: &str) -> (String, &'static str) {
    let (t, sig) = header.split_once(",v1=").unwrap();
    let t: i64 = t.trim_start_matches("t=").parse().unwrap();
    match rng.gen_range(0..5) {
        0 => {
            let shift = rng.gen_range(1..299) * if rng.gen_bool(0.5) { 1 } else { -1 };
            (format!("t={},v1={sig}", t + shift), "shift the timestamp")
        }
        1 => {
            let mut sig = sig.as_bytes().to_vec();
            let at = rng.gen_range(0..sig.len());
            replace_char(rng, &mut sig, at, HEX);
            (
                format!("t={t},v1={}", String::from_utf8(sig).unwrap()),
                "change a digit",
            )
        }
        2 => {
            let keep = rng.gen_range(0..sig.len());
            (format!("t={t},v1={}", &sig[..keep]), "truncate the signature")
        }
        3 => (format!("t={t},v0={sig}"), "rename the scheme"),
        _ => (format!("v1={sig}"), "drop the timestamp"),
    }
}

/// A JWT with one character of a segment changed (never the signature's last
/// character, whose low bits base64 may ignore), a segment dropped, or `alg: none`.
fn mutate_jwt(rng: &mut StdRng, token: &str) -> (String, &'static str) {
    let parts: Vec<&str> = token.split('.').collect();
    match rng.gen_range(0..5) {
        segment @ 0..=2 => {
            let mut bytes = parts[segment].as_bytes().to_vec();
            let last = if segment == 2 {
                bytes.len() - 1
            } else {
                bytes.len()
            };
            let at = rng.gen_range(0..last);
            let original = bytes[at];
            loop {
                replace_char(rng, &mut bytes, at, BASE64URL);
                if bytes[at] != original {
                    break;
                }
            }
            let mut out: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
            out[segment] = String::from_utf8(bytes).unwrap();
            (
                out.join("."),
                ["change the header", "change the claims", "change the signature"][segment],
            )
        }
        3 => (format!("{}.{}.", parts[0], parts[1]), "drop the signature"),
        _ => (format!("eyJhbGciOiJub25lIn0.{}.", parts[1]), "alg none"),
    }
}

fn random_printable(rng: &mut StdRng, max: usize) -> String {
    let len = rng.gen_range(0..max);
    (0..len).map(|_| rng.gen_range(0x20u8..0x7f) as char).collect()
}

#[tokio::test]
async fn seeded_mutations_of_signed_webhooks_are_never_accepted() {
    let app = TestApp::spawn_with(
        |v| drop(v.insert("PLAID_WEBHOOK_SECRET".into(), SECRET.into())),
        plaid_sync::cli::Role::Api,
    )
    .await;
    let (user, _) = app.user_with_token("a@example.com").await;
    let (item_id, _) = seed_item(&app, user.id).await;
    let hook = app.sim.build_webhook(&item_id, &sync_updates()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let hmac = hmac_sig::sign(&hook.body, SECRET.as_bytes(), now);
    let (cases, seed) = (
        env_u64("WEBHOOK_MUTATION_CASES", 3000),
        env_u64("WEBHOOK_MUTATION_SEED", 20261128),
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let started = std::time::Instant::now();
    for case in 0..cases {
        let jwt_scheme = rng.gen_bool(0.5);
        let (header_name, original) = if jwt_scheme {
            ("plaid-verification", hook.verification.clone())
        } else {
            (hmac_sig::HEADER, hmac.clone())
        };
        let (mut body, mut header) = (hook.body.clone(), original.clone());
        let what: Vec<&str>;
        match rng.gen_range(0..10) {
            0..=3 => {
                let (b, kind) = mutate_body(&mut rng, &body);
                (body, what) = (b, vec![kind]);
            }
            4..=7 => {
                let (h, kind) = if jwt_scheme {
                    mutate_jwt(&mut rng, &header)
                } else {
                    mutate_hmac(&mut rng, &header)
                };
                (header, what) = (h, vec![kind]);
            }
            8 => {
                let (b, body_kind) = mutate_body(&mut rng, &body);
                let (h, header_kind) = if jwt_scheme {
                    mutate_jwt(&mut rng, &header)
                } else {
                    mutate_hmac(&mut rng, &header)
                };
                (body, header, what) = (b, h, vec![body_kind, header_kind]);
            }
            _ => {
                body = random_printable(&mut rng, 512).into_bytes();
                header = random_printable(&mut rng, 200);
                what = vec!["random header and body"];
            }
        }
        if body == hook.body && header == original {
            continue; // a no-op mutation (cannot happen by construction, but never count it)
        }
        let (status, answer) = post_webhook(&app, &body, &[(header_name, &header)]).await;
        let refused = status == StatusCode::UNAUTHORIZED
            || (status == StatusCode::SERVICE_UNAVAILABLE && answer["error"] == "verification_unavailable");
        assert!(
            refused,
            "case {case} (seed {seed}): {what:?} via {header_name} was answered {status} {answer}"
        );
        *outcomes
            .entry(format!(
                "{} {}",
                status.as_u16(),
                answer["message"].as_str().unwrap_or("")
            ))
            .or_default() += 1;
    }
    println!(
        "{cases} mutations (seed {seed}) in {:?}: {outcomes:#?}",
        started.elapsed()
    );
    assert_eq!(event_count(&app).await, 0, "a mutated webhook was stored");

    // Control: the unmutated originals are accepted, so the refusals were the mutations'.
    let (status, _) = post_webhook(&app, &hook.body, &[("plaid-verification", &hook.verification)]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = post_webhook(&app, &hook.body, &[(hmac_sig::HEADER, &hmac)]).await;
    assert_eq!(
        (status, answer["status"].as_str()),
        (StatusCode::OK, Some("duplicate"))
    );
    app.stop().await;
}

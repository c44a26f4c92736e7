//! Random headers and bodies into `POST /webhook/plaid` of a running service.
//!
//! Property: the service never panics, never answers 5xx for a verified body,
//! and never accepts what it did not verify: an input the harness did not sign
//! must be refused (401, or 503 `verification_unavailable` when the key-fetch
//! budget is spent), whatever its headers.
//!
//! Input format (so the seed corpus is readable, valid-looking webhooks):
//! header lines `Name: value`, an empty line, then the body. Two pseudo-headers
//! steer the harness:
//! - `@sign: hmac` signs the body with the configured secret (verification then
//!   passes, so parsing and storing are fuzzed: 200 for a JSON object, 400
//!   `invalid_json` otherwise, nothing else);
//! - `@jwt: <claims>.<signature>` sends a `Plaid-Verification` JWT whose header
//!   names the simulator's real key (ES256, right `kid`), so the fuzzed claims
//!   and signature reach the ECDSA check instead of stopping at an unknown key.
//!
//! `{now}` in a header value is replaced by the current unix time, so stored
//! seeds keep passing the timestamp window and reach the MAC comparison.

#![no_main]

use libfuzzer_sys::fuzz_target;
use plaid_sync::http::{text_guard::has_nul, webhooks::hmac_sig};
use plaid_sync_fuzz::{WEBHOOK_SECRET, harness};

/// What the harness sends for one input.
struct Request {
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    signed: bool,
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn parse(data: &[u8], now: i64, kid: &str) -> Request {
    let split = data.windows(2).position(|w| w == b"\n\n");
    let (head, body) = match split {
        Some(at) => (&data[..at], data[at + 2..].to_vec()),
        None => (data, Vec::new()),
    };
    let mut request = Request {
        headers: Vec::new(),
        body,
        signed: false,
    };
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = String::from_utf8_lossy(&line[..colon])
            .trim()
            .to_ascii_lowercase();
        let raw = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        let value = String::from_utf8_lossy(raw).replace("{now}", &now.to_string());
        match name.as_str() {
            "@sign" => request.signed = true,
            "@jwt" => {
                let header = format!(r#"{{"alg":"ES256","kid":"{kid}","typ":"JWT"}}"#);
                let token = format!("{}.{value}", base64url(header.as_bytes()));
                request
                    .headers
                    .push(("plaid-verification".into(), token.into_bytes()));
            }
            _ => request.headers.push((name, value.into_bytes())),
        }
    }
    if request.signed {
        // Only our signature: a fuzzed Plaid-Verification next to it must not matter.
        request.headers.retain(|(name, _)| name != hmac_sig::HEADER);
        let signature = hmac_sig::sign(&request.body, WEBHOOK_SECRET.as_bytes(), now);
        request
            .headers
            .push((hmac_sig::HEADER.into(), signature.into_bytes()));
    }
    request
}

fuzz_target!(|data: &[u8]| {
    let harness = harness();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64;
    let request = parse(data, now, &harness.kid);
    let mut builder = harness
        .client
        .post(&harness.webhook_url)
        .body(request.body.clone());
    for (name, value) in &request.headers {
        // Bytes no HTTP client could send are not an input the service can receive.
        let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(name.as_bytes()),
            reqwest::header::HeaderValue::from_bytes(value),
        ) else {
            continue;
        };
        builder = builder.header(name, value);
    }
    let (status, answer) = harness.runtime.block_on(async {
        let response = builder
            .send()
            .await
            .expect("the service answers (a crash or hang is a finding)");
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        (status, answer)
    });
    let code = answer["error"].as_str().unwrap_or("");
    if request.signed {
        let parsed = serde_json::from_slice::<serde_json::Value>(&request.body).ok();
        let is_object = parsed.as_ref().is_some_and(serde_json::Value::is_object);
        // Found by this target: jsonb cannot store NUL, so a verified object
        // holding one is a 400 `invalid_text` (it was a 500).
        let expected = if is_object && parsed.as_ref().is_some_and(has_nul) {
            (400, "invalid_text")
        } else if is_object {
            (200, "")
        } else {
            (400, "invalid_json")
        };
        assert_eq!(
            (status, code),
            expected,
            "a verified body answered {status} {answer}"
        );
    } else {
        assert!(
            status == 401 || (status == 503 && code == "verification_unavailable"),
            "an unsigned input was not refused: {status} {answer}"
        );
    }
});

//! The HMAC scheme: `X-Webhook-Signature: t=<unix seconds>,v1=<hex>` carrying
//! `hex(HMAC-SHA256(secret, "<t>.<raw body>"))`, with `t` within the tolerance.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::verify::Rejection;

/// The header name.
pub const HEADER: &str = "x-webhook-signature";

/// Verifies `header` for `body` at unix time `now`.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &[u8],
    now: i64,
    tolerance_secs: i64,
) -> Result<(), Rejection> {
    let (mut timestamp, mut signatures) = (None, Vec::new());
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(Rejection::Malformed)?;
    if signatures.is_empty() {
        return Err(Rejection::Malformed);
    }
    if (now - timestamp).abs() > tolerance_secs {
        return Err(Rejection::Stale);
    }
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).map_err(|_| Rejection::Malformed)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    // Several v1 values allow a secret rotation window on the sender's side.
    let ok = signatures
        .iter()
        .any(|sig| hex::decode(sig).is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok()));
    if ok { Ok(()) } else { Err(Rejection::BadSignature) }
}

/// Builds a header value (for tests, the simulator and senders of our own).
pub fn sign(body: &[u8], secret: &[u8], timestamp: i64) -> String {
    let mut mac = <Hmac<Sha256>>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={timestamp},v1={}", hex::encode(mac.finalize().into_bytes()))
}

//! `POST /webhook/plaid`: verify on the raw bytes, store, mark, enqueue, answer.
//!
//! The order is the contract: the signature is checked on the exact bytes
//! received (never a re-serialisation), then the body is parsed, then one
//! transaction stores the event and requests the item's sync. A 200 is only
//! sent after that transaction commits, so every 200 means "durably stored".

pub mod hmac_sig;
pub mod jwt;
pub mod keys;
pub mod receive;
pub mod verify;

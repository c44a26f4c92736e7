//! Money as Plaid sent it.

use std::{fmt, str::FromStr};

use serde::{
    Deserialize, Deserializer,
    de::{self, Visitor},
};

/// A decimal amount, kept as a plain decimal string (`"72.1"`, `"-0.01"`,
/// `"23631.9805"`, never an exponent) so it goes into a `numeric` column
/// unchanged.
///
/// Plaid sends amounts as JSON numbers with `format: double` and any number
/// of decimal places (PLAID.md §1 "Money and strings"). Our `serde_json`
/// build has no `arbitrary_precision`, so the parser reads a number as the
/// nearest `f64`; we then print that `f64` with Rust's shortest round-trip
/// formatting, which gives back exactly the digits a double-based sender
/// wrote (`72.1` stays `72.1`, not `72.099999999999994315658`). Doing any
/// arithmetic on an `f64` first is what would lose precision, so the typed
/// field never is one.
///
/// Equality compares the text: `"72.10"` and `"72.1"` differ. Amounts parsed
/// from JSON numbers are always in the shortest form, so two parses of the
/// same value are equal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Amount(String);

/// The text given to [`Amount::from_str`] is not a plain decimal number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal amount (expected digits, an optional '-' and an optional fraction)")]
pub struct InvalidAmount;

impl Amount {
    /// The decimal text, ready to bind as `$1::numeric`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The nearest `f64`, for display or rough comparisons only.
    pub fn to_f64(&self) -> f64 {
        // The text is validated on construction, so it always parses.
        self.0.parse().unwrap_or(f64::NAN)
    }

    fn from_f64(value: f64) -> Option<Self> {
        // `Display` for f64 is the shortest string that parses back to the
        // same value, and never uses exponent notation.
        value.is_finite().then(|| Self(value.to_string()))
    }
}

impl FromStr for Amount {
    type Err = InvalidAmount;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let digits = text.strip_prefix('-').unwrap_or(text);
        let (whole, fraction) = match digits.split_once('.') {
            Some((whole, fraction)) => (whole, Some(fraction)),
            None => (digits, None),
        };
        let all_digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        if all_digits(whole) && fraction.is_none_or(all_digits) {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidAmount)
        }
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl Visitor<'_> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a decimal number")
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Amount, E> {
        Ok(Amount(value.to_string()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Amount, E> {
        Ok(Amount(value.to_string()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Amount, E> {
        Amount::from_f64(value).ok_or_else(|| E::custom("amount is not a finite number"))
    }

    // Not what Plaid sends today, but a decimal string is the one other
    // lossless way a sender could encode money.
    fn visit_str<E: de::Error>(self, value: &str) -> Result<Amount, E> {
        value.parse().map_err(E::custom)
    }
}

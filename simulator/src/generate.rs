//! Deterministic synthetic transaction histories.

use chrono::{Duration, NaiveDate};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::model::{NewTransaction, PersonalFinanceCategory};

/// How to generate a history. The same spec (seed, dates, account count) always yields the same
/// transactions apart from their ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistorySpec {
    /// Number of transactions.
    pub count: usize,
    /// RNG seed.
    pub seed: u64,
    /// Latest date (default: today, UTC).
    #[serde(default)]
    pub end_date: Option<NaiveDate>,
    /// Days of history before `end_date` (default 90, Plaid's default `days_requested`).
    #[serde(default = "default_days")]
    pub days: u32,
    /// Share of transactions in the last 5 days that are pending (default 0.3).
    #[serde(default = "default_pending_ratio")]
    pub pending_ratio: f64,
}

fn default_days() -> u32 {
    90
}
fn default_pending_ratio() -> f64 {
    0.3
}

impl HistorySpec {
    /// `count` transactions over the last 90 days with the given seed.
    pub fn new(count: usize, seed: u64) -> Self {
        HistorySpec {
            count,
            seed,
            end_date: None,
            days: default_days(),
            pending_ratio: default_pending_ratio(),
        }
    }
}

/// (name, merchant, primary category, detailed category, channel, min amount, max amount)
type Template = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static str,
    &'static str,
    f64,
    f64,
);

const TEMPLATES: &[Template] = &[
    (
        "Starbucks",
        Some("Starbucks"),
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_COFFEE",
        "in store",
        3.0,
        12.0,
    ),
    (
        "PURCHASE WM SUPERCENTER #1700",
        Some("Walmart"),
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_SUPERSTORES",
        "in store",
        10.0,
        180.0,
    ),
    (
        "Uber 063015 SF**POOL**",
        Some("Uber"),
        "TRANSPORTATION",
        "TRANSPORTATION_TAXIS_AND_RIDE_SHARES",
        "online",
        6.0,
        45.0,
    ),
    (
        "AMAZON MKTPLACE PMTS",
        Some("Amazon"),
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES",
        "online",
        5.0,
        250.0,
    ),
    (
        "SparkFun",
        Some("SparkFun"),
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_ELECTRONICS",
        "online",
        20.0,
        120.0,
    ),
    (
        "McDonald's",
        Some("McDonald's"),
        "FOOD_AND_DRINK",
        "FOOD_AND_DRINK_FAST_FOOD",
        "in store",
        4.0,
        25.0,
    ),
    (
        "Netflix",
        Some("Netflix"),
        "ENTERTAINMENT",
        "ENTERTAINMENT_TV_AND_MOVIES",
        "online",
        15.49,
        15.49,
    ),
    (
        "Shell Oil 57444",
        Some("Shell"),
        "TRANSPORTATION",
        "TRANSPORTATION_GAS",
        "in store",
        25.0,
        90.0,
    ),
    (
        "CITY UTILITIES AUTOPAY",
        None,
        "RENT_AND_UTILITIES",
        "RENT_AND_UTILITIES_GAS_AND_ELECTRICITY",
        "other",
        60.0,
        160.0,
    ),
    (
        "ACH Electronic CreditGUSTO PAY 123456",
        None,
        "INCOME",
        "INCOME_WAGES",
        "other",
        -2500.0,
        -1500.0,
    ),
    (
        "INTRST PYMNT",
        None,
        "INCOME",
        "INCOME_INTEREST_EARNED",
        "other",
        -5.0,
        -0.5,
    ),
    (
        "CREDIT CARD 3333 PAYMENT *//",
        None,
        "LOAN_PAYMENTS",
        "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT",
        "other",
        -500.0,
        -25.0,
    ),
];

/// Builds the transactions (without ids) for `account_ids`; each picks its account at random.
pub(crate) fn generate(spec: &HistorySpec, account_ids: &[String], today: NaiveDate) -> Vec<NewTransaction> {
    if account_ids.is_empty() {
        return Vec::new();
    }
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let end = spec.end_date.unwrap_or(today);
    let days = i64::from(spec.days.max(1));
    (0..spec.count)
        .map(|_| {
            let (name, merchant, primary, detailed, channel, min, max) =
                TEMPLATES[rng.gen_range(0..TEMPLATES.len())];
            let account = &account_ids[rng.gen_range(0..account_ids.len())];
            let raw = if min < max { rng.gen_range(min..max) } else { min };
            let amount = (raw * 100.0).round() / 100.0;
            let age = rng.gen_range(0..days);
            let date = end - Duration::days(age);
            let pending = age < 5 && rng.gen_bool(spec.pending_ratio.clamp(0.0, 1.0));
            let authorized = date - Duration::days(rng.gen_range(0..3).min(age.max(0)));
            NewTransaction {
                account_id: account.clone(),
                amount,
                date,
                name: name.to_owned(),
                pending,
                merchant_name: merchant.map(str::to_owned),
                authorized_date: Some(if pending { date } else { authorized }),
                payment_channel: Some(channel.to_owned()),
                personal_finance_category: Some(PersonalFinanceCategory {
                    primary: primary.to_owned(),
                    detailed: detailed.to_owned(),
                    confidence_level: Some("VERY_HIGH".to_owned()),
                }),
                iso_currency_code: None,
                transaction_id: None,
                pending_transaction_id: None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_history() {
        let accounts = vec!["a".to_owned(), "b".to_owned()];
        let today = NaiveDate::from_ymd_opt(2025, 6, 1).unwrap();
        let spec = HistorySpec::new(200, 9);
        let one = generate(&spec, &accounts, today);
        assert_eq!(one, generate(&spec, &accounts, today));
        assert_ne!(one, generate(&HistorySpec::new(200, 10), &accounts, today));
        assert!(one.iter().any(|t| t.pending) && one.iter().any(|t| !t.pending));
        assert!(one.iter().all(|t| t.date <= today));
    }
}

//! Cron expressions as operators write them.
//!
//! Accepted: the standard 5-field crontab (`minute hour day month weekday`,
//! weekdays 0-6 with Sunday 0, 7 also Sunday, names `MON`..), the 6-field form
//! with seconds first (`0 */30 * * * *`), and a 7th field for the year.
//! Parsed by `croner` (POSIX/Vixie semantics: when both day-of-month and
//! weekday are restricted, either matches). All times are UTC.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::Cron;

/// A parsed schedule.
#[derive(Clone)]
pub struct CronSchedule {
    cron: Cron,
    text: String,
}

/// An expression that is not a schedule; the message says why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CronError(String);

impl FromStr for CronSchedule {
    type Err = CronError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fields = text.split_whitespace().count();
        if !(5..=7).contains(&fields) && !text.trim_start().starts_with('@') {
            return Err(CronError(format!(
                "{fields} fields; expected 5 (minute hour day month weekday) or 6 (seconds first)"
            )));
        }
        let cron = Cron::from_str(text).map_err(|e| CronError(e.to_string()))?;
        Ok(Self {
            cron,
            text: text.trim().to_owned(),
        })
    }
}

impl CronSchedule {
    /// The first tick strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_next_occurrence(&t, false).ok()
    }

    /// The latest tick at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron.find_previous_occurrence(&t, true).ok()
    }

    /// The ticks strictly after `t`, in order.
    pub fn ticks_after(&self, t: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> + '_ {
        std::iter::successors(self.next_after(t), move |&tick| self.next_after(tick))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({:?})", self.text)
    }
}

impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
    }

    #[test]
    fn five_fields_are_standard_crontab_with_sunday_zero() {
        // 2026-12-07 is a Monday.
        let monday_three = CronSchedule::from_str("0 3 * * 1").unwrap();
        let next = monday_three.next_after(utc(2026, 12, 7, 4, 0, 0)).unwrap();
        assert_eq!(next, utc(2026, 12, 14, 3, 0, 0));
        assert_eq!(next.weekday(), Weekday::Mon);

        let sunday = CronSchedule::from_str("30 6 * * 0").unwrap();
        assert_eq!(
            sunday.next_after(utc(2026, 12, 7, 0, 0, 0)),
            Some(utc(2026, 12, 13, 6, 30, 0))
        );
        let sunday_seven = CronSchedule::from_str("30 6 * * 7").unwrap();
        assert_eq!(
            sunday_seven.next_after(utc(2026, 12, 7, 0, 0, 0)),
            Some(utc(2026, 12, 13, 6, 30, 0))
        );
    }

    #[test]
    fn six_fields_have_seconds_first_and_seven_a_year() {
        let half_hourly = CronSchedule::from_str("0 */30 * * * *").unwrap();
        let ticks: Vec<_> = half_hourly
            .ticks_after(utc(2026, 12, 7, 10, 5, 0))
            .take(2)
            .collect();
        assert_eq!(
            ticks,
            vec![utc(2026, 12, 7, 10, 30, 0), utc(2026, 12, 7, 11, 0, 0)]
        );

        let every_two = CronSchedule::from_str("*/2 * * * * *").unwrap();
        assert_eq!(
            every_two.next_after(utc(2026, 1, 1, 0, 0, 1)).unwrap().second(),
            2
        );
        assert_eq!(
            every_two.latest_at_or_before(utc(2026, 1, 1, 0, 0, 4)),
            Some(utc(2026, 1, 1, 0, 0, 4))
        );
        assert_eq!(
            every_two.latest_at_or_before(utc(2026, 1, 1, 0, 0, 5)),
            Some(utc(2026, 1, 1, 0, 0, 4))
        );

        let once = CronSchedule::from_str("0 0 0 1 1 * 2099").unwrap();
        assert_eq!(
            once.next_after(utc(2026, 1, 1, 0, 0, 0)),
            Some(utc(2099, 1, 1, 0, 0, 0))
        );
    }

    #[test]
    fn anything_else_is_refused_with_a_reason() {
        for bad in [
            "",
            "* * * *",
            "0 3 * * 8",
            "61 * * * *",
            "0 3 * * MONDAY",
            "every day",
            "* * * * * * * *",
        ] {
            assert!(CronSchedule::from_str(bad).is_err(), "{bad:?} must be refused");
        }
        let err = CronSchedule::from_str("* * * *").unwrap_err().to_string();
        assert!(err.contains("4 fields"), "{err}");
    }
}

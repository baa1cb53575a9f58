//! Working-day arithmetic for promised handling times: Saturdays and Sundays
//! do not count.
//!
//! There is no holiday table (China's adjusted working weekends are published
//! yearly and would need a data source); dates are passed in, never read from
//! the clock.

use time::{Date, Duration, Weekday};

/// Whether `date` is a working day (Monday to Friday).
pub fn is_working_day(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The date `days` working days after `start`; `start` itself does not count,
/// so a case accepted on a Friday with 1 day promised is due on Monday.
/// `days == 0` returns `start`. Saturates at the last representable date.
pub fn add_working_days(start: Date, days: u32) -> Date {
    if days == 0 {
        return start;
    }
    // Working days after a Saturday or Sunday are the same as after the
    // Friday before, and from a working day 5 working days are 7 calendar days.
    let mut date = start;
    while !is_working_day(date) {
        date = date.saturating_sub(Duration::DAY);
    }
    date = date.saturating_add(Duration::weeks(i64::from(days / 5)));
    for _ in 0..days % 5 {
        date = date.saturating_add(Duration::DAY);
        while !is_working_day(date) {
            date = date.saturating_add(Duration::DAY);
        }
    }
    date
}

/// The number of working days in `(from, to]`, negative (the count in
/// `(to, from]`) if `to` is before `from`. Used for "days left" and "days
/// overdue".
pub fn working_days_between(from: Date, to: Date) -> i64 {
    working_days_to(to) - working_days_to(from)
}

/// Working days from a fixed Monday up to and including `date`. Julian day 0
/// is a Monday, so `jd mod 7` is the days since Monday.
fn working_days_to(date: Date) -> i64 {
    let jd = i64::from(date.to_julian_day());
    jd.div_euclid(7) * 5 + (jd.rem_euclid(7) + 1).min(5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn working_days() {
        assert!(is_working_day(date!(2026 - 11 - 27))); // Friday
        assert!(!is_working_day(date!(2026 - 11 - 28)));
        assert!(!is_working_day(date!(2026 - 11 - 29)));
        assert!(is_working_day(date!(2026 - 11 - 30)));
    }

    #[test]
    fn adding() {
        let wed = date!(2026 - 11 - 25);
        assert_eq!(add_working_days(wed, 0), wed);
        assert_eq!(add_working_days(wed, 1), date!(2026 - 11 - 26));
        assert_eq!(add_working_days(wed, 2), date!(2026 - 11 - 27));
        assert_eq!(add_working_days(wed, 3), date!(2026 - 11 - 30)); // over a weekend and month end
        assert_eq!(add_working_days(wed, 5), date!(2026 - 12 - 02));
        assert_eq!(add_working_days(wed, 10), date!(2026 - 12 - 09));
        let fri = date!(2026 - 11 - 27);
        assert_eq!(add_working_days(fri, 1), date!(2026 - 11 - 30));
        assert_eq!(add_working_days(fri, 5), date!(2026 - 12 - 04));
        let sat = date!(2026 - 11 - 28);
        assert_eq!(add_working_days(sat, 0), sat);
        assert_eq!(add_working_days(sat, 1), date!(2026 - 11 - 30));
        assert_eq!(add_working_days(sat, 5), date!(2026 - 12 - 04));
        assert_eq!(
            add_working_days(date!(2026 - 11 - 29), 6),
            date!(2026 - 12 - 07)
        );
        // Year boundary: 2026-12-31 is a Thursday.
        assert_eq!(
            add_working_days(date!(2026 - 12 - 31), 2),
            date!(2027 - 01 - 04)
        );
        assert_eq!(add_working_days(Date::MAX, 3), Date::MAX);
    }

    #[test]
    fn counting_matches_adding() {
        let start = date!(2026 - 12 - 20);
        for days in 0..40 {
            let end = add_working_days(start, days);
            assert_eq!(working_days_between(start, end), i64::from(days), "{end}");
            assert_eq!(working_days_between(end, start), -i64::from(days), "{end}");
        }
    }

    #[test]
    fn counting() {
        let fri = date!(2026 - 11 - 27);
        assert_eq!(working_days_between(fri, fri), 0);
        assert_eq!(working_days_between(fri, date!(2026 - 11 - 29)), 0);
        assert_eq!(working_days_between(fri, date!(2026 - 11 - 30)), 1);
        assert_eq!(
            working_days_between(date!(2026 - 11 - 28), date!(2026 - 11 - 29)),
            0
        );
        assert_eq!(working_days_between(date!(2026 - 11 - 30), fri), -1);
        // 2026 has 261 working days (it starts on a Thursday).
        assert_eq!(
            working_days_between(date!(2025 - 12 - 31), date!(2026 - 12 - 31)),
            261
        );
        assert_eq!(
            working_days_between(date!(1999 - 12 - 31), date!(2000 - 01 - 03)),
            1
        );
    }
}

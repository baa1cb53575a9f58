//! Working-day arithmetic for promised handling times (承诺时限), following the
//! holiday calendar the province publishes in the federation directory.
//!
//! China's working days are not Monday to Friday: every year the State
//! Council publishes public holidays and make-up working days (调休上班, a
//! Saturday or Sunday worked in exchange). The directory carries them year by
//! year (`[[calendar]]`); a [`Calendar`] exists only by parsing those tables,
//! so every one in use has been checked. A date in a year the calendar does
//! not cover counts Monday to Friday, and [`Calendar::uncovered_years`] says
//! when that happened so callers can tell people.
//!
//! Dates are passed in, never read from the clock.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Duration, Weekday};

/// The holidays and make-up working days of the years a directory covers.
/// The default covers no year: every day counts Monday to Friday.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Calendar {
    /// The published years, each with its listed dates.
    years: BTreeMap<i32, Year>,
    /// How each listed date changes the Monday-to-Friday count: -1 for a
    /// holiday on a weekday, +1 for a make-up working day (always a weekend
    /// day). Holidays on a weekend change nothing and are not here.
    deltas: BTreeMap<Date, i8>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Year {
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
}

/// One `[[calendar]]` table as written in `federation.toml`.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    year: i32,
    #[serde(default)]
    holidays: Vec<String>,
    #[serde(default)]
    workdays: Vec<String>,
}

/// Why a `[[calendar]]` table was refused. It reaches callers as the text
/// of a directory parse error, with the line of the table.
#[derive(Debug, thiserror::Error)]
#[error("calendar[{index}]{field}: {reason}")]
struct CalendarError {
    /// Position of the offending `[[calendar]]` table, from 0.
    index: usize,
    /// `.year`, `.holidays`, `.workdays`, or empty for the whole table.
    field: &'static str,
    /// What is wrong, naming the offending value.
    reason: String,
}

const DATE_FORMAT: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

/// Formats a date as `YYYY-MM-DD`.
fn ymd(date: Date) -> String {
    date.format(DATE_FORMAT).unwrap_or_default()
}

impl Calendar {
    /// Builds a calendar from the `[[calendar]]` tables, refusing a year
    /// listed twice, a malformed date, a date outside its table's year, a
    /// date listed twice, a date that is both a holiday and a make-up working
    /// day, and a make-up working day that is Monday to Friday anyway.
    fn from_raw(raw: &[RawYear]) -> Result<Calendar, CalendarError> {
        let mut cal = Calendar::default();
        for (index, table) in raw.iter().enumerate() {
            let err = |field, reason: String| CalendarError {
                index,
                field,
                reason,
            };
            if Date::from_ordinal_date(table.year, 1).is_err() {
                return Err(err(".year", format!("{} is not a year", table.year)));
            }
            if let Some(j) = raw[..index].iter().position(|o| o.year == table.year) {
                return Err(err(
                    ".year",
                    format!("{} is listed twice (also calendar[{j}])", table.year),
                ));
            }
            let dates = |field: &'static str, specs: &[String]| {
                let mut out = BTreeSet::new();
                for spec in specs {
                    for date in parse_dates(spec).map_err(|reason| err(field, reason))? {
                        if date.year() != table.year {
                            return Err(err(
                                field,
                                format!("{} is not in {}", ymd(date), table.year),
                            ));
                        }
                        if !out.insert(date) {
                            return Err(err(field, format!("{} is listed twice", ymd(date))));
                        }
                    }
                }
                Ok(out)
            };
            let holidays = dates(".holidays", &table.holidays)?;
            let workdays = dates(".workdays", &table.workdays)?;
            if let Some(both) = holidays.intersection(&workdays).next() {
                return Err(err(
                    "",
                    format!("{} is both a holiday and a make-up working day", ymd(*both)),
                ));
            }
            if let Some(weekday) = workdays.iter().find(|d| is_weekday(**d)) {
                return Err(err(
                    ".workdays",
                    format!(
                        "{} is a {}, a working day anyway; make-up working days are weekend days",
                        ymd(*weekday),
                        weekday.weekday().to_string().to_lowercase()
                    ),
                ));
            }
            cal.deltas.extend(
                holidays
                    .iter()
                    .filter(|d| is_weekday(**d))
                    .map(|d| (*d, -1)),
            );
            cal.deltas.extend(workdays.iter().map(|d| (*d, 1)));
            cal.years.insert(table.year, Year { holidays, workdays });
        }
        Ok(cal)
    }

    /// Whether the calendar has the State Council's dates for `year`.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// The years the calendar covers, in order.
    pub fn years(&self) -> impl Iterator<Item = i32> + '_ {
        self.years.keys().copied()
    }

    /// The years of the days in `(from, to]` (or `(to, from]`) that the
    /// calendar does not cover, in order: where arithmetic over that span
    /// fell back to Monday to Friday. Empty when `from == to`.
    pub fn uncovered_years(&self, from: Date, to: Date) -> Vec<i32> {
        let (lo, hi) = if from <= to { (from, to) } else { (to, from) };
        let Some(first) = lo.next_day().filter(|_| lo != hi) else {
            return Vec::new();
        };
        (first.year()..=hi.year())
            .filter(|y| !self.covers(*y))
            .collect()
    }

    /// Whether `date` is a working day: a make-up working day, or Monday to
    /// Friday and not a holiday.
    pub fn is_working_day(&self, date: Date) -> bool {
        match self.deltas.get(&date) {
            Some(delta) => *delta > 0,
            None => is_weekday(date),
        }
    }

    /// The date `days` working days after `start`; `start` itself does not
    /// count (期间开始之日不计算在内), so a case accepted on a Friday with 1
    /// day promised is due on the next working day. `days == 0` returns
    /// `start`. Saturates at the last representable date.
    pub fn add_working_days(&self, start: Date, days: u32) -> Date {
        if days == 0 {
            return start;
        }
        let want = i64::from(days);
        // Each weekday holiday takes away at most one working day, so this
        // many Monday-to-Friday days always reach far enough; the answer is
        // the first date in (start, hi] with `days` working days behind it.
        let holidays = self.deltas.values().filter(|d| **d < 0).count() as u32;
        let hi = add_weekdays(start, days.saturating_add(holidays));
        if self.working_days_between(start, hi) < want {
            return hi; // saturated at Date::MAX
        }
        let (mut lo, mut hi) = (start.to_julian_day(), hi.to_julian_day());
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            let date = Date::from_julian_day(mid).unwrap_or(Date::MAX);
            if self.working_days_between(start, date) >= want {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Date::from_julian_day(hi).unwrap_or(Date::MAX)
    }

    /// Which calendar a date counted over `(from, to]` was counted with:
    /// for each year from `from`'s to `to`'s, `YEAR:DIGEST` (the first 16
    /// hex digits of the SHA-256 of that year's holidays and make-up
    /// working days) or `YEAR:mon-fri` for a year without a table, joined
    /// by spaces, e.g. `2026:44272f10e0b03bd5`. A count depends only on the
    /// days it spans, so the same identity means the same result: a node
    /// keeps it beside each running date and counts again only when it
    /// differs (the directory's calendar changed for one of those years).
    pub fn identity(&self, from: Date, to: Date) -> String {
        let (lo, hi) = if from <= to { (from, to) } else { (to, from) };
        (lo.year()..=hi.year())
            .map(|year| match self.years.get(&year) {
                Some(y) => format!("{year}:{}", y.digest()),
                None => format!("{year}:mon-fri"),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The identity of the whole calendar: [`Calendar::identity`] of every
    /// year it covers, or `none`. Unchanged, no date counted with it can
    /// count differently.
    pub fn fingerprint(&self) -> String {
        match (self.years.keys().next(), self.years.keys().last()) {
            (Some(first), Some(last)) => (*first..=*last)
                .filter_map(|year| {
                    self.years
                        .get(&year)
                        .map(|y| format!("{year}:{}", y.digest()))
                })
                .collect::<Vec<_>>()
                .join(" "),
            _ => "none".to_owned(),
        }
    }

    /// The working days a promise of `days` has left after the clock ran
    /// in `runs`, oldest first: `(started, paused)` dates, `paused` None
    /// for a run still going. Returns the days left at the last pause and,
    /// when the last run is still going, its due date. A run that ended
    /// overdue leaves a negative count, and the next run starts from zero
    /// days, as when the clock was resumed (the pause day counts as used,
    /// the resumption day does not).
    pub fn promise(&self, days: u32, runs: &[(Date, Option<Date>)]) -> (i64, Option<Date>) {
        let mut left = i64::from(days);
        for (started, paused) in runs {
            let run = left.max(0);
            match paused {
                Some(paused) => left = run - self.working_days_between(*started, *paused),
                None => {
                    let due = self.add_working_days(*started, u32::try_from(run).unwrap_or(0));
                    return (left, Some(due));
                }
            }
        }
        (left, None)
    }

    /// The number of working days in `(from, to]`, negative (the count in
    /// `(to, from]`) if `to` is before `from`. Used for "days left" and
    /// "days overdue".
    pub fn working_days_between(&self, from: Date, to: Date) -> i64 {
        if to < from {
            return -self.working_days_between(to, from);
        }
        let adjust: i64 = self
            .deltas
            .range((
                std::ops::Bound::Excluded(from),
                std::ops::Bound::Included(to),
            ))
            .map(|(_, d)| i64::from(*d))
            .sum();
        weekdays_to(to) - weekdays_to(from) + adjust
    }
}

impl Year {
    /// The first 16 hex digits of the SHA-256 of the year's dates, one
    /// `H YYYY-MM-DD` or `W YYYY-MM-DD` line each, in order.
    fn digest(&self) -> String {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        for (mark, dates) in [("H", &self.holidays), ("W", &self.workdays)] {
            for date in dates {
                h.update(format!("{mark} {}\n", ymd(*date)));
            }
        }
        h.finalize()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

/// Parses `YYYY-MM-DD` or an inclusive range `YYYY-MM-DD..YYYY-MM-DD`.
fn parse_dates(spec: &str) -> Result<Vec<Date>, String> {
    let one = |text: &str| {
        Date::parse(text.trim(), DATE_FORMAT).map_err(|_| {
            format!("{spec:?} is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD")
        })
    };
    let (first, last) = match spec.split_once("..") {
        Some((a, b)) => (one(a)?, one(b)?),
        None => {
            let d = one(spec)?;
            (d, d)
        }
    };
    if last < first {
        return Err(format!("{spec:?} ends before it starts"));
    }
    let mut out = vec![first];
    let mut date = first;
    while date < last {
        date = date.saturating_add(Duration::DAY);
        out.push(date);
    }
    Ok(out)
}

impl Serialize for Calendar {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let list = |dates: &BTreeSet<Date>| dates.iter().map(|d| ymd(*d)).collect();
        self.years
            .iter()
            .map(|(year, y)| RawYear {
                year: *year,
                holidays: list(&y.holidays),
                workdays: list(&y.workdays),
            })
            .collect::<Vec<_>>()
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Calendar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Vec::<RawYear>::deserialize(d)?;
        Calendar::from_raw(&raw).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Calendar {
    /// The covered years, e.g. `2026, 2027`, or `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.years.is_empty() {
            return f.write_str("none");
        }
        let years: Vec<String> = self.years().map(|y| y.to_string()).collect();
        f.write_str(&years.join(", "))
    }
}

fn is_weekday(date: Date) -> bool {
    !matches!(date.weekday(), Weekday::Saturday | Weekday::Sunday)
}

/// The date `days` Monday-to-Friday days after `start` (saturating).
fn add_weekdays(start: Date, days: u32) -> Date {
    if days == 0 {
        return start;
    }
    // Weekdays after a Saturday or Sunday are the same as after the Friday
    // before, and from a weekday 5 weekdays are 7 calendar days.
    let mut date = start;
    while !is_weekday(date) {
        date = date.saturating_sub(Duration::DAY);
    }
    date = date.saturating_add(Duration::weeks(i64::from(days / 5)));
    for _ in 0..days % 5 {
        date = date.saturating_add(Duration::DAY);
        while !is_weekday(date) && date != Date::MAX {
            date = date.saturating_add(Duration::DAY);
        }
    }
    date
}

/// Monday-to-Friday days from a fixed Monday up to and including `date`.
/// Julian day 0 is a Monday, so `jd mod 7` is the days since Monday.
fn weekdays_to(date: Date) -> i64 {
    let jd = i64::from(date.to_julian_day());
    jd.div_euclid(7) * 5 + (jd.rem_euclid(7) + 1).min(5)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    /// The 2026 dates of 国务院办公厅关于2026年部分节假日安排的通知
    /// (2025-11-04), as `examples/federation.toml` has them.
    const Y2026: &str = r#"
[[calendar]]
year = 2026
holidays = [
    "2026-01-01..2026-01-03",
    "2026-02-15..2026-02-23",
    "2026-04-04..2026-04-06",
    "2026-05-01..2026-05-05",
    "2026-06-19..2026-06-21",
    "2026-09-25..2026-09-27",
    "2026-10-01..2026-10-07",
]
workdays = ["2026-01-04", "2026-02-14", "2026-02-28", "2026-05-09", "2026-09-20", "2026-10-10"]
"#;

    #[derive(Deserialize)]
    struct Doc {
        calendar: Calendar,
    }

    fn parse(text: &str) -> Result<Calendar, String> {
        toml::from_str::<Doc>(text)
            .map(|d| d.calendar)
            .map_err(|e| e.message().to_owned())
    }

    fn cal2026() -> Calendar {
        parse(Y2026).unwrap()
    }

    /// The error for Y2026 with `from` replaced by `to`.
    fn refused(from: &str, to: &str) -> String {
        assert!(Y2026.contains(from), "{from}");
        parse(&Y2026.replacen(from, to, 1)).unwrap_err()
    }

    #[test]
    fn national_day_2026() {
        let c = cal2026();
        // Five working days from 30 September: 8, 9, 10 (a make-up
        // Saturday), 12 and 13 October.
        assert_eq!(
            c.add_working_days(date!(2026 - 09 - 30), 5),
            date!(2026 - 10 - 13)
        );
        assert_eq!(
            Calendar::default().add_working_days(date!(2026 - 09 - 30), 5),
            date!(2026 - 10 - 07),
            "what Monday to Friday alone would say"
        );
        for d in [
            date!(2026 - 10 - 01),
            date!(2026 - 10 - 05),
            date!(2026 - 10 - 07),
        ] {
            assert!(!c.is_working_day(d), "{d}");
        }
        assert!(c.is_working_day(date!(2026 - 10 - 10)), "make-up saturday");
        assert!(
            !c.is_working_day(date!(2026 - 10 - 11)),
            "an ordinary sunday"
        );
        assert!(c.is_working_day(date!(2026 - 09 - 20)), "make-up sunday");
        assert_eq!(
            c.add_working_days(date!(2026 - 10 - 09), 1),
            date!(2026 - 10 - 10)
        );
        assert_eq!(
            c.working_days_between(date!(2026 - 09 - 30), date!(2026 - 10 - 13)),
            5
        );
        assert_eq!(
            c.working_days_between(date!(2026 - 09 - 30), date!(2026 - 10 - 07)),
            0
        );
    }

    #[test]
    fn spring_festival_2026() {
        let c = cal2026();
        // Friday 13 February: then the make-up Saturday 14th, nine days of
        // holiday, Tuesday 24th.
        assert_eq!(
            c.add_working_days(date!(2026 - 02 - 13), 1),
            date!(2026 - 02 - 14)
        );
        assert_eq!(
            c.add_working_days(date!(2026 - 02 - 13), 2),
            date!(2026 - 02 - 24)
        );
        // 24-27 February and the make-up Saturday 28th.
        assert_eq!(
            c.add_working_days(date!(2026 - 02 - 14), 5),
            date!(2026 - 02 - 28)
        );
        assert_eq!(
            c.add_working_days(date!(2026 - 02 - 16), 1),
            date!(2026 - 02 - 24),
            "counting starts from a holiday"
        );
        assert_eq!(
            c.working_days_between(date!(2026 - 02 - 24), date!(2026 - 02 - 13)),
            -2
        );
    }

    #[test]
    fn a_year_of_working_days() {
        // 261 weekdays in 2026, less the 19 holidays that fall on one (1-2
        // Jan, 16-20 and 23 Feb, 6 Apr, 1 and 4-5 May, 19 Jun, 25 Sep, 1-2
        // and 5-7 Oct), plus the 6 make-up days.
        let c = cal2026();
        let weekday_holidays = c.deltas.values().filter(|d| **d < 0).count();
        assert_eq!(weekday_holidays, 19);
        assert_eq!(
            c.working_days_between(date!(2025 - 12 - 31), date!(2026 - 12 - 31)),
            261 - 19 + 6
        );
        assert_eq!(c.to_string(), "2026");
        assert_eq!(Calendar::default().to_string(), "none");
    }

    #[test]
    fn into_a_year_without_a_calendar() {
        let c = cal2026();
        // 2026-12-31 is a Thursday; 2027 has no calendar, so Monday to
        // Friday: 1 and 4 January (1 January 2027 will be a holiday once
        // the State Council says so).
        let due = c.add_working_days(date!(2026 - 12 - 31), 2);
        assert_eq!(due, date!(2027 - 01 - 04));
        assert_eq!(c.uncovered_years(date!(2026 - 12 - 31), due), [2027]);
        assert_eq!(c.uncovered_years(due, date!(2026 - 12 - 31)), [2027]);
        assert!(
            c.uncovered_years(date!(2026 - 09 - 30), date!(2026 - 10 - 13))
                .is_empty()
        );
        assert!(
            c.uncovered_years(date!(2025 - 12 - 31), date!(2026 - 01 - 05))
                .is_empty(),
            "the start day does not count"
        );
        assert_eq!(
            c.uncovered_years(date!(2025 - 12 - 30), date!(2027 - 01 - 01)),
            [2025, 2027]
        );
        assert!(
            c.uncovered_years(date!(2027 - 01 - 04), date!(2027 - 01 - 04))
                .is_empty()
        );
        assert!(c.covers(2026) && !c.covers(2027));
    }

    #[test]
    fn counting_matches_adding() {
        for c in [Calendar::default(), cal2026()] {
            for start in [
                date!(2025 - 12 - 20),
                date!(2026 - 02 - 10),
                date!(2026 - 09 - 19),
                date!(2026 - 12 - 20),
            ] {
                for days in 0..60 {
                    let end = c.add_working_days(start, days);
                    assert_eq!(c.working_days_between(start, end), i64::from(days), "{end}");
                    assert_eq!(c.working_days_between(end, start), -i64::from(days));
                    if days > 0 {
                        assert!(c.is_working_day(end), "{start} + {days} = {end}");
                    }
                }
            }
        }
    }

    #[test]
    fn monday_to_friday_without_a_calendar() {
        let c = Calendar::default();
        let wed = date!(2026 - 11 - 25);
        assert_eq!(c.add_working_days(wed, 0), wed);
        assert_eq!(c.add_working_days(wed, 3), date!(2026 - 11 - 30));
        assert_eq!(c.add_working_days(wed, 10), date!(2026 - 12 - 09));
        let sat = date!(2026 - 11 - 28);
        assert!(!c.is_working_day(sat));
        assert_eq!(c.add_working_days(sat, 1), date!(2026 - 11 - 30));
        assert_eq!(c.add_working_days(sat, 5), date!(2026 - 12 - 04));
        assert_eq!(c.add_working_days(Date::MAX, 3), Date::MAX);
        assert_eq!(cal2026().add_working_days(Date::MAX, u32::MAX), Date::MAX);
        assert_eq!(c.working_days_between(sat, date!(2026 - 11 - 29)), 0);
        assert_eq!(
            c.working_days_between(date!(1999 - 12 - 31), date!(2000 - 01 - 03)),
            1
        );
    }

    #[test]
    fn round_trips() {
        #[derive(Serialize)]
        struct Out<'a> {
            calendar: &'a Calendar,
        }
        let c = cal2026();
        let text = toml::to_string(&Out { calendar: &c }).unwrap();
        assert!(text.contains("\"2026-10-03\""), "weekend holidays are kept");
        assert_eq!(parse(&text).unwrap(), c);
    }

    #[test]
    fn bad_calendars_are_refused() {
        assert_eq!(
            refused(
                "\"2026-10-01..2026-10-07\"",
                "\"2026-10-01..2026-10-07\", \"2026-10-03\""
            ),
            "calendar[0].holidays: 2026-10-03 is listed twice"
        );
        assert_eq!(
            refused("\"2026-09-20\"", "\"2026-09-20\", \"2026-09-20\""),
            "calendar[0].workdays: 2026-09-20 is listed twice"
        );
        assert_eq!(
            refused("\"2026-10-10\"", "\"2026-10-03\""),
            "calendar[0]: 2026-10-03 is both a holiday and a make-up working day"
        );
        assert_eq!(
            refused("\"2026-01-01..2026-01-03\"", "\"2025-12-31..2026-01-03\""),
            "calendar[0].holidays: 2025-12-31 is not in 2026"
        );
        assert_eq!(
            refused("\"2026-10-10\"", "\"2027-01-09\""),
            "calendar[0].workdays: 2027-01-09 is not in 2026"
        );
        assert_eq!(
            refused("\"2026-04-04..2026-04-06\"", "\"2026-04-31\""),
            "calendar[0].holidays: \"2026-04-31\" is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD"
        );
        assert_eq!(
            refused("\"2026-09-20\"", "\"20 Sep 2026\""),
            "calendar[0].workdays: \"20 Sep 2026\" is not a date YYYY-MM-DD or a range YYYY-MM-DD..YYYY-MM-DD"
        );
        assert_eq!(
            refused("\"2026-04-04..2026-04-06\"", "\"2026-04-06..2026-04-04\""),
            "calendar[0].holidays: \"2026-04-06..2026-04-04\" ends before it starts"
        );
        assert_eq!(
            refused("\"2026-10-10\"", "\"2026-10-12\""),
            "calendar[0].workdays: 2026-10-12 is a monday, a working day anyway; make-up working days are weekend days"
        );
        let twice = format!("{Y2026}\n[[calendar]]\nyear = 2027\n\n[[calendar]]\nyear = 2026\n");
        assert_eq!(
            parse(&twice).unwrap_err(),
            "calendar[2].year: 2026 is listed twice (also calendar[0])"
        );
        assert_eq!(
            parse("[[calendar]]\nyear = 123456\n").unwrap_err(),
            "calendar[0].year: 123456 is not a year"
        );
        assert!(
            parse("[[calendar]]\nyear = 2026\nholiday = [\"2026-01-01\"]\n")
                .unwrap_err()
                .contains("unknown field `holiday`")
        );
        // A year with nothing listed is a published year with no holidays.
        assert!(parse("[[calendar]]\nyear = 2030\n").unwrap().covers(2030));
    }

    #[test]
    fn identity_names_each_year_spanned_and_changes_only_with_its_tables() {
        let c = cal2026();
        let id = c.identity(date!(2026 - 09 - 30), date!(2026 - 10 - 13));
        // Pinned: nodes store it beside running dates, so another spelling
        // of the same table would count every running date again.
        assert_eq!(id, "2026:44272f10e0b03bd5");
        assert_eq!(
            Calendar::default().identity(date!(2026 - 09 - 30), date!(2026 - 10 - 07)),
            "2026:mon-fri"
        );
        assert_eq!(c.fingerprint(), id, "the whole calendar: 2026 alone");
        assert_eq!(Calendar::default().fingerprint(), "none");
        let across = c.identity(date!(2026 - 12 - 28), date!(2027 - 01 - 04));
        assert_eq!(across, format!("{id} 2027:mon-fri"));
        // Publishing 2027 changes the identity of spans reaching 2027 only.
        let with_2027 = parse(&format!(
            "{Y2026}\n[[calendar]]\nyear = 2027\nholidays = [\"2027-01-01\"]\n"
        ))
        .unwrap();
        assert_eq!(
            with_2027.identity(date!(2026 - 09 - 30), date!(2026 - 10 - 13)),
            id
        );
        assert_ne!(
            with_2027.identity(date!(2026 - 12 - 28), date!(2027 - 01 - 04)),
            across
        );
        // One date more in the 2026 table is another 2026 identity.
        let edited = parse(&Y2026.replacen("\"2026-10-10\"", "\"2026-10-10\", \"2026-10-11\"", 1));
        assert_ne!(
            edited
                .unwrap()
                .identity(date!(2026 - 09 - 30), date!(2026 - 10 - 13)),
            id
        );
    }

    #[test]
    fn a_promise_recounted_across_a_correction_pause() {
        let c = cal2026();
        let mon_fri = Calendar::default();
        // Accepted Thursday 24 September with 5 days; running.
        let runs = [(date!(2026 - 09 - 24), None)];
        assert_eq!(mon_fri.promise(5, &runs), (5, Some(date!(2026 - 10 - 01))));
        assert_eq!(c.promise(5, &runs), (5, Some(date!(2026 - 10 - 09))));
        // Paused on Tuesday 29th: Monday to Friday used 25, 28, 29; the
        // calendar only 28 and 29 (the 25th is 中秋节).
        let paused = [(date!(2026 - 09 - 24), Some(date!(2026 - 09 - 29)))];
        assert_eq!(mon_fri.promise(5, &paused), (2, None));
        assert_eq!(c.promise(5, &paused), (3, None));
        // Resumed on the 30th: 3 days are 8, 9 and the make-up Saturday 10th.
        let resumed = [
            (date!(2026 - 09 - 24), Some(date!(2026 - 09 - 29))),
            (date!(2026 - 09 - 30), None),
        ];
        assert_eq!(c.promise(5, &resumed), (3, Some(date!(2026 - 10 - 10))));
        // As the clock itself counts: days left at the pause are the days
        // from the pause to the due date of the run.
        let due = c.add_working_days(date!(2026 - 09 - 24), 5);
        assert_eq!(c.working_days_between(date!(2026 - 09 - 29), due), 3);
        // Paused overdue: negative, and the next run has no days left.
        let late = [
            (date!(2026 - 09 - 24), Some(date!(2026 - 10 - 20))),
            (date!(2026 - 10 - 21), None),
        ];
        let (left, due) = c.promise(5, &late);
        assert!(left < 0, "{left}");
        assert_eq!(due, Some(date!(2026 - 10 - 21)));
    }
}

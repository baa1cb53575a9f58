//! The overdue lists (`Overdue` of the window and review services) and the
//! metrics' overdue gauge: which open cases are overdue today and why,
//! read through the store's deadline index so that a page decodes only the
//! cases it could list, however many cases the node holds.
//!
//! The rule (unchanged from when every open case was decoded): a case is
//! overdue when its running clock is past the promised date by working
//! days, when its commitment (告知承诺) is unfulfilled past its due date,
//! or when a mail leg has been on its way longer than `max_transit_days`.
//! The index narrows: its dated keys below today and its mail keys sent
//! before today less the transit days are the only cases that can be
//! overdue, and [`why`] decides for each.
//!
//! Order: earliest deadline first (a mail leg's deadline is its UTC send
//! date plus `max_transit_days`), then application id; a case with more
//! than one deadline is listed once, at its earliest. A page's token is the
//! last (deadline, application id) it listed, and the next page reads the
//! index after it: no page overlaps another while nothing changes, and a
//! deep page costs what the first does. Today moving needs no write: the
//! keys are dates and the range ends at today.

use std::collections::HashSet;
use std::iter::Peekable;

use time::{Date, Duration, OffsetDateTime, UtcOffset};
use tongban_ledger::{CaseRecord, DeadlineKind, Deadlines, Side};

use super::paging;
use super::paging::bad_token;
use crate::ctx::Ctx;
use crate::{NodeError, flow, view};

/// The longest token accepted: a date, '_', a UUID, with room to spare.
const MAX_TOKEN: usize = 80;

/// The instant a listing is made at, and the index ranges it reads.
struct Bounds {
    today: Date,
    now: OffsetDateTime,
    /// `max_transit_days`, what a mail key's date is shifted by.
    transit: Duration,
    /// The last dated key that can be overdue: yesterday.
    dated_through: Option<Date>,
    /// The last mail send date that can be overdue: a leg sent on it is at
    /// least `max_transit_days + 1` days old at some time of that day.
    mail_through: Option<Date>,
}

impl Bounds {
    fn of(ctx: &Ctx) -> Self {
        let today = ctx.clock.today();
        let now = ctx.clock.now();
        let days = i64::from(ctx.mail.max_transit_days);
        Self {
            today,
            now,
            transit: Duration::days(days),
            dated_through: today.previous_day(),
            mail_through: now
                .checked_sub(Duration::days(days + 1))
                .map(|t| t.to_offset(UtcOffset::UTC).date()),
        }
    }

    fn through(&self, kind: DeadlineKind) -> Option<Date> {
        match kind {
            DeadlineKind::Dated => self.dated_through,
            DeadlineKind::Mail => self.mail_through,
        }
    }

    /// A key's date as the deadline it is ordered by.
    fn deadline(&self, kind: DeadlineKind, date: Date) -> Date {
        match kind {
            DeadlineKind::Dated => date,
            DeadlineKind::Mail => date.checked_add(self.transit).unwrap_or(Date::MAX),
        }
    }

    /// Where a case is listed: its earliest deadline among the keys this
    /// listing reads (dated first on a tie), or None if it reads none.
    fn position(&self, d: &Deadlines) -> Option<(Date, DeadlineKind)> {
        let dated = d
            .dated
            .filter(|x| Some(*x) <= self.dated_through)
            .map(|x| (x, DeadlineKind::Dated));
        let mail = d
            .mail
            .filter(|x| Some(*x) <= self.mail_through)
            .map(|x| (self.deadline(DeadlineKind::Mail, x), DeadlineKind::Mail));
        match (dated, mail) {
            (Some(a), Some(b)) => Some(if b.0 < a.0 { b } else { a }),
            (a, b) => a.or(b),
        }
    }
}

type Keys = Peekable<Box<dyn Iterator<Item = Result<(Date, String), NodeError>>>>;

/// The index keys of `kind` on `side` that can be overdue, after the
/// listing position `after`, as (deadline, application id).
fn keys(
    ctx: &Ctx,
    b: &Bounds,
    side: Side,
    kind: DeadlineKind,
    after: Option<(Date, &str)>,
) -> Result<Keys, NodeError> {
    let Some(through) = b.through(kind) else {
        return Ok((Box::new(std::iter::empty()) as Box<dyn Iterator<Item = _>>).peekable());
    };
    let after = after.map(|(deadline, id)| {
        let date = match kind {
            DeadlineKind::Dated => deadline,
            DeadlineKind::Mail => deadline.checked_sub(b.transit).unwrap_or(Date::MIN),
        };
        (date, id)
    });
    let transit = b.transit;
    let scan = ctx.store.deadlines_through(side, kind, after, through)?;
    let shifted = scan.map(move |k| {
        let (date, id) = k?;
        let deadline = match kind {
            DeadlineKind::Dated => date,
            DeadlineKind::Mail => date.checked_add(transit).unwrap_or(Date::MAX),
        };
        Ok((deadline, id))
    });
    Ok((Box::new(shifted) as Box<dyn Iterator<Item = _>>).peekable())
}

/// The next key of the two ranges in listing order (dated first on a tie).
fn next_key(
    dated: &mut Keys,
    mail: &mut Keys,
) -> Option<Result<(Date, String, DeadlineKind), NodeError>> {
    let take_dated = match (dated.peek(), mail.peek()) {
        (None, None) => return None,
        (Some(Err(_)), _) | (Some(Ok(_)), None) => true,
        (None, Some(_)) | (Some(Ok(_)), Some(Err(_))) => false,
        (Some(Ok(a)), Some(Ok(b))) => a <= b,
    };
    let (keys, kind) = if take_dated {
        (dated, DeadlineKind::Dated)
    } else {
        (mail, DeadlineKind::Mail)
    };
    keys.next().map(|k| k.map(|(date, id)| (date, id, kind)))
}

/// Why `case` is overdue at `now` (`today` at the node), or None if it is not.
fn why(ctx: &Ctx, case: &CaseRecord, today: Date, now: OffsetDateTime) -> Option<String> {
    if case.state.is_terminal() {
        return None;
    }
    let mut reasons = Vec::new();
    if case.review.clock_running
        && let Some(left) = flow::days_left(&ctx.directory.calendar, case, today)
        && left < 0
    {
        reasons.push(format!(
            "{} working days past the promised date {}",
            -left,
            case.review.due_date.as_deref().unwrap_or_default()
        ));
    }
    if let Some(c) = &case.commitment
        && c.fulfilled_at.is_none()
        && let Some(due) = flow::parse_date(&c.due_date)
        && due < today
    {
        reasons.push(format!(
            "committed materials ({}) were due {} (告知承诺)",
            c.kinds.join(", "),
            c.due_date
        ));
    }
    for leg in &case.mail {
        if leg.status.is_final() {
            continue;
        }
        let sent =
            OffsetDateTime::parse(&leg.sent_at, &time::format_description::well_known::Rfc3339)
                .ok();
        if let Some(sent) = sent {
            let days = (now - sent).whole_days();
            if days > i64::from(ctx.mail.max_transit_days) {
                reasons.push(format!(
                    "{} leg {} in transit for {days} days",
                    leg.leg, leg.waybill
                ));
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// The listing position a token names (None for the first page).
fn parse_token(token: &str) -> Result<Option<(Date, &str)>, NodeError> {
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > MAX_TOKEN || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad_token());
    }
    let (date, id) = token.split_once('_').ok_or_else(bad_token)?;
    let date = flow::parse_date(date).ok_or_else(bad_token)?;
    if id.is_empty() {
        return Err(bad_token());
    }
    Ok(Some((date, id)))
}

/// The overdue cases on `side`, earliest deadline first: the page of at
/// most `limit` after `token`. Reads the index keys up to the page's end
/// and decodes only the cases they name.
pub(crate) fn overdue(
    ctx: &Ctx,
    side: Side,
    limit: usize,
    token: &str,
) -> Result<paging::Page, NodeError> {
    let after = parse_token(token)?;
    let b = Bounds::of(ctx);
    let mut dated = keys(ctx, &b, side, DeadlineKind::Dated, after)?;
    let mut mail = keys(ctx, &b, side, DeadlineKind::Mail, after)?;
    let mut cases = Vec::new();
    let mut last: Option<(Date, String)> = None;
    let mut more = false;
    while let Some(key) = next_key(&mut dated, &mut mail) {
        let (deadline, id, kind) = key?;
        let Some(case) = ctx.store.case(&id)? else {
            continue;
        };
        // Listed once, at its earliest deadline; its other key is skipped.
        if case.side != side || b.position(&Deadlines::of(&case)) != Some((deadline, kind)) {
            continue;
        }
        let Some(note) = why(ctx, &case, b.today, b.now) else {
            continue;
        };
        if cases.len() >= limit {
            more = true;
            break;
        }
        let mut v = view::case_view(ctx, &case, false)?;
        v.note = note;
        cases.push(v);
        last = Some((deadline, id));
    }
    let next = match (more, last) {
        // '_' and not '/': the console carries tokens in its links only
        // when they are letters, digits, '-' and '_'.
        (true, Some((date, id))) => format!("{}_{id}", flow::format_date(date)),
        _ => String::new(),
    };
    Ok(paging::Page { cases, next })
}

/// How many cases on `side` are overdue (the metrics' gauge): counted on
/// the index, decoding only the cases its keys leave in doubt (a promised
/// date followed by nothing but days off, a leg sent on the boundary day).
pub(crate) fn overdue_count(ctx: &Ctx, side: Side) -> Result<usize, NodeError> {
    let b = Bounds::of(ctx);
    let calendar = &ctx.directory.calendar;
    let mut overdue: HashSet<String> = HashSet::new();
    let mut dated = keys(ctx, &b, side, DeadlineKind::Dated, None)?;
    let mut mail = keys(ctx, &b, side, DeadlineKind::Mail, None)?;
    while let Some(key) = next_key(&mut dated, &mut mail) {
        let (deadline, id, kind) = key?;
        if overdue.contains(&id) {
            continue;
        }
        // A dated key is the earlier of a running promise and an open
        // commitment: a working day after it makes either overdue. A leg
        // sent before the boundary day is over the transit days already.
        let certain = match kind {
            DeadlineKind::Dated => calendar.working_days_between(deadline, b.today) > 0,
            DeadlineKind::Mail => deadline
                .checked_sub(b.transit)
                .is_some_and(|sent| Some(sent) < b.mail_through),
        };
        if certain
            || ctx
                .store
                .case(&id)?
                .is_some_and(|case| why(ctx, &case, b.today, b.now).is_some())
        {
            overdue.insert(id);
        }
    }
    Ok(overdue.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_refuse_garbage() {
        assert_eq!(parse_token("").unwrap(), None);
        let (date, id) = parse_token("2026-12-01_0193-abc").unwrap().unwrap();
        assert_eq!(flow::format_date(date), "2026-12-01");
        assert_eq!(id, "0193-abc");
        for bad in ["20", "2026-13-01_x", "2026-12-01_", "x_y", "2026-12-01_a b"] {
            assert!(parse_token(bad).is_err(), "{bad}");
        }
    }
}

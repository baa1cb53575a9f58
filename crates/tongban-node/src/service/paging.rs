//! Paging of the case lists (`ListCases`, `Inbox`, `Overdue`): how many a
//! page holds and the token that continues a list. A token is opaque to
//! clients; for the lists read through the state index it is the
//! application id of the page's last case (the next page starts right after
//! it, however deep); the overdue list's, read through the deadline index,
//! is its last (deadline, application id) (see `overdue`).

use tongban_core::CaseState;
use tongban_ledger::Side;
use tongban_proto::common::v1::CaseView;

use crate::ctx::Ctx;
use crate::{NodeError, view};

/// The longest token accepted (a UUID is 36 characters).
const MAX_TOKEN: usize = 64;

/// A page of cases and the token for the next one (empty on the last).
pub(crate) struct Page {
    pub(crate) cases: Vec<CaseView>,
    pub(crate) next: String,
}

/// `limit` with 0 meaning `default`.
pub(crate) fn limit_or(limit: u32, default: usize) -> usize {
    if limit == 0 { default } else { limit as usize }
}

/// The cases on `side` in `states` (oldest or newest first) after `token`,
/// at most `limit`: one more is read to know whether another page follows.
pub(crate) fn case_page(
    ctx: &Ctx,
    side: Side,
    states: &[CaseState],
    newest_first: bool,
    limit: usize,
    token: &str,
) -> Result<Page, NodeError> {
    let after = match token {
        "" => None,
        t if t.len() <= MAX_TOKEN && t.bytes().all(|b| b.is_ascii_graphic()) => Some(t),
        _ => {
            return Err(bad_token());
        }
    };
    let mut records =
        ctx.store
            .cases_page(side, states, newest_first, after, limit.saturating_add(1))?;
    let next = if records.len() > limit {
        records.truncate(limit);
        records
            .last()
            .map(|c| c.application_id.clone())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let cases = records
        .iter()
        .map(|c| view::case_view(ctx, c, false))
        .collect::<Result<_, _>>()?;
    Ok(Page { cases, next })
}

/// A page token this node did not give (a tampered or stale address).
pub(crate) fn bad_token() -> NodeError {
    NodeError::refused(
        tongban_core::Refusal::new(tongban_core::Reason::PageTokenUnknown, Vec::new())
            .at("page_token"),
        "page_token: not a token this node gave (pass next_page_token back unchanged)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_zero_limit_means_the_default() {
        assert_eq!(limit_or(0, 100), 100);
        assert_eq!(limit_or(7, 100), 7);
    }
}

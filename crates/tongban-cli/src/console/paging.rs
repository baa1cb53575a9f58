//! Paging of the console's lists (the clerk's cases, the reviewer's inbox,
//! the overdue lists): a page of [`PAGE`] cases at a time through the
//! node's `page_token`/`next_page_token`, so a node with a hundred
//! thousand cases renders a list as fast as one with fifty. The page's
//! address carries the node's token (`page=`) and the tokens of the pages
//! before it (`trail=`), which is all "previous" needs; nothing is kept on
//! the server.

use std::collections::HashMap;

use maud::{Markup, html};

use super::lang::t;

/// Cases per page.
pub(crate) const PAGE: u32 = 50;

/// Where a list is: this page's token, the tokens before it, the next one.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pager {
    /// The node's token for this page (empty: the first).
    token: String,
    /// The tokens of the earlier pages, oldest first (the first page's is
    /// the empty token, so it is not written).
    trail: Vec<String>,
    /// The node's token for the next page (empty: this is the last).
    next: String,
    /// Other query parameters the list keeps from page to page (a filter).
    keep: Vec<(&'static str, String)>,
}

/// Whether `s` can go into a query as it is (the node's tokens are UUIDs,
/// or a date and a UUID joined by `_`; anything else did not come from it
/// and is dropped).
fn plain(s: &str) -> bool {
    s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Pager {
    /// The page a list's query asks for.
    pub(crate) fn from_query(q: &HashMap<String, String>) -> Self {
        let token = q
            .get("page")
            .filter(|p| plain(p))
            .cloned()
            .unwrap_or_default();
        let trail = q
            .get("trail")
            .map(|t| {
                t.split(',')
                    .filter(|p| !p.is_empty() && plain(p))
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            token,
            trail,
            ..Self::default()
        }
    }

    /// The node's token for this page.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// With the node's token for the next page.
    pub(crate) fn with_next(mut self, next: String) -> Self {
        self.next = next;
        self
    }

    /// Keeping `name=value` (a filter) in the links, when `value` is plain.
    pub(crate) fn keep(mut self, name: &'static str, value: &str) -> Self {
        if !value.is_empty() && plain(value) {
            self.keep.push((name, value.to_owned()));
        }
        self
    }

    /// Whether the list takes more than this one page.
    pub(crate) fn spans_pages(&self) -> bool {
        !self.token.is_empty() || !self.next.is_empty()
    }

    /// The list's page number, from 1.
    fn number(&self) -> usize {
        if self.token.is_empty() {
            1
        } else {
            self.trail.len() + 2
        }
    }

    fn href(&self, token: &str, trail: &[String]) -> String {
        let mut parts: Vec<String> = self.keep.iter().map(|(k, v)| format!("{k}={v}")).collect();
        if !token.is_empty() {
            parts.push(format!("page={token}"));
        }
        if !trail.is_empty() {
            parts.push(format!("trail={}", trail.join(",")));
        }
        format!("?{}", parts.join("&"))
    }

    /// The links to the first, previous and next pages, and which page
    /// this is; nothing for a list that fits on one page.
    pub(crate) fn links(&self) -> Markup {
        if !self.spans_pages() {
            return html! {};
        }
        let first = self.token.is_empty();
        let prev = if first {
            None
        } else {
            // The page before this one is the last of the trail, or the
            // first page when the trail is empty.
            let (before, rest) = match self.trail.split_last() {
                Some((last, rest)) => (last.as_str(), rest),
                None => ("", &[][..]),
            };
            Some(self.href(before, rest))
        };
        let next = (!self.next.is_empty()).then(|| {
            let mut trail = self.trail.clone();
            if !first {
                trail.push(self.token.clone());
            }
            self.href(&self.next, &trail)
        });
        html! {
            nav.pager aria-label=(t("翻页", "Pages")) {
                @if !first { a #page-first href=(self.href("", &[])) { (t("第一页", "First page")) } }
                @if let Some(p) = prev { a #page-prev rel="prev" href=(p) { (t("上一页", "Previous")) } }
                span #page-number { (t("第 ", "Page ")) (self.number()) (t(" 页", "")) }
                @if let Some(n) = next { a #page-next rel="next" href=(n) { (t("下一页", "Next")) } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str) -> HashMap<String, String> {
        s.split('&')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn link(m: &Markup, id: &str) -> Option<String> {
        let html = m.clone().into_string();
        let at = html.find(&format!("id=\"{id}\""))?;
        let rest = &html[at..];
        let href = rest.split("href=\"").nth(1)?;
        Some(href.split('"').next()?.replace("&amp;", "&"))
    }

    #[test]
    fn next_and_previous_walk_the_trail() {
        // Page 1 of a filtered list, with more.
        let p1 = Pager::from_query(&query(""))
            .keep("state", "QUEUED")
            .with_next("a50".into());
        let m = p1.links();
        assert_eq!(link(&m, "page-next").unwrap(), "?state=QUEUED&page=a50");
        assert!(link(&m, "page-prev").is_none());
        // Page 2: previous goes to the first page.
        let p2 = Pager::from_query(&query("state=QUEUED&page=a50"))
            .keep("state", "QUEUED")
            .with_next("a100".into());
        assert_eq!(p2.token(), "a50");
        let m = p2.links();
        assert_eq!(link(&m, "page-prev").unwrap(), "?state=QUEUED");
        assert_eq!(
            link(&m, "page-next").unwrap(),
            "?state=QUEUED&page=a100&trail=a50"
        );
        assert!(m.clone().into_string().contains("第 2 页"));
        // Page 3, the last: previous goes to page 2, no next.
        let p3 = Pager::from_query(&query("page=a100&trail=a50"));
        let m = p3.links();
        assert_eq!(link(&m, "page-prev").unwrap(), "?page=a50");
        assert!(link(&m, "page-next").is_none());
        assert!(m.into_string().contains("第 3 页"));
    }

    #[test]
    fn a_short_list_has_no_pager_and_odd_tokens_are_dropped() {
        assert!(Pager::default().links().into_string().is_empty());
        let p = Pager::from_query(&query("page=<script>&trail=x\"y,ok"));
        assert_eq!(p.token(), "");
        assert_eq!(p.trail, ["ok"]);
    }
}

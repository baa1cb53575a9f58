//! The console's language: Chinese (zh-CN) by default, English on request.
//!
//! The choice is the `tongban_lang` cookie, set by the switch every page
//! shows (a link adding `?lang=en` or `?lang=zh-CN` to the page's own
//! address). A middleware reads it once per request and keeps it, with the
//! page's address, in a task-local for the request's whole handling, so a
//! template asks [`t`] for its text without every page function taking a
//! language argument: text is written once, in both languages, at the place
//! it is shown — `t("受理", "Accept")` — which keeps two people editing
//! pages from colliding in a separate table of strings.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use super::Console;

/// The cookie that remembers the choice. One name for every console on the
/// machine: a language is the person's, not the identity's.
const COOKIE: &str = "tongban_lang";

/// A language the console speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    /// Simplified Chinese, the default.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The BCP 47 tag, for `<html lang>` and the switch's `?lang=`.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    /// The language a `?lang=` value or cookie names, if any.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        match s {
            "zh-CN" | "zh" => Some(Lang::Zh),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// The other language, which the switch offers.
    pub(crate) fn other(self) -> Self {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The language's own name, as the switch shows it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Zh => "中文",
            Lang::En => "English",
        }
    }

    /// `zh` or `en`, whichever is this language's.
    pub(crate) fn t<'a>(self, zh: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Zh => zh,
            Lang::En => en,
        }
    }
}

/// What a page needs to know about the request it answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Here {
    /// The language of the page.
    pub(crate) lang: Lang,
    /// The page's path and query, without any `lang=`, for the switch.
    pub(crate) uri: String,
}

tokio::task_local! {
    static HERE: Here;
}

/// The language of the request being answered (zh-CN outside one, e.g. in
/// unit tests of a template).
pub(crate) fn lang() -> Lang {
    HERE.try_with(|h| h.lang).unwrap_or_default()
}

/// `zh` or `en`, in the language of the request being answered.
pub(crate) fn t<'a>(zh: &'a str, en: &'a str) -> &'a str {
    lang().t(zh, en)
}

/// The address of this page in `to`, for the switch.
pub(crate) fn switch_href(to: Lang) -> String {
    let uri = HERE.try_with(|h| h.uri.clone()).unwrap_or_default();
    let (path, query) = uri.split_once('?').unwrap_or((uri.as_str(), ""));
    let path = if path.is_empty() { "/" } else { path };
    if query.is_empty() {
        format!("{path}?lang={}", to.code())
    } else {
        format!("{path}?{query}&lang={}", to.code())
    }
}

/// Runs `f` as if answering a request in `lang` (the bench and unit tests
/// render pages outside the router).
#[cfg(test)]
pub(crate) fn scope<R>(lang: Lang, f: impl FnOnce() -> R) -> R {
    HERE.sync_scope(
        Here {
            lang,
            uri: "/".to_owned(),
        },
        f,
    )
}

/// The middleware: picks the language (`?lang=` first, then the cookie,
/// then zh-CN), answers the request inside it, and remembers a `?lang=`
/// choice in the cookie.
pub(crate) async fn choose(State(c): State<Arc<Console>>, req: Request, next: Next) -> Response {
    let from_query = req
        .uri()
        .query()
        .and_then(|q| form_pairs(q).find(|(k, _)| *k == "lang"))
        .and_then(|(_, v)| Lang::parse(v));
    let from_cookie = req
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, v)| Lang::parse(v));
    let lang = from_query.or(from_cookie).unwrap_or_default();
    // The switch links to this address with GET: a form's answer (a POST)
    // switches on the role's first page instead of re-sending nothing.
    let uri = if req.method() == axum::http::Method::GET {
        without_lang(req.uri())
    } else {
        "/".to_owned()
    };
    let here = Here { lang, uri };
    let mut res = HERE.scope(here, next.run(req)).await;
    if let Some(chosen) = from_query
        && let Ok(v) = HeaderValue::from_str(&format!(
            "{COOKIE}={}; Path=/; SameSite=Strict; Max-Age=31536000{}",
            chosen.code(),
            if c.sessions.secure() { "; Secure" } else { "" }
        ))
    {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

/// `k=v` pairs of a query string (values here are plain codes; nothing is
/// percent-decoded).
fn form_pairs(q: &str) -> impl Iterator<Item = (&str, &str)> {
    q.split('&').filter_map(|p| p.split_once('='))
}

/// The request's path and query without `lang=`.
fn without_lang(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let rest: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("lang="))
        .collect();
    if rest.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", rest.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_follows_the_scope() {
        assert_eq!(t("受理", "Accept"), "受理", "zh-CN outside a request");
        assert_eq!(scope(Lang::En, || t("受理", "Accept")), "Accept");
        assert_eq!(scope(Lang::Zh, || t("受理", "Accept")), "受理");
    }

    #[test]
    fn the_switch_keeps_the_page_and_its_query() {
        let uri: axum::http::Uri = "/trace?case=610702-1&lang=en".parse().unwrap();
        assert_eq!(without_lang(&uri), "/trace?case=610702-1");
        let here = Here {
            lang: Lang::En,
            uri: without_lang(&uri),
        };
        let href = HERE.sync_scope(here, || switch_href(Lang::Zh));
        assert_eq!(href, "/trace?case=610702-1&lang=zh-CN");
        assert_eq!(scope(Lang::Zh, || switch_href(Lang::En)), "/?lang=en");
    }

    #[test]
    fn codes_round_trip() {
        for l in [Lang::Zh, Lang::En] {
            assert_eq!(Lang::parse(l.code()), Some(l));
            assert_eq!(l.other().other(), l);
        }
        assert_eq!(Lang::parse("fr"), None);
    }
}

//! Who may reach the console's pages: the host check, sign-in with the
//! one-time token, the session check in front of every page, logout, the
//! keep-alive a page sends while someone types, and the page that says a
//! session ended (with what was typed into a form that arrived too late,
//! so it is not lost). Also the `Server-Timing` header every answer
//! carries, which the bench reads to time the handlers server-side.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};

use super::lang::t;
use super::session::{Check, Ended};
use super::{Console, pages};

type Shared = State<Arc<Console>>;

/// Refuses requests addressed to any host but the console's loopback
/// address: a web page whose own name was made to resolve to 127.0.0.1
/// (DNS rebinding) cannot reach the console, even before the session check.
/// Under HTTPS the certificate already binds the name (a browser refuses a
/// rebound name the certificate does not carry), and the console is
/// reached by whatever names its certificate has, so any host passes.
pub(super) async fn require_host(State(c): Shared, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if c.sessions.secure() || host_ok(host, c.sessions.port()) {
        next.run(req).await
    } else {
        (StatusCode::FORBIDDEN, Html(pages::refused().into_string())).into_response()
    }
}

/// Whether `host` (a `Host` header) names this machine's loopback on `port`.
fn host_ok(host: &str, port: u16) -> bool {
    let Some((name, p)) = host.rsplit_once(':') else {
        return false;
    };
    p.parse() == Ok(port) && matches!(name, "127.0.0.1" | "localhost" | "[::1]")
}

fn cookie_header(req: &Request) -> String {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Refuses every request without an open session (401): a session that
/// ended gets the page saying why, with the text of a form it sent.
pub(super) async fn require_session(State(c): Shared, req: Request, next: Next) -> Response {
    match c.sessions.check(&cookie_header(&req)) {
        Check::Open => next.run(req).await,
        Check::None => (
            StatusCode::UNAUTHORIZED,
            Html(pages::refused().into_string()),
        )
            .into_response(),
        Check::Ended(why) => {
            let typed = if req.method() == Method::POST {
                typed_fields(req).await
            } else {
                Vec::new()
            };
            (
                StatusCode::UNAUTHORIZED,
                Html(ended(why, &typed).into_string()),
            )
                .into_response()
        }
    }
}

/// The text a form carried (not its request id; files by name only, since
/// a browser cannot be given a file back).
async fn typed_fields(req: Request) -> Vec<(String, String)> {
    let kind = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let mut out = Vec::new();
    if kind.starts_with("multipart/form-data") {
        let Ok(mut mp) = Multipart::from_request(req, &()).await else {
            return out;
        };
        while let Ok(Some(field)) = mp.next_field().await {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(f) if f.is_empty() => {}
                Some(f) => out.push((name, format!("{} {f}", t("文件", "file")))),
                None => {
                    if let Ok(text) = field.text().await {
                        out.push((name, text));
                    }
                }
            }
        }
    } else if kind.starts_with("application/x-www-form-urlencoded")
        && let Ok(axum::Form(pairs)) =
            axum::Form::<Vec<(String, String)>>::from_request(req, &()).await
    {
        out = pairs;
    }
    out.retain(|(name, value)| name != "request_id" && !value.trim().is_empty());
    out
}

/// The page for a session that ended.
fn ended(why: Ended, typed: &[(String, String)]) -> Markup {
    let (title, reason) = match why {
        Ended::LoggedOut => (
            t("已退出登录", "Signed out"),
            t("您已退出登录。", "You signed out."),
        ),
        Ended::Idle => (
            t("会话已过期", "Session expired"),
            t(
                "长时间没有操作，会话已结束。",
                "The session ended after a while without use.",
            ),
        ),
        Ended::Absolute => (
            t("会话已过期", "Session expired"),
            t(
                "会话已到最长时限，已结束。",
                "The session reached its longest allowed time and ended.",
            ),
        ),
    };
    pages::bare(
        title,
        html! {
            p #ended data-reason=(format!("{why:?}")) { (reason) " "
                (t("请使用控制台终端上新打印的一次性链接重新登录。",
                   "Sign in again with the new one-time URL the console printed on its terminal.")) }
            @if !typed.is_empty() {
                section.notice-box #typed {
                    h2 { (t("未提交的内容", "Not submitted")) }
                    p { (t("这份表单到达时会话已结束，没有提交。您填写的内容如下，登录后可照此重新填写：",
                           "This form arrived after the session ended and was not submitted. What it held is below, to fill in again after signing in:")) }
                    table.facts { @for (name, value) in typed { tr { th { code { (name) } } td { (value) } } } }
                }
            }
        },
    )
}

/// Spends the one-time token and opens a session.
pub(super) async fn login(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let token = q.get("token").map(String::as_str).unwrap_or_default();
    match c.sessions.login(token) {
        Some(id) => (
            [(header::SET_COOKIE, c.sessions.set_cookie(&id))],
            Redirect::to("/"),
        )
            .into_response(),
        None => (StatusCode::FORBIDDEN, Html(pages::refused().into_string())).into_response(),
    }
}

/// Ends the session (a POST, from the button on every page; the cookie is
/// SameSite=Strict, so another site cannot sign anyone out) and shows the
/// page saying so.
pub(super) async fn logout(State(c): Shared, req: Request) -> Response {
    c.sessions.logout(&cookie_header(&req));
    Redirect::to("/").into_response()
}

/// Nothing but the session check: a page sends this while someone types,
/// so a long form does not outlive an idle session (204), or learns that
/// the session ended (401) and says so before the form is sent.
pub(super) async fn alive() -> StatusCode {
    StatusCode::NO_CONTENT
}

/// Adds `Server-Timing: app;dur=MS` — how long the console took to produce
/// the answer (the node's part included), as browsers' developer tools and
/// the bench read it — beside any step times the handler put there (the
/// trace page's `find`, `fetch1`, `fetch2`, `verify`, `render`).
pub(super) async fn timing(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let mut res = next.run(req).await;
    let ms = start.elapsed().as_secs_f64() * 1e3;
    if let Ok(v) = HeaderValue::from_str(&format!("app;dur={ms:.3}")) {
        res.headers_mut().append("server-timing", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_on_our_port() {
        assert!(host_ok("127.0.0.1:8080", 8080));
        assert!(host_ok("localhost:8080", 8080));
        assert!(host_ok("[::1]:8080", 8080));
        assert!(!host_ok("127.0.0.1:8081", 8080));
        assert!(!host_ok("evil.example:8080", 8080));
        assert!(!host_ok("127.0.0.1", 8080));
        assert!(!host_ok("", 8080));
    }

    #[test]
    fn the_ended_page_keeps_what_was_typed() {
        let page = ended(Ended::Idle, &[("person_name".into(), "张三".into())]).into_string();
        assert!(page.contains("会话已过期"), "{page}");
        assert!(page.contains("张三"), "{page}");
        assert!(page.contains("data-reason=\"Idle\""), "{page}");
    }
}

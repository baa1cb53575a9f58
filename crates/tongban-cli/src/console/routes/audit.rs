//! The auditor's handlers: find a case, trace it across the nodes, and
//! download its evidence bundle (the file `audit export` writes).

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::{Page, Shared, page};
use crate::audit::fetch::{self, Source};
use crate::cmd::status_error;
use crate::console::{Console, pages};

pub(super) async fn find(State(c): Shared) -> Page {
    page(pages::audit_find(&c, "", None))
}

/// Traces a case across the receiving and the home county's nodes (the
/// endpoints from the directory) and shows the page `audit trace --html`
/// writes.
pub(super) async fn trace(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let case_no = q
        .get("case")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let mut steps = Steps::default();
    match trace_case(&c, &case_no, &mut steps).await {
        Ok(html) => {
            let mut res = Html(pages::with_console_bar(
                &html,
                "/",
                crate::console::lang::t("另查案件", "Trace another case"),
            ))
            .into_response();
            if let Ok(v) = header::HeaderValue::from_str(&steps.header()) {
                res.headers_mut().append("server-timing", v);
            }
            res
        }
        Err(msg) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(pages::audit_find(&c, &case_no, Some(&msg)).into_string()),
        )
            .into_response(),
    }
}

/// The case's evidence bundle from the receiving and the home county's
/// nodes, as `tongban audit export` writes it (masked personal data), for
/// `tongban audit verify-bundle` to check anywhere later.
pub(super) async fn bundle(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let case_no = q
        .get("case")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    let fetched = match sources_of(&c, &case_no).await {
        Ok(sources) => match fetch::read_case(&case_no, sources, false).await {
            Ok(read) => fetch::complete(&case_no, read, &c.tls, None).await,
            Err(e) => Err(e),
        }
        .map_err(|e| format!("{e:#}")),
        Err(msg) => Err(msg),
    };
    let text = fetched.and_then(|b| serde_json::to_string_pretty(&b).map_err(|e| e.to_string()));
    match text {
        Ok(text) => {
            // The case number is checked by the node to be digits and dashes.
            let name: String = case_no
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"evidence-{name}.json\""),
                    ),
                    (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                text,
            )
                .into_response()
        }
        Err(msg) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(pages::audit_find(&c, &case_no, Some(&msg)).into_string()),
        )
            .into_response(),
    }
}

/// How long each step of a trace took, for a `Server-Timing` line beside
/// the console's own total (`find`, `fetch1`, `fetch2`, `verify`,
/// `render`), so a slow trace shows where it went.
#[derive(Default)]
struct Steps(Vec<(&'static str, std::time::Duration)>);

impl Steps {
    /// Runs `step`, noting its time under `name`.
    async fn time<T>(&mut self, name: &'static str, step: impl Future<Output = T>) -> T {
        let start = std::time::Instant::now();
        let out = step.await;
        self.0.push((name, start.elapsed()));
        out
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, d)| format!("{n};dur={:.3}", d.as_secs_f64() * 1e3))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

async fn trace_case(c: &Console, case_no: &str, steps: &mut Steps) -> Result<String, String> {
    let sources = steps.time("find", sources_of(c, case_no)).await?;
    // The first round needs nothing verified before: traces overlap in it.
    let read = steps
        .time("fetch1", fetch::read_case(case_no, sources, false))
        .await
        .map_err(|e| format!("{e:#}"))?;
    // From the checkpoint on, one trace at a time: each goes on from the
    // head the one before it verified, and extends it.
    let mut known = c.known.lock().await;
    let bundle = steps
        .time(
            "fetch2",
            fetch::complete(case_no, read, &c.tls, Some(&known)),
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
    // The console's anchor: signatures verified in an earlier trace (with
    // the same bytes, signature and signer, at a time the signer was
    // valid) are not verified again; everything else is checked in full.
    let report = steps
        .time("verify", async {
            crate::audit::verify::verify_with(&bundle, &c.anchor, &mut known)
        })
        .await;
    drop(known);
    let names = bundle.county_names();
    Ok(steps
        .time("render", async {
            crate::audit::html::render(&report, &names)
        })
        .await)
}

/// Where to read the case: the receiving node (from its number), whose
/// listing of the case is kept for the trace, and the home node (as the
/// receiving node names it), from the directory, on the console's kept
/// channels.
async fn sources_of(c: &Console, case_no: &str) -> Result<Vec<Source>, String> {
    let dir = c
        .directory
        .as_ref()
        .ok_or("no federation directory: start the console with --directory")?;
    let endpoint = |code: &str| {
        dir.counties
            .iter()
            .find(|k| k.code.as_str() == code)
            .map(|k| k.endpoint.clone())
    };
    let receiving = case_no.split('-').next().unwrap_or_default();
    let first = endpoint(receiving)
        .ok_or_else(|| format!("案件编号 {case_no:?} 不以目录中的区县代码开头 (no county {receiving:?} in the directory)"))?;
    // The receiving node names the home county.
    let mut client = c.audit_client(&first).await.map_err(|e| format!("{e:#}"))?;
    let reply = client
        .case_entries(tongban_proto::audit::v1::CaseEntriesRequest {
            case_no: case_no.to_owned(),
            reveal: false,
        })
        .await
        .map_err(|s| {
            // The node's words stay (they name the node asked); the page
            // says first, in its own language, what that means.
            let no_case = s.code() == tonic::Code::NotFound;
            let said = format!("{:#}", status_error(s));
            if no_case {
                format!(
                    "{} {case_no}: {said}",
                    crate::console::lang::t("没有这个案件", "no such case")
                )
            } else {
                said
            }
        })?
        .into_inner();
    let home = (reply.home_county != receiving)
        .then(|| endpoint(&reply.home_county))
        .flatten();
    let mut sources = vec![Source {
        url: first,
        client,
        listed: Some(reply),
    }];
    if let Some(url) = home {
        sources.push(Source {
            client: c.audit_client(&url).await.map_err(|e| format!("{e:#}"))?,
            url,
            listed: None,
        });
    }
    Ok(sources)
}

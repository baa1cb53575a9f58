//! The auditor's node verification: choose a node of the directory, start
//! verifying its whole ledger and evidence (or show the one running), watch
//! its progress (the page polls a small JSON, or refreshes itself without
//! JavaScript), and take its verdict away as the JSON `audit verify --json`
//! prints. The verifications themselves are `console::verifying`'s.

use std::collections::HashMap;

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};

use super::{Shared, not_found};
use crate::console::verifying::Node;
use crate::console::{Console, pages};

/// The directory's node of `county`: (code, name, endpoint).
fn node_of<'a>(c: &'a Console, county: &str) -> Option<Node<'a>> {
    c.directory
        .as_ref()?
        .counties
        .iter()
        .find(|k| k.code.as_str() == county)
        .map(|k| Node {
            county: k.code.as_str(),
            name: &k.name,
            url: &k.endpoint,
        })
}

/// The choice of node, with what the console verified of each.
pub(super) async fn home(State(c): Shared) -> Html<String> {
    Html(pages::verify_home(&c, None).into_string())
}

/// Starts verifying the chosen node (or finds the running verification)
/// and goes to its page.
pub(super) async fn start(State(c): Shared, Form(f): Form<HashMap<String, String>>) -> Response {
    let county = f.get("county").map(|s| s.trim()).unwrap_or_default();
    let Some(node) = node_of(&c, county) else {
        let msg = format!(
            "{} {county:?}",
            crate::console::lang::t(
                "目录中没有这个区县的节点：",
                "no node of this county in the directory:"
            )
        );
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(pages::verify_home(&c, Some(&msg)).into_string()),
        )
            .into_response();
    };
    let quick = f.get("scope").is_some_and(|s| s == "quick");
    let (job, _) = c.verifications.start(&c, node, quick);
    Redirect::to(&format!("/verify/{}", job.county)).into_response()
}

/// A node's latest verification: running or ended.
pub(super) async fn job(State(c): Shared, Path(county): Path<String>) -> Response {
    match c.verifications.get(&county) {
        Some(job) => Html(pages::verify_job(&c, &job).into_string()).into_response(),
        None if node_of(&c, &county).is_some() => Redirect::to("/verify").into_response(),
        None => not_found().await,
    }
}

/// How far a node's verification got, for the page to poll.
pub(super) async fn progress(State(c): Shared, Path(county): Path<String>) -> Response {
    match c.verifications.get(&county) {
        Some(job) => (
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            job.progress().to_json().to_string(),
        )
            .into_response(),
        None => not_found().await,
    }
}

/// The ended verification's verdict, as `audit verify --json` prints it.
pub(super) async fn verdict(State(c): Shared, Path(county): Path<String>) -> Response {
    let Some(verdict) = c
        .verifications
        .get(&county)
        .and_then(|j| j.progress().verdict)
    else {
        return not_found().await;
    };
    let text = serde_json::to_string_pretty(&verdict.to_json()).unwrap_or_default();
    // The county code is the directory's (six digits).
    let name: String = county.chars().filter(char::is_ascii_digit).collect();
    (
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"verify-{name}.json\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        text,
    )
        .into_response()
}

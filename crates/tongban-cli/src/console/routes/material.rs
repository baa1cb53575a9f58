//! `/case/{no}/material/{kind}`: one material of the case, streamed from
//! the node to the browser chunk by chunk as it arrives (never held whole),
//! through the same reading code as `tongban review material`. What a
//! browser may render is decided here, from the declared file name and a
//! short allow-list ([`tongban_core::filetype::inline_safe`]): PDF and
//! raster images inline, anything else a download as
//! `application/octet-stream`. Every material response carries `nosniff`
//! and a CSP that runs nothing, so an uploaded HTML or SVG file never
//! executes in the console's origin.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tongban_proto::common::v1::MaterialRequest;

use super::super::{Console, Role, lang, pages};

/// Nothing in a material response may run or load anything; an inline
/// image or PDF still shows (the PDF viewer is the browser's own).
const CSP: &str = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; \
                   object-src 'self'; frame-ancestors 'self'; form-action 'none'";
/// For a download: no rendering context at all.
const CSP_ATTACHMENT: &str = "default-src 'none'; sandbox";

/// The material `kind` of case `no`, inline when its declared name says it
/// is a format on the allow-list (unless `?download=1`), else a download.
pub(super) async fn material(
    State(c): State<Arc<Console>>,
    Path((no, kind)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let request = MaterialRequest {
        case_no: no.clone(),
        kind: kind.clone(),
    };
    let reply = match c.role {
        Role::Clerk => c.window().material(request).await,
        Role::Reviewer => c.review().material(request).await,
        Role::Auditor => return refuse(StatusCode::FORBIDDEN, "auditors read no materials"),
    };
    let code = reply.as_ref().err().map(|s| s.code());
    let mut reading = match crate::material::open(reply).await {
        Ok(r) => r,
        Err(e) => {
            let status = match code {
                Some(tonic::Code::NotFound) => StatusCode::NOT_FOUND,
                Some(tonic::Code::PermissionDenied) => StatusCode::FORBIDDEN,
                _ => StatusCode::BAD_GATEWAY,
            };
            return refuse(status, &format!("{e:#}"));
        }
    };
    let facts = reading.facts.clone();
    let guessed = tongban_core::filetype::content_type(&facts.filename).unwrap_or_default();
    let inline = tongban_core::filetype::inline_safe(guessed) && !query.contains_key("download");
    tracing::info!(case = %no, kind = %facts.kind, size = facts.size, inline, "material served");

    // Read on a task of its own so the body is fed as chunks arrive; an
    // error (DATA_LOSS, a digest mismatch) ends the body with an error,
    // which breaks the response: the browser never gets a complete file.
    let (tx, rx) = mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(4);
    tokio::spawn(async move {
        loop {
            match reading.next().await {
                Ok(Some(piece)) => {
                    if tx.send(Ok(piece)).await.is_err() {
                        return;
                    }
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "material read broke off");
                    let _ = tx.send(Err(std::io::Error::other(format!("{e:#}")))).await;
                    return;
                }
            }
        }
    });
    let mut res = Body::from_stream(ReceiverStream::new(rx)).into_response();
    let h = res.headers_mut();
    let content_type = if inline {
        guessed
    } else {
        "application/octet-stream"
    };
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(facts.size));
    if let Ok(v) = HeaderValue::from_str(&disposition(inline, &facts.filename)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(if inline { CSP } else { CSP_ATTACHMENT }),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&facts.sha256) {
        h.insert("x-tongban-sha256", v);
    }
    res
}

/// A refusal page with the node's (or our) words.
fn refuse(status: StatusCode, msg: &str) -> Response {
    let title = lang::t("无法打开材料", "Cannot open the material");
    (
        status,
        Html(pages::failure(&format!("{title}: {msg}")).into_string()),
    )
        .into_response()
}

/// `Content-Disposition` for the declared `filename` (the applicant's
/// text): an ASCII fallback with every quote, backslash, control and
/// non-ASCII character replaced by `_`, and the exact name as RFC 8187
/// `filename*`.
fn disposition(inline: bool, filename: &str) -> String {
    let kind = if inline { "inline" } else { "attachment" };
    let name = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let ascii = if ascii.trim().is_empty() {
        "material".to_string()
    } else {
        ascii
    };
    format!(
        "{kind}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent(name)
    )
}

/// `s` percent-encoded except for RFC 3986's unreserved characters: safe in
/// a URL path segment and in RFC 8187's `filename*`.
pub(crate) fn percent(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostile_file_name_cannot_break_the_header() {
        let d = disposition(false, "a\"; x=\r\n../营业执照.pdf");
        assert!(!d.contains('\r') && !d.contains('\n'), "{d}");
        assert!(HeaderValue::from_str(&d).is_ok(), "{d}");
        assert!(d.starts_with("attachment; filename=\""), "{d}");
        assert!(
            d.ends_with("filename*=UTF-8''%E8%90%A5%E4%B8%9A%E6%89%A7%E7%85%A7.pdf"),
            "{d}"
        );
        assert_eq!(
            disposition(true, "scan.png"),
            "inline; filename=\"scan.png\"; filename*=UTF-8''scan.png"
        );
        assert_eq!(percent("id card/x"), "id%20card%2Fx");
    }
}

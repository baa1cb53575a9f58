//! The console's routes per role with the checks of `access` in front,
//! with what every form shares: reading it, streaming its files to the
//! node, and the one way a state-changing call ends (on to the next page,
//! or the page again with the node's words at the form). The handlers
//! themselves are per role: `clerk`, `review`, `audit` (and the auditor's
//! node verification, `verify`); a material is streamed to the browser by
//! `material`.

// Read-only request messages are built with `..Default::default()` so that
// a field the protocol adds later does not break this module; where every
// field is named today clippy points that out. State-changing requests
// name their `request_id` (from the form) explicitly.
#![allow(clippy::needless_update)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use sha2::{Digest, Sha256};
use tongban_proto::common::v1::{CaseView, MaterialChunk, MaterialHeader};
use tongban_proto::mail::v1::mail_client::MailClient;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::window::v1::window_client::WindowClient;

use super::{Console, Role, access, lang, pages};
use crate::cmd::status_error;

/// A handler for a plain (url-encoded) form on a case page: the body
/// builds the request from the case number and the form's fields and names
/// the console's client and method; the call is made as the CLI makes it
/// (again with the same request id while the node does not answer), and
/// [`settle_to`] ends it as form `$form` (going on to `then` instead of the
/// case page, when given).
macro_rules! step {
    ($(#[$doc:meta])* $name:ident, $form:literal,
     |$c:ident, $no:ident, $f:ident| $client:ident . $method:ident ($req:expr)
     $(, then $next:expr)? $(,)?) => {
        $(#[$doc])*
        pub(super) async fn $name(
            axum::extract::State($c): $crate::console::routes::Shared,
            axum::extract::Path($no): axum::extract::Path<String>,
            uri: axum::http::Uri,
            axum::Form($f): axum::Form<std::collections::HashMap<String, String>>,
        ) -> axum::response::Response {
            let request = $req;
            let reply = $crate::client::retried(&request.request_id, || {
                let mut client = $c.$client();
                let request = $crate::client::unary(request.clone());
                async move { client.$method(request).await }
            })
            .await;
            #[allow(unused_mut, unused_assignments)]
            let mut next = format!("/case/{}", $no);
            $(next = $next;)?
            let again = $crate::console::routes::Resend::plain(uri.path(), &$f);
            $crate::console::routes::settle_to(&$c, &$no, $form, reply, &next, &again).await
        }
    };
}

mod audit;
mod clerk;
pub(super) mod material;
mod review;
mod verify;

pub(super) use clerk::Draft;

type Shared = State<Arc<Console>>;

/// Uploads up to this size per request (the node streams materials in
/// chunks; this bounds what the console holds in memory).
const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Chunk size of the streams to the node.
const CHUNK: usize = 64 * 1024;

/// The routes of the console's role, behind the session check.
pub(super) fn router(console: Arc<Console>) -> Router {
    let pages = match console.role {
        Role::Clerk => Router::new()
            .route("/", get(clerk::list))
            .route("/new", get(clerk::new_form).post(clerk::apply))
            .route("/case/{no}", get(clerk::case))
            .route("/case/{no}/attach", post(clerk::attach))
            .route("/case/{no}/verify", post(clerk::verify))
            .route("/case/{no}/accept", post(clerk::accept))
            .route("/case/{no}/resubmit", post(clerk::resubmit))
            .route("/case/{no}/commit", post(clerk::commit))
            .route("/case/{no}/consult", post(clerk::consult))
            .route("/case/{no}/supply", post(clerk::supply))
            .route("/case/{no}/handout", post(clerk::handout))
            .route("/case/{no}/mail", post(mail_send))
            .route("/case/{no}/mail-event", post(mail_event))
            .route("/case/{no}/retry", post(clerk::retry))
            .route("/case/{no}/notice/{kind}", get(notice))
            .route("/case/{no}/material/{kind}", get(material::material))
            .route("/overdue", get(clerk::overdue)),
        Role::Reviewer => Router::new()
            .route("/", get(review::inbox))
            .route("/case/{no}", get(review::case))
            .route("/case/{no}/accept", post(review::accept))
            .route("/case/{no}/paper-received", post(review::paper_received))
            .route("/case/{no}/correct", post(review::correct))
            .route("/case/{no}/approve", post(review::approve))
            .route("/case/{no}/deny", post(review::deny))
            .route("/case/{no}/handout", post(review::handout))
            .route("/case/{no}/mail", post(mail_send))
            .route("/case/{no}/mail-event", post(mail_event))
            .route("/case/{no}/retry", post(review::retry))
            .route("/case/{no}/notice/{kind}", get(notice))
            .route("/case/{no}/material/{kind}", get(material::material))
            .route("/overdue", get(review::overdue)),
        Role::Auditor => Router::new()
            .route("/", get(audit::find))
            .route("/trace", get(audit::trace))
            .route("/bundle", get(audit::bundle))
            .route("/verify", get(verify::home).post(verify::start))
            .route("/verify/{county}", get(verify::job))
            .route("/verify/{county}/progress", get(verify::progress))
            .route("/verify/{county}/verdict.json", get(verify::verdict)),
    };
    // Another role's page does not exist here (404) — but only with a
    // session: without one every address is refused alike (401), so the
    // refusal does not tell which pages this console has.
    let pages = pages.fallback(not_found);
    // The assets are the same for everyone and hold nothing of a case, so
    // the refusal page can use the stylesheet too.
    pages
        .route("/logout", post(access::logout))
        .route("/session/alive", post(access::alive))
        .layer(middleware::from_fn_with_state(
            console.clone(),
            access::require_session,
        ))
        .route("/login", get(access::login))
        .route("/assets/console.css", get(css))
        .route("/assets/console.js", get(js))
        .layer(middleware::from_fn_with_state(
            console.clone(),
            access::require_host,
        ))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        // Outermost, so the refusals above are in the reader's language too.
        .layer(middleware::from_fn_with_state(
            console.clone(),
            lang::choose,
        ))
        .layer(middleware::from_fn(access::timing))
        .with_state(console)
}

async fn css() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        pages::CSS,
    )
}

async fn js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        pages::JS,
    )
}

async fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        Html(pages::not_found().into_string()),
    )
        .into_response()
}

/// A failure shown as a page: what the node said, in its words.
struct Failure(String);

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        if lost(&s) {
            return Failure(format!(
                "{}: {:#}",
                lang::t("与节点的连接中断", "lost the connection to the node"),
                status_error(s)
            ));
        }
        // A coded refusal in the page's language; another in the node's
        // words (English, with the status code) after a line saying, in
        // the page's language, that the node refused.
        let chain = format!("{:#}", status_error(s.clone()));
        Failure(super::refusal::refused_words(&s, &chain))
    }
}

/// Whether the node could not be reached or did not answer: the request may
/// or may not have been applied, and sending it again with the same request
/// id is safe (the node applies an id once and answers a repeat with the
/// first reply).
fn lost(status: &tonic::Status) -> bool {
    crate::client::unanswered(status)
}

/// What a form sent, to send it again after a lost connection: its action,
/// its text fields (with the request id) and the names of its files, which
/// the browser cannot be made to send again and so are chosen again.
pub(super) struct Resend {
    /// Where the form posts.
    pub(super) action: String,
    /// The text fields, in order.
    pub(super) fields: Vec<(String, String)>,
    /// `(input name, file name)` of each file the form carried.
    pub(super) files: Vec<(String, String)>,
}

impl Resend {
    fn plain(action: &str, fields: &HashMap<String, String>) -> Self {
        let mut fields: Vec<_> = fields.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        fields.sort();
        Self {
            action: action.to_owned(),
            fields,
            files: Vec::new(),
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        (
            StatusCode::BAD_GATEWAY,
            Html(pages::failure(&self.0).into_string()),
        )
            .into_response()
    }
}

type Page = Result<Html<String>, Failure>;

fn page(m: Markup) -> Page {
    Ok(Html(m.into_string()))
}

impl Console {
    fn window(&self) -> WindowClient<tonic::transport::Channel> {
        WindowClient::new(self.node.clone().expect("clerk consoles have a node"))
    }

    fn review(&self) -> ReviewClient<tonic::transport::Channel> {
        ReviewClient::new(self.node.clone().expect("reviewer consoles have a node"))
    }

    fn mail(&self) -> MailClient<tonic::transport::Channel> {
        MailClient::new(
            self.node
                .clone()
                .expect("clerk and reviewer consoles have a node"),
        )
    }
}

// ---- forms ---------------------------------------------------------------

/// A submitted form: its text fields and its files (`material:KIND` or
/// `result`), empty file inputs left out.
#[derive(Default)]
struct Form {
    fields: HashMap<String, String>,
    multi: Vec<(String, String)>,
    files: Vec<(String, String, Vec<u8>)>,
}

/// A handler takes the form itself; one that cannot be read is answered
/// with the failure page.
impl<S: Send + Sync> axum::extract::FromRequest<S> for Form {
    type Rejection = Response;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        let mp = Multipart::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        Form::read(mp).await.map_err(IntoResponse::into_response)
    }
}

impl Form {
    /// The form as sent to `action`, to send it again.
    fn resend(&self, action: String) -> Resend {
        Resend {
            action,
            fields: self.multi.clone(),
            files: self
                .files
                .iter()
                .map(|(name, filename, _)| (name.clone(), filename.clone()))
                .collect(),
        }
    }

    async fn read(mut mp: Multipart) -> Result<Self, Failure> {
        let mut form = Form::default();
        let bad = |e: axum::extract::multipart::MultipartError| {
            Failure(format!("the form could not be read: {e}"))
        };
        while let Some(field) = mp.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
            match field.file_name().map(str::to_owned) {
                Some(filename) => {
                    let data = field.bytes().await.map_err(bad)?;
                    if !filename.is_empty() && !data.is_empty() {
                        form.files.push((name, filename, data.to_vec()));
                    }
                }
                None => {
                    let text = field.text().await.map_err(bad)?;
                    form.multi.push((name.clone(), text.clone()));
                    form.fields.insert(name, text);
                }
            }
        }
        Ok(form)
    }

    fn get(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    /// Materials from `material:KIND` file inputs, with their headers.
    fn materials(&self) -> Vec<(MaterialHeader, Vec<u8>)> {
        self.files
            .iter()
            .filter_map(|(name, filename, data)| {
                let kind = name.strip_prefix("material:")?;
                Some((header(kind, filename, data), data.clone()))
            })
            .collect()
    }
}

fn header(kind: &str, filename: &str, data: &[u8]) -> MaterialHeader {
    MaterialHeader {
        kind: kind.to_owned(),
        filename: filename.to_owned(),
        size: data.len() as u64,
        sha256: Sha256::digest(data).to_vec(),
    }
}

/// Every material's chunks, in order.
fn chunks(materials: &[(MaterialHeader, Vec<u8>)]) -> Vec<MaterialChunk> {
    materials
        .iter()
        .enumerate()
        .flat_map(|(i, (_, data))| {
            data.chunks(CHUNK).map(move |c| MaterialChunk {
                material: i as u32,
                data: c.to_vec().into(),
            })
        })
        .collect()
}

/// The form's request id (every state-changing form carries one; a fresh
/// one if it did not, so the call is still made once).
fn request_id_of(fields: &HashMap<String, String>) -> String {
    fields
        .get("request_id")
        .filter(|id| !id.is_empty())
        .cloned()
        .unwrap_or_else(|| uuid::Uuid::new_v4().hyphenated().to_string())
}

/// The frames of a streaming call: its header, then every material's
/// chunks in order, each wrapped the way that call's frame type wants.
fn frames<F>(
    header: F,
    materials: &[(MaterialHeader, Vec<u8>)],
    chunk: impl Fn(MaterialChunk) -> F,
) -> tokio_stream::Iter<std::vec::IntoIter<F>> {
    let all: Vec<F> = std::iter::once(header)
        .chain(chunks(materials).into_iter().map(chunk))
        .collect();
    tokio_stream::iter(all)
}

impl Console {
    /// Case `no` as the console's role sees it (the window's copy or the
    /// home authority's).
    async fn case(&self, no: &str) -> Result<CaseView, Failure> {
        let reply = match self.role {
            Role::Reviewer => {
                self.review()
                    .get_case(tongban_proto::review::v1::CaseRef {
                        case_no: no.to_owned(),
                        ..Default::default()
                    })
                    .await?
            }
            _ => {
                self.window()
                    .get_case(tongban_proto::window::v1::CaseRef {
                        case_no: no.to_owned(),
                        ..Default::default()
                    })
                    .await?
            }
        };
        Ok(reply.into_inner())
    }
}

/// How every state-changing form on a case page ends: on success to the
/// case page, on a refusal the case page again with the node's words inside
/// form `form`, on a lost connection the form again to send as it was.
async fn settle<T>(
    c: &Console,
    no: &str,
    form: &'static str,
    reply: Result<T, tonic::Status>,
    again: &Resend,
) -> Response {
    settle_to(c, no, form, reply, &format!("/case/{no}"), again).await
}

/// [`settle`] going on to `next` on success.
async fn settle_to<T>(
    c: &Console,
    no: &str,
    form: &'static str,
    reply: Result<T, tonic::Status>,
    next: &str,
    again: &Resend,
) -> Response {
    let status = match reply {
        Ok(_) => return Redirect::to(next).into_response(),
        Err(status) => status,
    };
    if lost(&status) {
        let msg = Failure::from(status).0;
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Html(pages::lost_connection(c, no, &msg, again).into_string()),
        )
            .into_response();
    }
    let msg = Failure::from(status).0;
    let problem = pages::Problem {
        form,
        msg: &msg,
        fields: &again.fields,
    };
    match c.case(no).await {
        Ok(case) => {
            let body = match c.role {
                Role::Reviewer => pages::review_case(c, &case, Some(&problem)),
                _ => pages::clerk_case(c, &case, Some(&problem)),
            };
            (StatusCode::UNPROCESSABLE_ENTITY, Html(body.into_string())).into_response()
        }
        Err(e) => e.into_response(),
    }
}

// Mail legs are either side's: the window mails the paper originals, the
// home authority the result; each records its own legs' carrier events
// (and the window a result's arrival). The node decides which is allowed.
step!(
    /// Records a leg as sent, with its carrier and waybill.
    mail_send,
    "mail",
    |c, no, f| mail.send(tongban_proto::mail::v1::SendRequest {
        case_no: no.clone(),
        leg: f.get("leg").cloned().unwrap_or_default(),
        carrier: f.get("carrier").map(|s| s.trim().to_owned()).unwrap_or_default(),
        waybill: f.get("waybill").map(|s| s.trim().to_uppercase()).unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Records a carrier event of one of the case's waybills.
    mail_event,
    "mail-event",
    |c, no, f| mail.event(tongban_proto::mail::v1::EventRequest {
        waybill: f.get("waybill").cloned().unwrap_or_default(),
        status: f.get("status").cloned().unwrap_or_default(),
        at: String::new(),
        note: f.get("note").map(|s| s.trim().to_owned()).unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

/// A printable notice (受理回执, 补正材料通知书, ...), rendered by the same
/// code as `tongban notice`.
async fn notice(State(c): Shared, Path((no, kind)): Path<(String, String)>) -> Page {
    let kind = crate::notice::Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| Failure(format!("no notice called {kind:?}")))?;
    let case = c.case(&no).await?;
    let ctx = crate::notice::Context {
        printed_at: now_rfc3339(),
        check_hint: String::new(),
    };
    let html = crate::notice::render(kind, &case, &ctx).map_err(|e| Failure(e.to_string()))?;
    // Accepting lands here (受理并打印回执): the way back to the case.
    let back = format!("/case/{no}");
    Ok(Html(pages::with_console_bar(
        &html,
        &back,
        lang::t("返回案件", "Back to the case"),
    )))
}

pub(super) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

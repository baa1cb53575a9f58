//! The console's routes per role, the session check in front of them, and
//! the calls to the node behind each form.

// Read-only request messages are built with `..Default::default()` so that
// a field the protocol adds later does not break this module; where every
// field is named today clippy points that out. State-changing requests
// name their `request_id` (from the form) explicitly.
#![allow(clippy::needless_update)]

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::middleware;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use sha2::{Digest, Sha256};
use tongban_proto::common::v1::{
    Applicant, CaseView, CorrectionNeed, MaterialChunk, MaterialHeader, Person, applicant::Who,
};
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::{review, window};

use super::{Console, Role, access, lang, pages};
use crate::cmd::status_error;

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
            .route("/", get(clerk_list))
            .route("/new", get(clerk_new_form).post(clerk_apply))
            .route("/case/{no}", get(clerk_case))
            .route("/case/{no}/attach", post(clerk_attach))
            .route("/case/{no}/verify", post(clerk_verify))
            .route("/case/{no}/accept", post(clerk_accept))
            .route("/case/{no}/resubmit", post(clerk_resubmit))
            .route("/case/{no}/notice/{kind}", get(notice)),
        Role::Reviewer => Router::new()
            .route("/", get(review_inbox))
            .route("/case/{no}", get(review_case))
            .route("/case/{no}/accept", post(review_accept))
            .route("/case/{no}/paper-received", post(review_paper_received))
            .route("/case/{no}/correct", post(review_correct))
            .route("/case/{no}/approve", post(review_approve))
            .route("/case/{no}/deny", post(review_deny))
            .route("/case/{no}/notice/{kind}", get(notice)),
        Role::Auditor => Router::new()
            .route("/", get(audit_find))
            .route("/trace", get(audit_trace)),
    };
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

/// A failure shown as a page: what the node said, in its words.
struct Failure(String);

impl From<tonic::Status> for Failure {
    fn from(s: tonic::Status) -> Self {
        Failure(format!("{:#}", status_error(s)))
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

impl Form {
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

/// The application a clerk typed, kept to fill the form again on an error.
#[derive(Default, Clone)]
pub(super) struct Draft {
    pub(super) item: String,
    pub(super) home: String,
    pub(super) delivery: String,
    pub(super) name: String,
    pub(super) id: String,
    pub(super) phone: String,
    pub(super) address: String,
}

impl Draft {
    fn from_form(f: &Form) -> Self {
        let route = f.get("route");
        let (item, home) = route.split_once('/').unwrap_or((route.as_str(), ""));
        Self {
            item: item.to_owned(),
            home: home.to_owned(),
            delivery: f.get("delivery"),
            name: f.get("person_name"),
            id: f.get("person_id").trim().to_uppercase(),
            phone: f.get("phone"),
            address: f.get("address"),
        }
    }
}

// ---- clerk ---------------------------------------------------------------

async fn clerk_list(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Page {
    let state = q.get("state").cloned().unwrap_or_default();
    let cases = c
        .window()
        .list_cases(window::v1::ListCasesRequest {
            state: state.clone(),
            limit: 200,
            ..Default::default()
        })
        .await?
        .into_inner()
        .cases;
    page(pages::clerk_list(&c, &state, &cases))
}

async fn clerk_new_form(State(c): Shared) -> Page {
    page(pages::clerk_new(&c, &Draft::default(), None))
}

async fn clerk_apply(State(c): Shared, mp: Multipart) -> Response {
    let form = match Form::read(mp).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let draft = Draft::from_form(&form);
    let again = |msg: String| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(pages::clerk_new(&c, &draft, Some(&msg)).into_string()),
        )
            .into_response()
    };
    if !resident_id_ok(&draft.id) {
        return again(format!(
            "身份证号码 {} 的校验码不对，请核对后重新输入 (the ID number's check character is wrong)",
            draft.id
        ));
    }
    let materials = form.materials();
    let first = window::v1::ApplyFrame {
        frame: Some(window::v1::apply_frame::Frame::Header(
            window::v1::ApplyHeader {
                item_code: draft.item.clone(),
                home_county: draft.home.clone(),
                delivery: draft.delivery.clone(),
                applicant: Some(Applicant {
                    who: Some(Who::Person(Person {
                        name: draft.name.clone(),
                        resident_id: draft.id.clone(),
                    })),
                    phone: draft.phone.clone(),
                    address: draft.address.clone(),
                }),
                materials: materials.iter().map(|(h, _)| h.clone()).collect(),
                request_id: request_id_of(&form.fields),
            },
        )),
    };
    let frames: Vec<_> = std::iter::once(first)
        .chain(
            chunks(&materials)
                .into_iter()
                .map(|ch| window::v1::ApplyFrame {
                    frame: Some(window::v1::apply_frame::Frame::Chunk(ch)),
                }),
        )
        .collect();
    match c.window().apply(tokio_stream::iter(frames)).await {
        Ok(reply) => Redirect::to(&format!("/case/{}", reply.into_inner().case_no)).into_response(),
        Err(status) => again(Failure::from(status).0),
    }
}

/// GB 11643 check of an 18-character resident ID (the same rule the
/// page's script applies as the clerk types; the node checks again).
fn resident_id_ok(id: &str) -> bool {
    id.parse::<tongban_core::ResidentId>().is_ok()
}

async fn clerk_case(State(c): Shared, Path(no): Path<String>) -> Page {
    let case = get_window_case(&c, &no).await?;
    page(pages::clerk_case(&c, &case, None))
}

async fn get_window_case(c: &Console, no: &str) -> Result<CaseView, Failure> {
    Ok(c.window()
        .get_case(window::v1::CaseRef {
            case_no: no.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner())
}

/// Shows the case again with the node's complaint in the form `form`.
async fn case_with_error(
    c: &Console,
    no: &str,
    form: &'static str,
    status: tonic::Status,
) -> Response {
    let msg = Failure::from(status).0;
    let problem = pages::Problem { form, msg: &msg };
    let case = match c.role {
        Role::Reviewer => get_review_case(c, no).await,
        _ => get_window_case(c, no).await,
    };
    match case {
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

fn back_to(no: &str) -> Response {
    Redirect::to(&format!("/case/{no}")).into_response()
}

async fn clerk_attach(State(c): Shared, Path(no): Path<String>, mp: Multipart) -> Response {
    let form = match Form::read(mp).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let materials = form.materials();
    let first = window::v1::AttachFrame {
        frame: Some(window::v1::attach_frame::Frame::Header(
            window::v1::AttachHeader {
                case_no: no.clone(),
                materials: materials.iter().map(|(h, _)| h.clone()).collect(),
                request_id: request_id_of(&form.fields),
            },
        )),
    };
    let frames: Vec<_> = std::iter::once(first)
        .chain(
            chunks(&materials)
                .into_iter()
                .map(|ch| window::v1::AttachFrame {
                    frame: Some(window::v1::attach_frame::Frame::Chunk(ch)),
                }),
        )
        .collect();
    match c.window().attach(tokio_stream::iter(frames)).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "attach", s).await,
    }
}

async fn clerk_verify(
    State(c): Shared,
    Path(no): Path<String>,
    axum::Form(f): axum::Form<HashMap<String, String>>,
) -> Response {
    let req = window::v1::VerifyIdentityRequest {
        case_no: no.clone(),
        method: f.get("method").cloned().unwrap_or_default(),
        request_id: request_id_of(&f),
    };
    match c.window().verify_identity(req).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "verify", s).await,
    }
}

async fn clerk_accept(
    State(c): Shared,
    Path(no): Path<String>,
    axum::Form(f): axum::Form<HashMap<String, String>>,
) -> Response {
    let req = window::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    };
    match c.window().accept(req).await {
        Ok(_) => Redirect::to(&format!("/case/{no}/notice/intake-receipt")).into_response(),
        Err(s) => case_with_error(&c, &no, "accept", s).await,
    }
}

async fn clerk_resubmit(
    State(c): Shared,
    Path(no): Path<String>,
    axum::Form(f): axum::Form<HashMap<String, String>>,
) -> Response {
    let req = window::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    };
    match c.window().resubmit(req).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "resubmit", s).await,
    }
}

/// A printable notice (受理回执, 补正材料通知书, ...), rendered by the same
/// code as `tongban notice`.
async fn notice(State(c): Shared, Path((no, kind)): Path<(String, String)>) -> Page {
    let kind = crate::notice::Kind::ALL
        .into_iter()
        .find(|k| k.as_str() == kind)
        .ok_or_else(|| Failure(format!("no notice called {kind:?}")))?;
    let case = match c.role {
        Role::Reviewer => get_review_case(&c, &no).await?,
        _ => get_window_case(&c, &no).await?,
    };
    let ctx = crate::notice::Context {
        printed_at: now_rfc3339(),
        check_hint: String::new(),
    };
    let html = crate::notice::render(kind, &case, &ctx).map_err(|e| Failure(e.to_string()))?;
    Ok(Html(html))
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

// ---- reviewer ------------------------------------------------------------

async fn review_inbox(State(c): Shared) -> Page {
    let mut cases = c
        .review()
        .inbox(review::v1::InboxRequest::default())
        .await?
        .into_inner()
        .cases;
    // Fewest working days left first; cases whose clock has not started
    // (not yet accepted) after them, oldest first as the node sends them.
    cases.sort_by_key(|k| {
        if k.due_date.is_empty() {
            i64::MAX
        } else {
            i64::from(k.working_days_left)
        }
    });
    page(pages::review_inbox(&c, &cases))
}

async fn get_review_case(c: &Console, no: &str) -> Result<CaseView, Failure> {
    Ok(c.review()
        .get_case(review::v1::CaseRef {
            case_no: no.to_owned(),
            ..Default::default()
        })
        .await?
        .into_inner())
}

async fn review_case(State(c): Shared, Path(no): Path<String>) -> Page {
    let case = get_review_case(&c, &no).await?;
    page(pages::review_case(&c, &case, None))
}

async fn review_accept(
    State(c): Shared,
    Path(no): Path<String>,
    axum::Form(f): axum::Form<HashMap<String, String>>,
) -> Response {
    let req = review::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    };
    match c.review().accept(req).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "accept", s).await,
    }
}

async fn review_paper_received(
    State(c): Shared,
    Path(no): Path<String>,
    axum::Form(f): axum::Form<HashMap<String, String>>,
) -> Response {
    let req = review::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    };
    match c.review().paper_received(req).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "paper", s).await,
    }
}

async fn review_correct(State(c): Shared, Path(no): Path<String>, mp: Multipart) -> Response {
    let form = match Form::read(mp).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let needs = form
        .multi
        .iter()
        .filter(|(name, _)| name == "need")
        .map(|(_, kind)| CorrectionNeed {
            kind: kind.clone(),
            reason: form.get(&format!("reason:{kind}")),
        })
        .collect();
    let req = review::v1::CorrectRequest {
        case_no: no.clone(),
        needs,
        deadline_days: form.get("deadline").trim().parse().unwrap_or(0),
        request_id: request_id_of(&form.fields),
    };
    match c.review().correct(req).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "correct", s).await,
    }
}

async fn review_approve(State(c): Shared, Path(no): Path<String>, mp: Multipart) -> Response {
    let form = match Form::read(mp).await {
        Ok(f) => f,
        Err(e) => return e.into_response(),
    };
    let Some((_, filename, data)) = form.files.iter().find(|(n, _, _)| n == "result") else {
        let status = tonic::Status::invalid_argument("choose the result document to approve with");
        return case_with_error(&c, &no, "approve", status).await;
    };
    let result = (header("result", filename, data), data.clone());
    let first = review::v1::ApproveFrame {
        frame: Some(review::v1::approve_frame::Frame::Header(
            review::v1::ApproveHeader {
                case_no: no.clone(),
                licence_no: form.get("licence_no").trim().to_owned(),
                result: Some(result.0.clone()),
                request_id: request_id_of(&form.fields),
            },
        )),
    };
    let frames: Vec<_> = std::iter::once(first)
        .chain(chunks(std::slice::from_ref(&result)).into_iter().map(|ch| {
            review::v1::ApproveFrame {
                frame: Some(review::v1::approve_frame::Frame::Chunk(ch)),
            }
        }))
        .collect();
    match c.review().approve(tokio_stream::iter(frames)).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "approve", s).await,
    }
}

async fn review_deny(
    State(c): Shared,
    Path(no): Path<String>,
    axum::Form(f): axum::Form<HashMap<String, String>>,
) -> Response {
    let req = review::v1::DenyRequest {
        case_no: no.clone(),
        reason: f.get("reason").cloned().unwrap_or_default(),
        request_id: request_id_of(&f),
    };
    match c.review().deny(req).await {
        Ok(_) => back_to(&no),
        Err(s) => case_with_error(&c, &no, "deny", s).await,
    }
}

// ---- auditor -------------------------------------------------------------

async fn audit_find(State(c): Shared) -> Page {
    page(pages::audit_find(&c, "", None))
}

/// Traces a case across the receiving and the home county's nodes (the
/// endpoints from the directory) and shows the page `audit trace --html`
/// writes.
async fn audit_trace(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Response {
    let case_no = q
        .get("case")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    match trace(&c, &case_no).await {
        Ok(html) => Html(html).into_response(),
        Err(msg) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            Html(pages::audit_find(&c, &case_no, Some(&msg)).into_string()),
        )
            .into_response(),
    }
}

async fn trace(c: &Console, case_no: &str) -> Result<String, String> {
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
    let mut client = tongban_proto::audit::v1::audit_client::AuditClient::new(
        crate::client::channel(&first, &c.tls)
            .await
            .map_err(|e| format!("{e:#}"))?,
    );
    let reply = client
        .case_entries(tongban_proto::audit::v1::CaseEntriesRequest {
            case_no: case_no.to_owned(),
            reveal: false,
        })
        .await
        .map_err(|s| format!("{:#}", status_error(s)))?
        .into_inner();
    let mut nodes = vec![first];
    if reply.home_county != receiving
        && let Some(home) = endpoint(&reply.home_county)
    {
        nodes.push(home);
    }
    let bundle = crate::audit::fetch::fetch(case_no, &nodes, &c.tls, false)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let anchor = c.tls.trust_anchor().map_err(|e| e.to_string())?;
    let report = crate::audit::verify::verify(&bundle, &anchor);
    Ok(crate::audit::html::render(&report, &bundle.county_names()))
}

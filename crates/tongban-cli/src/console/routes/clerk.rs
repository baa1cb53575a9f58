//! The window clerk's handlers: the case list, the application form, and
//! the steps at the window before and after the handoff.

use std::collections::HashMap;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use tongban_proto::common::v1::{Applicant, Person, applicant::Who};
use tongban_proto::window;

use super::{Failure, Form, Page, Shared, frames, page, request_id_of, settle};
use crate::console::pages;

/// The application a clerk typed, kept to fill the form again on an error.
#[derive(Default, Clone)]
pub(crate) struct Draft {
    pub(crate) item: String,
    pub(crate) home: String,
    pub(crate) delivery: String,
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) phone: String,
    pub(crate) address: String,
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

pub(super) async fn list(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Page {
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

pub(super) async fn new_form(State(c): Shared) -> Page {
    page(pages::clerk_new(&c, &Draft::default(), None))
}

pub(super) async fn apply(State(c): Shared, mp: Multipart) -> Response {
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
    let frames = frames(first, &materials, |ch| window::v1::ApplyFrame {
        frame: Some(window::v1::apply_frame::Frame::Chunk(ch)),
    });
    match c.window().apply(frames).await {
        Ok(reply) => Redirect::to(&format!("/case/{}", reply.into_inner().case_no)).into_response(),
        Err(status) => again(Failure::from(status).0),
    }
}

/// GB 11643 check of an 18-character resident ID (the same rule the
/// page's script applies as the clerk types; the node checks again).
fn resident_id_ok(id: &str) -> bool {
    id.parse::<tongban_core::ResidentId>().is_ok()
}

pub(super) async fn case(State(c): Shared, Path(no): Path<String>) -> Page {
    let case = c.case(&no).await?;
    page(pages::clerk_case(&c, &case, None))
}

pub(super) async fn attach(State(c): Shared, Path(no): Path<String>, mp: Multipart) -> Response {
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
    let frames = frames(first, &materials, |ch| window::v1::AttachFrame {
        frame: Some(window::v1::attach_frame::Frame::Chunk(ch)),
    });
    let reply = c.window().attach(frames).await;
    settle(&c, &no, "attach", reply).await
}

step!(
    /// Records how the applicant's identity was checked.
    verify,
    "verify",
    |c, no, f| c.window().verify_identity(window::v1::VerifyIdentityRequest {
        case_no: no.clone(),
        method: f.get("method").cloned().unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Accepts at the window and goes on to the printable 受理回执.
    accept,
    "accept",
    |c, no, f| c.window().accept(window::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
    then format!("/case/{no}/notice/intake-receipt")
);

step!(
    /// Sends the attached corrections back to the home authority.
    resubmit,
    "resubmit",
    |c, no, f| c.window().resubmit(window::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
);

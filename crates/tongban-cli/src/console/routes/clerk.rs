//! The window clerk's handlers: the case list, the application form, and
//! the steps at the window before and after the handoff.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use tongban_proto::common::v1::{Applicant, Company, Person, applicant::Who};
use tongban_proto::window;

use super::{Failure, Form, Page, Shared, frames, page, request_id_of, settle};
use crate::client::retried;
use crate::console::Console;
use crate::console::pages;
use crate::console::paging::{PAGE, Pager};

/// The application a clerk typed, kept to fill the form again on an error
/// (with its request id, so sending it again cannot make a second case).
#[derive(Default, Clone)]
pub(crate) struct Draft {
    pub(crate) item: String,
    pub(crate) home: String,
    pub(crate) delivery: String,
    /// `person` or `company`.
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) id: String,
    pub(crate) company_name: String,
    pub(crate) credit_code: String,
    pub(crate) legal_rep: String,
    pub(crate) legal_rep_id: String,
    pub(crate) phone: String,
    pub(crate) address: String,
    /// The request id of the form that was sent; empty on a new form.
    pub(crate) request_id: String,
}

impl Draft {
    fn from_form(f: &Form) -> Self {
        let route = f.get("route");
        let (item, home) = route.split_once('/').unwrap_or((route.as_str(), ""));
        let upper = |name: &str| f.get(name).trim().to_uppercase();
        Self {
            item: item.to_owned(),
            home: home.to_owned(),
            delivery: f.get("delivery"),
            kind: if f.get("applicant") == "company" {
                "company".to_owned()
            } else {
                "person".to_owned()
            },
            name: f.get("person_name"),
            id: upper("person_id"),
            company_name: f.get("company_name"),
            credit_code: upper("credit_code"),
            legal_rep: f.get("legal_rep"),
            legal_rep_id: upper("legal_rep_id"),
            phone: f.get("phone"),
            address: f.get("address"),
            request_id: request_id_of(&f.fields),
        }
    }

    fn is_company(&self) -> bool {
        self.kind == "company"
    }

    /// The form's input that request field `path` (a proto path the
    /// node names in a refusal) was typed in, if the form has one.
    fn input_of(path: &str) -> Option<&'static str> {
        Some(match path {
            "applicant.person.name" => "person_name",
            "applicant.person.resident_id" => "person_id",
            "applicant.company.name" => "company_name",
            "applicant.company.credit_code" => "credit_code",
            "applicant.company.legal_rep_name" => "legal_rep",
            "applicant.company.legal_rep_id" => "legal_rep_id",
            "applicant.phone" => "phone",
            "applicant.address" => "address",
            "delivery" => "delivery",
            // A material's refusal names it in its words; it is shown above
            // the item's material inputs.
            p if p.starts_with("materials[") => "materials",
            _ => return None,
        })
    }

    fn applicant(&self) -> Applicant {
        let who = if self.is_company() {
            Who::Company(Company {
                name: self.company_name.clone(),
                credit_code: self.credit_code.clone(),
                legal_rep_name: self.legal_rep.clone(),
                legal_rep_id: self.legal_rep_id.clone(),
            })
        } else {
            Who::Person(Person {
                name: self.name.clone(),
                resident_id: self.id.clone(),
            })
        };
        Applicant {
            who: Some(who),
            phone: self.phone.clone(),
            address: self.address.clone(),
        }
    }
}

pub(super) async fn list(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Page {
    let state = q.get("state").cloned().unwrap_or_default();
    let pager = Pager::from_query(&q).keep("state", &state);
    let reply = c
        .window()
        .list_cases(window::v1::ListCasesRequest {
            state: state.clone(),
            limit: PAGE,
            page_token: pager.token().to_owned(),
        })
        .await?
        .into_inner();
    let pager = pager.with_next(reply.next_page_token);
    page(pages::clerk_list(&c, &state, &reply.cases, &pager))
}

pub(super) async fn new_form(State(c): Shared) -> Page {
    page(pages::clerk_new(&c, &Draft::default(), None))
}

pub(super) async fn apply(State(c): Shared, form: Form) -> Response {
    let draft = Draft::from_form(&form);
    let again = |status: StatusCode, field: &'static str, msg: String| {
        let problem = pages::Problem {
            form: field,
            msg: &msg,
            fields: &[],
        };
        (
            status,
            Html(pages::clerk_new(&c, &draft, Some(&problem)).into_string()),
        )
            .into_response()
    };
    let materials = form.materials();
    let first = window::v1::ApplyFrame {
        frame: Some(window::v1::apply_frame::Frame::Header(
            window::v1::ApplyHeader {
                item_code: draft.item.clone(),
                home_county: draft.home.clone(),
                delivery: draft.delivery.clone(),
                applicant: Some(draft.applicant()),
                materials: materials.iter().map(|(h, _)| h.clone()).collect(),
                request_id: draft.request_id.clone(),
            },
        )),
    };
    // The stream is made again for each attempt, from the files in hand.
    let reply = retried(&draft.request_id, || {
        let frames = frames(first.clone(), &materials, |ch| window::v1::ApplyFrame {
            frame: Some(window::v1::apply_frame::Frame::Chunk(ch)),
        });
        let mut client = c.window();
        async move { client.apply(frames).await }
    })
    .await;
    match reply {
        Ok(reply) => Redirect::to(&format!("/case/{}", reply.into_inner().case_no)).into_response(),
        // The form comes back as typed with the same request id: sending it
        // again either makes the case or replays the one already made.
        Err(status) if super::lost(&status) => again(
            StatusCode::SERVICE_UNAVAILABLE,
            "lost",
            Failure::from(status).0,
        ),
        // The page's script checks check characters as they are typed;
        // the node checks every field again, and what it refuses is shown
        // once, at the input it concerns (the top of the form points
        // there); a refusal of no input of the form is shown at the top.
        Err(status) => {
            let at_input = crate::console::refusal::words(&status)
                .and_then(|w| Draft::input_of(&w.field).map(|input| (input, w.text)));
            match at_input {
                Some((input, words)) => again(StatusCode::UNPROCESSABLE_ENTITY, input, words),
                None => again(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "",
                    Failure::from(status).0,
                ),
            }
        }
    }
}

pub(super) async fn case(State(c): Shared, Path(no): Path<String>) -> Page {
    let case = c.case(&no).await?;
    page(pages::clerk_case(&c, &case, None))
}

pub(super) async fn attach(State(c): Shared, Path(no): Path<String>, form: Form) -> Response {
    upload(&c, &no, &form, Upload::Attach).await
}

/// Delivers committed materials after acceptance (they go to the home
/// authority at once).
pub(super) async fn supply(State(c): Shared, Path(no): Path<String>, form: Form) -> Response {
    upload(&c, &no, &form, Upload::Supply).await
}

/// The two uploads of a case's materials at the window; both stream an
/// attach header and the chunks.
#[derive(Clone, Copy)]
enum Upload {
    /// Before acceptance, or the supplement to a correction request.
    Attach,
    /// Committed materials after acceptance.
    Supply,
}

async fn upload(c: &Console, no: &str, form: &Form, kind: Upload) -> Response {
    let name = match kind {
        Upload::Attach => "attach",
        Upload::Supply => "supply",
    };
    let request_id = request_id_of(&form.fields);
    let materials = form.materials();
    let first = window::v1::AttachFrame {
        frame: Some(window::v1::attach_frame::Frame::Header(
            window::v1::AttachHeader {
                case_no: no.to_owned(),
                materials: materials.iter().map(|(h, _)| h.clone()).collect(),
                request_id: request_id.clone(),
            },
        )),
    };
    let reply = retried(&request_id, || {
        let frames = frames(first.clone(), &materials, |ch| window::v1::AttachFrame {
            frame: Some(window::v1::attach_frame::Frame::Chunk(ch)),
        });
        let mut client = c.window();
        async move {
            match kind {
                Upload::Attach => client.attach(frames).await,
                Upload::Supply => client.supply(frames).await,
            }
        }
    })
    .await;
    let again = form.resend(format!("/case/{no}/{name}"));
    settle(c, no, name, reply, &again).await
}

step!(
    /// Records how the applicant's identity was checked.
    verify,
    "verify",
    |c, no, f| window.verify_identity(window::v1::VerifyIdentityRequest {
        case_no: no.clone(),
        method: f.get("method").cloned().unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Accepts at the window and goes on to the printable 受理回执.
    accept,
    "accept",
    |c, no, f| window.accept(window::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
    then format!("/case/{no}/notice/intake-receipt")
);

step!(
    /// Sends the attached corrections back to the home authority.
    resubmit,
    "resubmit",
    |c, no, f| window.resubmit(window::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Records the applicant's signed commitment (告知承诺) to supply the
    /// ticked missing materials within the days given (容缺受理).
    commit,
    "commit",
    |c, no, f| window.commit(window::v1::CommitRequest {
        case_no: no.clone(),
        signer: f.get("signer").map(|s| s.trim().to_owned()).unwrap_or_default(),
        kinds: f
            .iter()
            .filter(|(_, v)| *v == "on")
            .filter_map(|(k, _)| k.strip_prefix("kind:").map(str::to_owned))
            .collect(),
        days: f.get("days").and_then(|d| d.trim().parse().ok()).unwrap_or(0),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Records the video consultation held with the home authority at
    /// intake; the time is typed in China Standard Time.
    consult,
    "consult",
    |c, no, f| window.consult(window::v1::ConsultRequest {
        case_no: no.clone(),
        at: cst_rfc3339(f.get("at").map(String::as_str).unwrap_or_default()),
        reviewer: f.get("reviewer").map(|s| s.trim().to_owned()).unwrap_or_default(),
        outcome: f.get("outcome").map(|s| s.trim().to_owned()).unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

/// A `datetime-local` value (`2026-12-01T10:30`, China Standard Time) as
/// RFC 3339; anything else is passed on for the node to refuse in its words.
fn cst_rfc3339(local: &str) -> String {
    let local = local.trim();
    match local.len() {
        16 => format!("{local}:00+08:00"),
        19 => format!("{local}+08:00"),
        _ => local.to_owned(),
    }
}

step!(
    /// Hands the result to the applicant (or the company's legal
    /// representative), whose ID the node checks against the case's.
    handout,
    "handout",
    |c, no, f| window.handout(window::v1::HandoutRequest {
        case_no: no.clone(),
        recipient_id: f.get("recipient_id").map(|s| s.trim().to_uppercase()).unwrap_or_default(),
        request_id: request_id_of(&f),
    }),
);

step!(
    /// Sends the case's parked handoffs again.
    retry,
    "retry",
    |c, no, f| window.retry(window::v1::CaseRef {
        case_no: no.clone(),
        request_id: request_id_of(&f),
    }),
);

/// The window's cases past their promised date.
pub(super) async fn overdue(State(c): Shared, Query(q): Query<HashMap<String, String>>) -> Page {
    let pager = Pager::from_query(&q);
    let reply = c
        .window()
        .overdue(window::v1::OverdueRequest {
            limit: PAGE,
            page_token: pager.token().to_owned(),
        })
        .await?
        .into_inner();
    let pager = pager.with_next(reply.next_page_token);
    page(pages::overdue(&c, &reply.cases, &pager))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_applicant_field_the_node_names_has_its_input() {
        // The paths tongban-node's validate::applicant refuses under.
        for (path, input) in [
            ("applicant.person.name", "person_name"),
            ("applicant.person.resident_id", "person_id"),
            ("applicant.company.name", "company_name"),
            ("applicant.company.credit_code", "credit_code"),
            ("applicant.company.legal_rep_name", "legal_rep"),
            ("applicant.company.legal_rep_id", "legal_rep_id"),
            ("applicant.phone", "phone"),
            ("applicant.address", "address"),
        ] {
            assert_eq!(Draft::input_of(path), Some(input), "{path}");
        }
        assert_eq!(Draft::input_of("home_county"), None);
    }

    #[test]
    fn a_local_time_is_china_standard_time() {
        assert_eq!(cst_rfc3339("2026-12-01T10:30"), "2026-12-01T10:30:00+08:00");
        assert_eq!(
            cst_rfc3339("2026-12-01T10:30:15"),
            "2026-12-01T10:30:15+08:00"
        );
        assert_eq!(cst_rfc3339(" tomorrow "), "tomorrow");
    }

    #[test]
    fn the_applicant_is_the_chosen_kind() {
        let d = Draft {
            kind: "company".into(),
            credit_code: "91350100M000100Y43".into(),
            legal_rep_id: "11010519491231002X".into(),
            ..Draft::default()
        };
        match d.applicant().who {
            Some(Who::Company(c)) => assert_eq!(c.legal_rep_id, "11010519491231002X"),
            other => panic!("{other:?}"),
        }
    }
}

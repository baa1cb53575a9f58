//! The sample run: clients with the certificates `tongban dev` wrote, a
//! wait until every node answers, and one case taken from intake at 汉台区
//! through the handoff, review and both mail legs to `CLOSED` on both
//! nodes, each step printed as it happens.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tongban_pki::issue::CA_CERT;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::common::v1::{
    Applicant, CaseView, MaterialChunk, MaterialHeader, Person, applicant::Who,
};
use tongban_proto::mail::v1::mail_client::MailClient;
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::review::v1::{ApproveFrame, ApproveHeader, InboxRequest, approve_frame};
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::window::v1::{
    ApplyFrame, ApplyHeader, ListCasesRequest, VerifyIdentityRequest, apply_frame,
};
use tongban_sandbox::{HANTAI, SHANGZHOU, YANTA};
use tonic::transport::Channel;

use super::Federation;
use super::fixtures::{
    ADDRESS, PERSON_ID, PERSON_NAME, PHONE, RESULT_FILE, licence_no, result_document,
    sample_materials, seconds_now, sha256, waybill,
};
use crate::cmd::status_error;

/// How long the sample case may wait for one state.
const WAIT: Duration = Duration::from_secs(30);
/// How often it looks.
const POLL: Duration = Duration::from_millis(50);
/// How long a node may take to answer its first call.
const READY: Duration = Duration::from_secs(15);

/// Clients for the sample case, each with its own certificate.
pub(super) struct Clients {
    pub(super) window: WindowClient<Channel>,
    window_shangzhou: WindowClient<Channel>,
    pub(super) review: ReviewClient<Channel>,
    mail_window: MailClient<Channel>,
    mail_home: MailClient<Channel>,
}

impl Clients {
    pub(super) async fn connect(fed: &Federation) -> Result<Self> {
        let certs = fed.dir.join("certs");
        let open = |county: &str, stem: &'static str| {
            let endpoint = fed.endpoint(county).to_owned();
            let certs = certs.clone();
            async move {
                let tls = TlsMaterial::load(
                    &certs.join(CA_CERT),
                    &certs.join(format!("{stem}.crt")),
                    &certs.join(format!("{stem}.key")),
                )?;
                crate::client::channel(&endpoint, &tls).await
            }
        };
        let wang = open(HANTAI, "clerk-610702-wang").await?;
        let li = open(YANTA, "reviewer-610113-li").await?;
        let zhou = open(SHANGZHOU, "clerk-611002-zhou").await?;
        Ok(Self {
            window: WindowClient::new(wang.clone()),
            window_shangzhou: WindowClient::new(zhou),
            review: ReviewClient::new(li.clone()),
            mail_window: MailClient::new(wang),
            mail_home: MailClient::new(li),
        })
    }

    /// Waits until each node answers a call from one of its users.
    pub(super) async fn ready(&self, fed: &Federation) -> Result<()> {
        for (code, name, endpoint) in fed.counties() {
            let deadline = Instant::now() + READY;
            loop {
                let answer = match code {
                    YANTA => self
                        .review
                        .clone()
                        .inbox(InboxRequest::default())
                        .await
                        .map(|_| ()),
                    HANTAI => list(&self.window).await,
                    _ => list(&self.window_shangzhou).await,
                };
                match answer {
                    Ok(()) => break,
                    Err(s) if Instant::now() >= deadline => {
                        return Err(status_error(s))
                            .with_context(|| format!("node {code} {name} does not answer"));
                    }
                    Err(_) => tokio::time::sleep(POLL).await,
                }
            }
            println!("  ✓ {code} {name} serving on {endpoint}");
        }
        Ok(())
    }
}

async fn list(window: &WindowClient<Channel>) -> Result<(), tonic::Status> {
    window
        .clone()
        .list_cases(ListCasesRequest {
            state: String::new(),
            limit: 1,
            page_token: String::new(),
        })
        .await
        .map(|_| ())
}

fn step(line: impl std::fmt::Display) {
    println!("  ✓ {line}");
}

/// Polls `get` every 50 ms until the case is in `state`, for at most 30 s.
async fn wait_for<F, Fut>(what: &str, state: &str, get: F) -> Result<CaseView>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<CaseView>, tonic::Status>>,
{
    wait_until(what, state, |c| c.state == state, get).await
}

/// Polls `get` every 50 ms until `done` holds for the case (described as
/// `expected`), for at most 30 s.
async fn wait_until<F, Fut>(
    what: &str,
    expected: &str,
    done: impl Fn(&CaseView) -> bool,
    mut get: F,
) -> Result<CaseView>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<CaseView>, tonic::Status>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        let last = match get().await {
            Ok(c) if done(c.get_ref()) => return Ok(c.into_inner()),
            Ok(c) => {
                let c = c.into_inner();
                if c.note.is_empty() {
                    format!("it is {}", c.state)
                } else {
                    format!("it is {} ({})", c.state, c.note)
                }
            }
            Err(s) => status_error(s).to_string(),
        };
        if Instant::now() >= deadline {
            bail!(
                "{what} did not reach {expected} within {} s: {last}",
                WAIT.as_secs()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

pub(super) fn window_ref(case_no: &str) -> tongban_proto::window::v1::CaseRef {
    tongban_proto::window::v1::CaseRef {
        case_no: case_no.to_owned(),
        request_id: String::new(),
    }
}

pub(super) fn review_ref(case_no: &str) -> tongban_proto::review::v1::CaseRef {
    tongban_proto::review::v1::CaseRef {
        case_no: case_no.to_owned(),
        request_id: String::new(),
    }
}

/// Runs the sample case from intake to CLOSED on both nodes; returns its
/// case number.
pub(super) async fn sample_case(c: &Clients) -> Result<String> {
    let (mut window, mut review) = (c.window.clone(), c.review.clone());
    let (mut mail_window, mut mail_home) = (c.mail_window.clone(), c.mail_home.clone());
    let wang = format!("{HANTAI} clerk wang");
    let li = format!("{YANTA} reviewer li");

    // 1. Intake at 汉台区.
    let materials = sample_materials();
    let header = ApplyHeader {
        item_code: "GT-0001".into(),
        home_county: YANTA.into(),
        delivery: "mail-applicant".into(),
        applicant: Some(Applicant {
            who: Some(Who::Person(Person {
                name: PERSON_NAME.into(),
                resident_id: PERSON_ID.into(),
            })),
            phone: PHONE.into(),
            address: ADDRESS.into(),
        }),
        materials: materials
            .iter()
            .map(|(kind, file, bytes)| MaterialHeader {
                kind: (*kind).into(),
                filename: (*file).into(),
                size: bytes.len() as u64,
                sha256: sha256(bytes),
            })
            .collect(),
        request_id: String::new(),
    };
    let mut frames = vec![ApplyFrame {
        frame: Some(apply_frame::Frame::Header(header)),
    }];
    for (i, (_, _, bytes)) in materials.into_iter().enumerate() {
        frames.push(ApplyFrame {
            frame: Some(apply_frame::Frame::Chunk(MaterialChunk {
                material: i as u32,
                data: bytes.into(),
            })),
        });
    }
    let case = window
        .apply(tokio_stream::iter(frames))
        .await
        .map_err(status_error)
        .context("apply")?
        .into_inner();
    let case_no = case.case_no.clone();
    // Every case starts at the window uncompleted, materials or not: the
    // identity check comes after intake. Say so, or the first line of the
    // tour reads as if the sample lacked something.
    let why = if case.state == "CORRECTION_AT_WINDOW" && case.missing.is_empty() {
        ", identity not yet checked"
    } else {
        ""
    };
    step(format_args!(
        "{wang}: applied for {PERSON_NAME} with 3 materials → {case_no} ({}{why})",
        case.state
    ));

    let case = window
        .verify_identity(VerifyIdentityRequest {
            case_no: case_no.clone(),
            method: "id-card-reader".into(),
            request_id: String::new(),
        })
        .await
        .map_err(status_error)
        .context("verify identity")?
        .into_inner();
    step(format_args!(
        "{wang}: identity verified (id-card-reader) → {}",
        case.state
    ));

    let receipt = window
        .accept(window_ref(&case_no))
        .await
        .map_err(status_error)
        .context("accept at the window")?
        .into_inner();
    let state = receipt
        .case
        .as_ref()
        .map(|c| c.state.as_str())
        .unwrap_or("?");
    step(format_args!(
        "{wang}: accepted, intake receipt issued → {state}"
    ));

    // 2. Handoff to 雁塔区, receipted.
    let started = Instant::now();
    wait_for("the handoff", "HANDED_OFF", || {
        let (mut client, case) = (window.clone(), window_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;
    step(format_args!(
        "{HANTAI} → {YANTA}: handed off over mutual TLS, receipt signed by 雁塔区 → HANDED_OFF ({:.1} s)",
        started.elapsed().as_secs_f64()
    ));
    // The home node has it once the window holds its receipt.
    wait_for("the case at 雁塔区", "HANDED_OFF", || {
        let (mut client, case) = (review.clone(), review_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;

    // 3. Review at 雁塔区.
    let case = review
        .accept(review_ref(&case_no))
        .await
        .map_err(status_error)
        .context("accept for review")?
        .into_inner();
    step(format_args!(
        "{li}: accepted for review (受理) → {}, due {} ({} working days)",
        case.state, case.due_date, case.working_days_left
    ));

    // The clerk mails once the window knows the case is under review.
    wait_for("the case at 汉台区", "UNDER_REVIEW", || {
        let (mut client, case) = (window.clone(), window_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;

    let secs = seconds_now();
    let materials_waybill = waybill("EA", secs);
    let case = mail_window
        .send(SendRequest {
            case_no: case_no.clone(),
            leg: "materials".into(),
            carrier: "EMS".into(),
            waybill: materials_waybill.clone(),
            request_id: String::new(),
        })
        .await
        .map_err(status_error)
        .context("mail the paper originals")?
        .into_inner();
    step(format_args!(
        "{wang}: paper originals mailed to 雁塔区, EMS {materials_waybill} → {}",
        case.state
    ));

    // The reviewer records the parcel once 雁塔区 knows it was sent.
    wait_until(
        "the case at 雁塔区",
        "a materials leg",
        |c| c.mail.iter().any(|m| m.waybill == materials_waybill),
        || {
            let (mut client, case) = (review.clone(), review_ref(&case_no));
            async move { client.get_case(case).await }
        },
    )
    .await?;
    let case = review
        .paper_received(review_ref(&case_no))
        .await
        .map_err(status_error)
        .context("record the paper originals")?
        .into_inner();
    step(format_args!(
        "{li}: paper originals received → {}",
        case.state
    ));

    let licence = licence_no(secs);
    let doc = result_document();
    let frames = vec![
        ApproveFrame {
            frame: Some(approve_frame::Frame::Header(ApproveHeader {
                case_no: case_no.clone(),
                licence_no: licence.clone(),
                result: Some(MaterialHeader {
                    kind: "result".into(),
                    filename: RESULT_FILE.into(),
                    size: doc.len() as u64,
                    sha256: sha256(&doc),
                }),
                request_id: String::new(),
            })),
        },
        ApproveFrame {
            frame: Some(approve_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data: doc.into(),
            })),
        },
    ];
    let case = review
        .approve(tokio_stream::iter(frames))
        .await
        .map_err(status_error)
        .context("approve")?
        .into_inner();
    step(format_args!(
        "{li}: approved, licence {licence} → {}",
        case.state
    ));

    // 4. The result by mail, delivered.
    let result_waybill = waybill("EB", secs);
    let case = mail_home
        .send(SendRequest {
            case_no: case_no.clone(),
            leg: "result".into(),
            carrier: "EMS".into(),
            waybill: result_waybill.clone(),
            request_id: String::new(),
        })
        .await
        .map_err(status_error)
        .context("mail the result")?
        .into_inner();
    step(format_args!(
        "{li}: result mailed to the applicant, EMS {result_waybill} → {}",
        case.state
    ));

    let case = mail_home
        .event(EventRequest {
            waybill: result_waybill.clone(),
            status: "delivered".into(),
            at: String::new(),
            note: "本人签收".into(),
            request_id: String::new(),
        })
        .await
        .map_err(status_error)
        .context("record the delivery")?
        .into_inner();
    step(format_args!(
        "{li}: EMS reports {result_waybill} delivered → {}",
        case.state
    ));
    if case.state != "CLOSED" {
        bail!(
            "the sample case is {} after delivery, not CLOSED",
            case.state
        );
    }

    wait_for("the case at 汉台区", "CLOSED", || {
        let (mut client, case) = (window.clone(), window_ref(&case_no));
        async move { client.get_case(case).await }
    })
    .await?;
    step(format_args!("{HANTAI} 汉台区 reports {case_no} CLOSED too"));
    Ok(case_no)
}

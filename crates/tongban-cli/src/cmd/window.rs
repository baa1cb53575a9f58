//! `tongban window`: the clerk's commands at the receiving window.

use anyhow::{Result, bail};
use tongban_proto::common::v1::{Applicant, Company, Person, applicant::Who};
use tongban_proto::window::v1::window_client::WindowClient;
use tongban_proto::window::v1::*;

use super::status_error;
use crate::args::{ApplyArgs, ConnArgs, WindowCommand, wire};
use crate::client::call_unary;
use crate::client::{connect, idempotent, materials, request_id, upload};
use crate::output::{binary_size, hex, print_cases, print_json, print_next_page, show_case};

fn applicant(a: &ApplyArgs) -> Result<Applicant> {
    let who = match (&a.person_name, &a.company_name) {
        (Some(name), None) => Who::Person(Person {
            name: name.clone(),
            resident_id: a.person_id.clone().unwrap_or_default(),
        }),
        (None, Some(name)) => Who::Company(Company {
            name: name.clone(),
            credit_code: a.credit_code.clone().unwrap_or_default(),
            legal_rep_name: a.legal_rep.clone().unwrap_or_default(),
            legal_rep_id: a.legal_rep_id.clone().unwrap_or_default(),
        }),
        _ => bail!(
            "give either --person-name and --person-id, or --company-name, --credit-code, --legal-rep and --legal-rep-id"
        ),
    };
    Ok(Applicant {
        who: Some(who),
        phone: a.phone.clone(),
        address: a.address.clone(),
    })
}

pub(crate) async fn run(conn: &ConnArgs, command: WindowCommand) -> Result<()> {
    let mut client = WindowClient::new(connect(conn).await?);
    let mut reader = client.clone();
    let id = request_id(conn);
    let case = match command {
        WindowCommand::Apply(a) => {
            let files = materials(&a.materials)?;
            let header = ApplyHeader {
                item_code: a.item.clone(),
                home_county: a.home.clone(),
                delivery: wire(&a.delivery),
                applicant: Some(applicant(&a)?),
                materials: files.iter().map(|f| f.header.clone()).collect(),
                request_id: id.clone(),
            };
            let first = ApplyFrame {
                frame: Some(apply_frame::Frame::Header(header)),
            };
            idempotent(&id, || {
                let mut client = client.clone();
                let stream = upload(first.clone(), files.clone(), |c| ApplyFrame {
                    frame: Some(apply_frame::Frame::Chunk(c)),
                });
                async move { client.apply(stream).await }
            })
            .await?
        }
        WindowCommand::Attach { case, materials: m } => {
            let files = materials(&m)?;
            let first = AttachFrame {
                frame: Some(attach_frame::Frame::Header(AttachHeader {
                    case_no: case,
                    materials: files.iter().map(|f| f.header.clone()).collect(),
                    request_id: id.clone(),
                })),
            };
            idempotent(&id, || {
                let mut client = client.clone();
                let stream = upload(first.clone(), files.clone(), |c| AttachFrame {
                    frame: Some(attach_frame::Frame::Chunk(c)),
                });
                async move { client.attach(stream).await }
            })
            .await?
        }
        WindowCommand::Consult {
            case,
            at,
            reviewer,
            outcome,
        } => client
            .consult(ConsultRequest {
                case_no: case,
                at,
                reviewer,
                outcome,
                request_id: id.clone(),
            })
            .await
            .map_err(status_error)?
            .into_inner(),
        WindowCommand::Supply { case, materials: m } => {
            let files = materials(&m)?;
            let first = AttachFrame {
                frame: Some(attach_frame::Frame::Header(AttachHeader {
                    case_no: case,
                    materials: files.iter().map(|f| f.header.clone()).collect(),
                    request_id: id.clone(),
                })),
            };
            let stream = upload(first, files, |c| AttachFrame {
                frame: Some(attach_frame::Frame::Chunk(c)),
            });
            client
                .supply(stream)
                .await
                .map_err(status_error)?
                .into_inner()
        }
        WindowCommand::VerifyIdentity { case, method } => {
            let request = VerifyIdentityRequest {
                case_no: case,
                method: wire(&method),
                request_id: id.clone(),
            };
            call_unary!(&id, client, verify_identity, request)
        }
        WindowCommand::Accept {
            case,
            commitment_signer,
            commitment_kinds,
            commitment_days,
        } => {
            // 容缺受理: the applicant's commitment is recorded first.
            if let Some(signer) = commitment_signer {
                client
                    .commit(CommitRequest {
                        case_no: case.clone(),
                        signer,
                        kinds: commitment_kinds,
                        days: commitment_days.unwrap_or_default(),
                        // Its own id, derived from the accept's, so that the
                        // same command run again replays both calls.
                        request_id: derived_id(&id),
                    })
                    .await
                    .map_err(status_error)?;
            }
            let request = CaseRef {
                case_no: case,
                request_id: id.clone(),
            };
            let receipt = call_unary!(&id, client, accept, request);
            if conn.json {
                return print_json(&receipt);
            }
            let case = crate::sanitize::case_view(&receipt.case.unwrap_or_default());
            let home_county_name = crate::sanitize::text(&receipt.home_county_name);
            println!("受理回执 intake receipt");
            println!("case_no         {}", case.case_no);
            println!("item            {} {}", case.item_code, case.item_name);
            println!("home county     {} {home_county_name}", case.home_county);
            // China Standard Time, as the notices print it (--json keeps
            // the node's RFC 3339).
            println!(
                "accepted at     {}",
                crate::page::cst_time(&crate::sanitize::text(&receipt.accepted_at))
            );
            println!(
                "promised        {} working days from acceptance at home",
                case.promised_days
            );
            for m in &case.materials {
                println!(
                    "material        {:<20} {:>10}  sha256 {}",
                    m.kind,
                    binary_size(m.size),
                    hex(&m.sha256)
                );
            }
            println!("state           {}", case.state);
            return Ok(());
        }
        WindowCommand::Resubmit { case } => {
            let request = CaseRef {
                case_no: case,
                request_id: id.clone(),
            };
            call_unary!(&id, client, resubmit, request)
        }
        WindowCommand::Handout { case, to_id } => {
            let request = HandoutRequest {
                case_no: case,
                recipient_id: to_id,
                request_id: id.clone(),
            };
            call_unary!(&id, client, handout, request)
        }
        WindowCommand::Retry { case } => {
            let request = CaseRef {
                case_no: case,
                request_id: id.clone(),
            };
            call_unary!(&id, client, retry, request)
        }
        WindowCommand::Material {
            case,
            kind,
            out,
            force,
        } => {
            return crate::material::download(case, kind, &out, force, conn.json, |r| {
                reader.material(r)
            })
            .await;
        }
        WindowCommand::Status { case } => reader
            .get_case(CaseRef {
                case_no: case,
                request_id: String::new(),
            })
            .await
            .map_err(status_error)?
            .into_inner(),
        WindowCommand::List {
            state,
            limit,
            page_token,
        } => {
            let state = state.as_ref().map(wire).unwrap_or_default();
            let reply = reader
                .list_cases(ListCasesRequest {
                    state: state.clone(),
                    limit,
                    page_token: page_token.unwrap_or_default(),
                })
                .await
                .map_err(status_error)?
                .into_inner();
            print_cases(&reply, &reply.cases, conn.json)?;
            if !conn.json {
                let filter = if state.is_empty() {
                    String::new()
                } else {
                    format!(" --state {state}")
                };
                print_next_page(
                    &format!("tongban window list{filter} --limit {limit}"),
                    &reply.next_page_token,
                );
            }
            return Ok(());
        }
        WindowCommand::Overdue => {
            let reply = reader
                .overdue(OverdueRequest::default())
                .await
                .map_err(status_error)?
                .into_inner();
            return print_cases(&reply, &reply.cases, conn.json);
        }
    };
    show_case(&case, conn.json)
}

/// A request id for a second call of one invocation: the invocation's id
/// with its last bit flipped (still a UUID, and the same on every rerun with
/// `--request-id`).
fn derived_id(id: &str) -> String {
    match uuid::Uuid::parse_str(id) {
        Ok(u) => uuid::Uuid::from_u128(u.as_u128() ^ 1).to_string(),
        Err(_) => String::new(),
    }
}

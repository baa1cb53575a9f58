//! `tongban notice`: print a formal notice of a case for the applicant.
//! The case comes from the caller's own node (the window's view for a
//! clerk, the home authority's for a reviewer); the page is rendered by
//! [`crate::notice`].

use std::path::Path;

use anyhow::{Context as _, Result};
use tongban_proto::common::v1::CaseView;
use tongban_proto::review::v1::review_client::ReviewClient;
use tongban_proto::window::v1::window_client::WindowClient;

use super::status_error;
use crate::args::ConnArgs;
use crate::client::connect;
use crate::notice::{self, Kind};
use crate::output::print_json;

/// The case as the caller's node shows it: through the window service for a
/// clerk, through the review service for a reviewer (the window service
/// refuses reviewers).
async fn fetch(conn: &ConnArgs, case_no: &str) -> Result<CaseView> {
    let channel = connect(conn).await?;
    let window = WindowClient::new(channel.clone())
        .get_case(tongban_proto::window::v1::CaseRef {
            case_no: case_no.to_owned(),
            request_id: String::new(),
        })
        .await;
    match window {
        Ok(reply) => Ok(reply.into_inner()),
        Err(status) if status.code() == tonic::Code::PermissionDenied => {
            Ok(ReviewClient::new(channel)
                .get_case(tongban_proto::review::v1::CaseRef {
                    case_no: case_no.to_owned(),
                    request_id: String::new(),
                })
                .await
                .map_err(status_error)?
                .into_inner())
        }
        Err(status) => Err(status_error(status)),
    }
}

pub(crate) async fn run(conn: &ConnArgs, case_no: &str, kind: Kind, out: &Path) -> Result<()> {
    let case = fetch(conn, case_no).await?;
    let basis = notice::basis(kind, &case)?;
    let code = notice::code(kind, &basis.county, basis.seq, &basis.entry_hash);
    let ctx = notice::Context {
        printed_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        check_hint: String::new(),
    };
    let page = notice::render(kind, &case, &ctx)?;
    std::fs::write(out, page).with_context(|| format!("cannot write {}", out.display()))?;
    if conn.json {
        return print_json(&serde_json::json!({
            "out": out.display().to_string(),
            "case_no": case.case_no,
            "kind": kind.as_str(),
            "code": code,
            "county": basis.county,
            "seq": basis.seq,
        }));
    }
    println!(
        "wrote {} ({} {}, case {}); verification code {code} (ledger of {}, entry {})",
        out.display(),
        kind.as_str(),
        kind.title(),
        crate::sanitize::text(&case.case_no),
        crate::sanitize::text(&basis.county),
        basis.seq
    );
    Ok(())
}

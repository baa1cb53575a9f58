//! `tongban mail`: record legs sent and carrier events.

use anyhow::Result;
use tongban_proto::mail::v1::mail_client::MailClient;
use tongban_proto::mail::v1::{EventRequest, SendRequest};

use super::status_error;
use crate::args::{ConnArgs, MailCommand, wire};
use crate::client::connect;
use crate::output::show_case;

pub(crate) async fn run(conn: &ConnArgs, command: MailCommand) -> Result<()> {
    let mut client = MailClient::new(connect(conn).await?);
    let case = match command {
        MailCommand::Send {
            case,
            leg,
            carrier,
            waybill,
        } => {
            client
                .send(SendRequest {
                    case_no: case,
                    leg: wire(&leg),
                    carrier,
                    waybill,
                    request_id: String::new(),
                })
                .await
        }
        MailCommand::Event {
            waybill,
            status,
            at,
            note,
        } => {
            client
                .event(EventRequest {
                    waybill,
                    status: wire(&status),
                    at: at.unwrap_or_default(),
                    note: note.unwrap_or_default(),
                    request_id: String::new(),
                })
                .await
        }
    }
    .map_err(status_error)?
    .into_inner();
    show_case(&case, conn.json)
}

//! `tongban mail`: record legs sent and carrier events.

use anyhow::Result;
use tongban_proto::mail::v1::mail_client::MailClient;
use tongban_proto::mail::v1::{EventRequest, SendRequest};

use crate::args::{ConnArgs, MailCommand, wire};
use crate::client::call_unary;
use crate::client::{connect, request_id};
use crate::output::show_case;

pub(crate) async fn run(conn: &ConnArgs, command: MailCommand) -> Result<()> {
    let client = MailClient::new(connect(conn).await?);
    let id = request_id(conn);
    let case = match command {
        MailCommand::Send {
            case,
            leg,
            carrier,
            waybill,
        } => {
            let request = SendRequest {
                case_no: case,
                leg: wire(&leg),
                carrier,
                waybill,
                request_id: id.clone(),
            };
            call_unary!(&id, client, send, request)
        }
        MailCommand::Event {
            waybill,
            status,
            at,
            note,
        } => {
            let request = EventRequest {
                waybill,
                status: wire(&status),
                at: at.unwrap_or_default(),
                note: note.unwrap_or_default(),
                request_id: id.clone(),
            };
            call_unary!(&id, client, event, request)
        }
    };
    show_case(&case, conn.json)
}

//! Carrier pushes: an HTTPS endpoint where postal carriers report waybill
//! events. Carriers hold no federation certificate, so this port is
//! server-authenticated TLS and each request carries
//! `X-Tongban-Signature: sha256=<hex HMAC-SHA256 of the body>` under the
//! carrier's secret from the config.
//!
//! `POST /v1/carriers/{name}/events` with a JSON body
//! `{"waybill": "...", "status": "delivered", "at": "RFC 3339", "note": "..."}`.
//! Answers: 200 recorded (a repeat is recorded once), 400 malformed body,
//! 401 missing or bad signature, 404 unknown carrier or waybill, 405 not a
//! POST, 409 the event does not fit the case, 413 body too large, 503 not
//! stored (try again).

use std::sync::Arc;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tongban_proto::mail::v1::EventRequest;

use crate::NodeError;
use crate::config::Carrier;
use crate::ctx::Ctx;

/// Largest body accepted.
const MAX_BODY: usize = 64 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Push {
    waybill: String,
    status: String,
    #[serde(default)]
    at: String,
    #[serde(default)]
    note: String,
}

/// Serves carrier pushes on `listener` until `stop` turns true.
pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    carriers: Arc<Vec<Carrier>>,
    listener: TcpListener,
    acceptor: tongban_pki::tls::TlsAcceptor,
    mut stop: watch::Receiver<bool>,
) {
    let mut incoming = tongban_pki::tls::incoming(listener, acceptor);
    loop {
        let stream = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            next = incoming.next() => match next {
                Some(Ok(stream)) => stream,
                Some(Err(_)) => continue,
                None => return,
            },
        };
        let (ctx, carriers) = (ctx.clone(), carriers.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (ctx, carriers) = (ctx.clone(), carriers.clone());
                async move { Ok::<_, std::convert::Infallible>(handle(&ctx, &carriers, req).await) }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await
            {
                tracing::debug!(error = %e, "carrier connection ended");
            }
        });
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn refuse(carrier: &str, status: StatusCode, message: String) -> Response<Full<Bytes>> {
    tracing::warn!(%carrier, status = status.as_u16(), reason = %message, "carrier push refused");
    reply(status, serde_json::json!({"error": message}))
}

async fn handle(ctx: &Ctx, carriers: &[Carrier], req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_owned();
    let name = path
        .strip_prefix("/v1/carriers/")
        .and_then(|rest| rest.strip_suffix("/events"))
        .unwrap_or_default()
        .to_owned();
    if name.is_empty() {
        return refuse(
            "-",
            StatusCode::NOT_FOUND,
            format!("no such endpoint {path}; use POST /v1/carriers/NAME/events"),
        );
    }
    if req.method() != Method::POST {
        return refuse(&name, StatusCode::METHOD_NOT_ALLOWED, "use POST".into());
    }
    let Some(carrier) = carriers.iter().find(|c| c.name == name) else {
        return refuse(
            &name,
            StatusCode::NOT_FOUND,
            format!("carrier {name:?} is not configured on this node"),
        );
    };
    let signature = req
        .headers()
        .get("x-tongban-signature")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("sha256="))
        .map(str::to_owned);
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return refuse(
                &name,
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body over {MAX_BODY} bytes or unreadable"),
            );
        }
    };
    let Some(signature) = signature else {
        return refuse(
            &name,
            StatusCode::UNAUTHORIZED,
            "missing X-Tongban-Signature: sha256=<hex>".into(),
        );
    };
    if !tongban_pki::hmac::verify_hex(&carrier.secret, &body, &signature) {
        return refuse(
            &name,
            StatusCode::UNAUTHORIZED,
            "the signature does not match the body".into(),
        );
    }
    let push: Push = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                &name,
                StatusCode::BAD_REQUEST,
                format!("malformed body: {e}"),
            );
        }
    };
    let event = EventRequest {
        waybill: push.waybill,
        status: push.status,
        at: push.at,
        note: push.note,
        request_id: String::new(),
    };
    // A carrier's push has no request id: the same event twice is recorded
    // once by its content (see `record_event`).
    let no_id = crate::requests::Ticket::none();
    match crate::service::record_carrier_event(ctx, &event, &format!("carrier:{name}"), &no_id)
        .await
    {
        Ok(case) => {
            tracing::info!(carrier = %name, waybill = %event.waybill, status = %event.status, case = %case.case_no, "carrier event recorded");
            reply(
                StatusCode::OK,
                serde_json::json!({"case_no": case.case_no, "state": case.state}),
            )
        }
        Err(NodeError::NotFound(m)) => refuse(&name, StatusCode::NOT_FOUND, m),
        Err(NodeError::Invalid(m)) => refuse(&name, StatusCode::BAD_REQUEST, m),
        Err(NodeError::Precondition(m)) => refuse(&name, StatusCode::CONFLICT, m),
        Err(NodeError::Refused { refusal, message }) => {
            let status = match refusal.reason.class() {
                tongban_core::refusal::Class::Invalid => StatusCode::BAD_REQUEST,
                tongban_core::refusal::Class::Precondition => StatusCode::CONFLICT,
                tongban_core::refusal::Class::NotPermitted => StatusCode::FORBIDDEN,
                tongban_core::refusal::Class::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                tongban_core::refusal::Class::NotFound => StatusCode::NOT_FOUND,
            };
            refuse(&name, status, message)
        }
        Err(e) => {
            tracing::error!(carrier = %name, error = %e, "carrier event failed");
            reply(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::json!({"error": "not recorded; try again"}),
            )
        }
    }
}

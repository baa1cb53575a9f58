//! Requests that do not decode: raw HTTP/2 gRPC frames with garbage bytes,
//! over real mutual TLS, to a unary and a client-streaming RPC. The answer
//! is `INVALID_ARGUMENT` naming the decode error, never `INTERNAL`.

use http_body_util::{BodyExt, Full};
use tonic::codegen::Bytes;
use tonic::codegen::{Service, http};
use tonic::{Code, Status};

use crate::support::*;

const GET_CASE: &str = "/tongban.window.v1.Window/GetCase";
const APPLY: &str = "/tongban.window.v1.Window/Apply";

/// One gRPC message frame: uncompressed, its length, the bytes.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Posts `body` as-is to `path` and returns the status of the answer
/// (from the headers of a trailers-only answer, else from the trailers).
async fn post(channel: &mut tonic::transport::Channel, path: &str, body: Vec<u8>) -> Status {
    let request = http::Request::builder()
        .method("POST")
        .uri(path)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(tonic::body::Body::new(Full::new(Bytes::from(body))))
        .unwrap();
    std::future::poll_fn(|cx| channel.poll_ready(cx))
        .await
        .expect("channel ready");
    let response = channel.call(request).await.expect("an HTTP/2 answer");
    assert_eq!(response.status(), http::StatusCode::OK);
    if let Some(status) = Status::from_header_map(response.headers()) {
        return status;
    }
    let collected = response.into_body().collect().await.expect("the body");
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Status::from_header_map(&trailers).expect("a grpc-status")
}

fn assert_names_the_decode_error(status: &Status, what: &str) {
    assert_eq!(status.code(), Code::InvalidArgument, "{what}: {status:?}");
    // A streaming handler puts its own words first.
    assert!(
        status.message().contains("the request does not decode: "),
        "{what}: {status:?}"
    );
}

#[tokio::test]
async fn a_request_that_does_not_decode_is_invalid_argument_naming_the_error() {
    let cluster = Cluster::start().await;
    let mut channel = cluster.client(HANTAI, clerk(HANTAI, "wang")).await;

    // A varint that never ends; a length-delimited field longer than the
    // message; a frame with a compression flag that does not exist; a body
    // that ends inside its frame.
    let cases: [(&str, Vec<u8>, &str); 4] = [
        (
            "unterminated varint",
            frame(&[0xff; 12]),
            "failed to decode Protobuf message",
        ),
        (
            "field past the end",
            frame(b"\x0a\xff\x01abc"),
            "failed to decode Protobuf message",
        ),
        (
            "compression flag 7",
            [&[7u8, 0, 0, 0, 1][..], b"x"].concat(),
            "invalid compression flag",
        ),
        (
            "truncated frame",
            [&[0u8, 0, 0, 0, 100][..], b"short"].concat(),
            "Unexpected EOF",
        ),
    ];
    for path in [GET_CASE, APPLY] {
        for (what, body, names) in &cases {
            let status = post(&mut channel, path, body.clone()).await;
            let what = format!("{path}: {what}");
            assert_names_the_decode_error(&status, &what);
            assert!(status.message().contains(names), "{what}: {status:?}");
        }
    }

    // Random garbage, framed: whatever it decodes to, never INTERNAL.
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..200 {
        let len = fastrand::usize(1..300);
        let garbage: Vec<u8> = std::iter::repeat_with(|| fastrand::u8(..))
            .take(len)
            .collect();
        let path = if i % 2 == 0 { GET_CASE } else { APPLY };
        let status = post(&mut channel, path, frame(&garbage)).await;
        assert_ne!(status.code(), Code::Internal, "{path}: {status:?}");
        *seen.entry(format!("{:?}", status.code())).or_default() += 1;
    }
    assert!(seen.contains_key("InvalidArgument"), "{seen:?}");
}

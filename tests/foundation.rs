//! The foundation: who may call what over mutual TLS, health, and the
//! validation of configs and directories.

use tongban_node::NodeConfig;
use tongban_proto::federation::v1::HandoffFrame;
use tongban_proto::federation::v1::federation_client::FederationClient;
use tongban_proto::window::v1::ListCasesRequest;
use tongban_proto::window::v1::window_client::WindowClient;
use tonic::Code;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::*;

async fn list(channel: tonic::transport::Channel) -> Result<(), tonic::Status> {
    WindowClient::new(channel)
        .list_cases(ListCasesRequest::default())
        .await
        .map(|_| ())
}

#[tokio::test]
async fn health_answers_serving_over_mutual_tls() {
    let cluster = Cluster::start().await;
    let mut health = HealthClient::new(cluster.client(HANTAI, clerk(HANTAI, "wang")).await);
    for service in [
        "",
        "tongban.federation.v1.Federation",
        "tongban.window.v1.Window",
    ] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("health")
            .into_inner();
        assert_eq!(reply.status(), ServingStatus::Serving, "{service:?}");
    }
}

#[tokio::test]
async fn refuses_a_client_without_a_certificate() {
    let cluster = Cluster::start().await;
    let channel = anonymous_channel(cluster.addr(HANTAI), cluster.pki().ca.cert_pem());
    let err = list(channel)
        .await
        .expect_err("no certificate must be refused");
    // TLS 1.3: the handshake failure surfaces at the first call.
    assert_ne!(err.code(), Code::Ok);
    let mut health = HealthClient::new(anonymous_channel(
        cluster.addr(HANTAI),
        cluster.pki().ca.cert_pem(),
    ));
    assert!(
        health.check(HealthCheckRequest::default()).await.is_err(),
        "health too needs a certificate"
    );
}

#[tokio::test]
async fn refuses_a_certificate_from_another_ca() {
    let cluster = Cluster::start().await;
    let other = Pki::new();
    let mut tls = other.issue(clerk(HANTAI, "wang"));
    // Trust the right server CA, but present a certificate of another CA.
    tls.ca_pem = cluster.pki().ca.cert_pem().to_owned();
    let err = list(channel(cluster.addr(HANTAI), &tls).await)
        .await
        .expect_err("foreign CA");
    assert_ne!(err.code(), Code::Ok);
    assert_ne!(
        err.code(),
        Code::PermissionDenied,
        "refused at the handshake, not by the gate"
    );
}

#[tokio::test]
async fn refuses_an_expired_certificate() {
    let cluster = Cluster::start().await;
    let mut spec = Pki::spec(&[&format!("spiffe://{TD}/county/{HANTAI}/clerk/wang")]);
    spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(10);
    spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    let tls = cluster.pki().leaf(spec);
    let err = list(channel(cluster.addr(HANTAI), &tls).await)
        .await
        .expect_err("expired");
    assert_ne!(err.code(), Code::Ok);
}

#[tokio::test]
async fn refuses_a_certificate_with_two_uri_sans() {
    let cluster = Cluster::start().await;
    let tls = cluster.pki().leaf(Pki::spec(&[
        &format!("spiffe://{TD}/county/{HANTAI}/clerk/wang"),
        &format!("spiffe://{TD}/county/{HANTAI}/clerk/li"),
    ]));
    let err = list(channel(cluster.addr(HANTAI), &tls).await)
        .await
        .expect_err("two SANs");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("2 URI SANs"), "{}", err.message());
}

#[tokio::test]
async fn refuses_a_certificate_of_another_trust_domain() {
    let cluster = Cluster::start().await;
    let tls = cluster.pki().leaf(Pki::spec(&[&format!(
        "spiffe://other.tongban/county/{HANTAI}/clerk/wang"
    )]));
    let err = list(channel(cluster.addr(HANTAI), &tls).await)
        .await
        .expect_err("other domain");
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("trust domain"), "{}", err.message());
}

#[tokio::test]
async fn refuses_a_clerk_on_the_federation_service() {
    let cluster = Cluster::start().await;
    let mut fed = FederationClient::new(cluster.client(YANTA, clerk(YANTA, "wang")).await);
    let err = fed
        .handoff(tokio_stream::iter(Vec::<HandoffFrame>::new()))
        .await
        .expect_err("clerk on federation");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(
        err.message().contains("only county nodes"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn refuses_a_node_of_a_county_not_in_the_directory() {
    let cluster = Cluster::start().await;
    // 碑林区 610103 is a real county, but not in this federation's directory.
    let mut fed = FederationClient::new(cluster.client(YANTA, node("610103")).await);
    let err = fed
        .handoff(tokio_stream::iter(Vec::<HandoffFrame>::new()))
        .await
        .expect_err("unknown county");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("610103"), "{}", err.message());
}

#[tokio::test]
async fn refuses_a_clerk_of_another_county_on_the_window() {
    let cluster = Cluster::start().await;
    let err = list(cluster.client(HANTAI, clerk(YANTA, "wang")).await)
        .await
        .expect_err("other county");
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(err.message().contains("610113"), "{}", err.message());
    // A reviewer of the right county is not a clerk either.
    let err = list(cluster.client(HANTAI, reviewer(HANTAI, "li")).await)
        .await
        .expect_err("reviewer");
    assert_eq!(err.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn accepts_a_partner_node_and_the_own_clerk() {
    let cluster = Cluster::start().await;
    let mut fed = cluster.federation_as(YANTA, HANTAI).await;
    let reply = fed
        .handoff(tokio_stream::iter(Vec::<HandoffFrame>::new()))
        .await
        .expect("partner node accepted")
        .into_inner();
    assert!(reply.results.is_empty());
    list(cluster.client(HANTAI, clerk(HANTAI, "wang")).await)
        .await
        .expect("own clerk");
}

/// Writes a config next to the example directory and certificates, with
/// `edit` applied to the config text, and returns the load error.
fn config_error(
    edit: impl Fn(String) -> String,
    directory_edit: impl Fn(String) -> String,
) -> String {
    let pki = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let tls = pki.issue(node(HANTAI));
    std::fs::write(dir.path().join("ca.crt"), pki.ca.cert_pem()).unwrap();
    std::fs::write(dir.path().join("node.crt"), &tls.cert_pem).unwrap();
    std::fs::write(dir.path().join("node.key"), &tls.key_pem).unwrap();
    let directory = include_str!("../examples/federation.toml").to_owned();
    std::fs::write(
        dir.path().join("federation.toml"),
        directory_edit(directory),
    )
    .unwrap();
    let config = "county = \"610702\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\ndirectory = \"federation.toml\"\n\
                  [tls]\nca = \"ca.crt\"\ncert = \"node.crt\"\nkey = \"node.key\"\n";
    let path = dir.path().join("node.toml");
    std::fs::write(&path, edit(config.to_owned())).unwrap();
    match NodeConfig::load(&path) {
        Ok(_) => "loaded".into(),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_good_config_loads() {
    assert_eq!(config_error(|c| c, |d| d), "loaded");
}

#[test]
fn config_errors_name_the_file_and_the_field() {
    let same = |d: String| d;
    for (edit, expect) in [
        (
            Box::new(|c: String| c.replace("610702", "61070")) as Box<dyn Fn(String) -> String>,
            "county",
        ),
        (
            Box::new(|c: String| c.replace("610702", "610103")),
            "is not a county in",
        ),
        (
            Box::new(|c: String| c.replace("127.0.0.1:0", "localhost")),
            "listen",
        ),
        (
            Box::new(|c: String| c.replace("node.key", "missing.key")),
            "tls.key",
        ),
        (
            Box::new(|c: String| c.replace("ca = ", "cx = ")),
            "unknown field",
        ),
        (
            Box::new(|c: String| c + "[delivery]\nbatch_size = 0\n"),
            "delivery",
        ),
        (
            Box::new(|c: String| c + "[limits]\nmax_material_bytes = 0\n"),
            "limits",
        ),
    ] {
        let err = config_error(edit, same);
        assert!(err.contains("node.toml"), "names the file: {err}");
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
    }
}

#[test]
fn a_certificate_of_another_county_is_a_config_error() {
    // The config says 610113, the certificate is 610702's.
    let err = config_error(
        |c| c.replacen("county = \"610702\"", "county = \"610113\"", 1),
        |d| d,
    );
    assert!(err.contains("tls.cert") && err.contains("610702"), "{err}");
}

#[test]
fn directory_errors_name_the_file_and_the_field() {
    let keep = |c: String| c;
    for (edit, expect) in [
        (
            Box::new(|d: String| d.replace("code = \"610113\"", "code = \"610702\""))
                as Box<dyn Fn(String) -> String>,
            "duplicate",
        ),
        (
            Box::new(|d: String| {
                d.replace(
                    "counties = [\"610702\", \"610113\"]",
                    "counties = [\"610702\", \"610722\"]",
                )
            }),
            "agreement[0]",
        ),
        (
            Box::new(|d: String| {
                d.replace(
                    "items = [\"GT-0001\", \"HJ-0001\", \"SW-0001\"]",
                    "items = [\"GT-9999\"]",
                )
            }),
            "GT-9999",
        ),
        (
            Box::new(|d: String| {
                d.replace(
                    "delivery = [\"mail-applicant\", \"collect-home\"]",
                    "delivery = []",
                )
            }),
            "delivery",
        ),
        (
            Box::new(|d: String| d.replace("https://127.0.0.1:7002", "http://127.0.0.1:7002")),
            "endpoint",
        ),
        (
            Box::new(|d: String| d.replace("trust_domain", "trust_domian")),
            "federation.toml",
        ),
    ] {
        let err = config_error(keep, edit);
        assert!(err.contains("federation.toml"), "names the file: {err}");
        assert!(err.contains(expect), "expected {expect:?} in: {err}");
    }
}

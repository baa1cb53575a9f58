//! What the sandbox promises its callers: the layout on disk is what a user
//! would write; a stopped node's port refuses calls and stays held, so a
//! restart serves on the same port; a port handed over to a process stays
//! held; a node that stops by itself is reported with why.

use tongban_sandbox::{Builder, HANTAI, Sandbox, YANTA, clerk};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

/// Whether the node of `code` answers a health check from its clerk.
async fn serving(sandbox: &Sandbox, code: &str) -> bool {
    HealthClient::new(sandbox.client(code, clerk(code, "wang")))
        .check(HealthCheckRequest::default())
        .await
        .is_ok()
}

#[tokio::test]
async fn the_layout_is_what_a_user_would_write() {
    let sandbox = Builder::new().counties(&[HANTAI, YANTA]).build().unwrap();
    let directory = std::fs::read_to_string(sandbox.directory_path()).unwrap();
    assert!(directory.contains(&format!("endpoint = \"{}\"", sandbox.endpoint(HANTAI))));
    assert!(directory.contains(&format!("endpoint = \"{}\"", sandbox.endpoint(YANTA))));
    // The county not run keeps the example's endpoint.
    assert!(directory.contains("endpoint = \"https://127.0.0.1:7003\""));
    let config = tongban_node::NodeConfig::load(sandbox.config_path(HANTAI)).unwrap();
    assert_eq!(config.listen, sandbox.addr(HANTAI));
    assert_eq!(config.data_dir, sandbox.data_dir(HANTAI));
    for file in ["ca.crt", "ca.key", "node-610702.crt", "node-610113.key"] {
        assert!(sandbox.certs_dir().join(file).exists(), "{file}");
    }
    assert_eq!(sandbox.provisioned().issued, 2);
}

#[tokio::test]
async fn a_stopped_node_keeps_its_port_and_a_restart_serves_on_it() {
    let mut sandbox = Builder::new().counties(&[HANTAI]).build().unwrap();
    let addr = sandbox.addr(HANTAI);
    assert!(!serving(&sandbox, HANTAI).await, "refused before the start");
    sandbox.start_all().await.unwrap();
    assert!(serving(&sandbox, HANTAI).await);

    sandbox.stop(HANTAI).await.unwrap();
    assert!(!serving(&sandbox, HANTAI).await, "refused while down");
    assert!(
        std::net::TcpListener::bind(addr).is_err(),
        "nobody else can take the port"
    );
    sandbox.restart(HANTAI).await.unwrap();
    assert_eq!(sandbox.addr(HANTAI), addr);
    assert!(serving(&sandbox, HANTAI).await);

    assert!(
        sandbox.sockets(HANTAI).is_err(),
        "not handed over while it serves here"
    );
    sandbox.hand_over(HANTAI).await.unwrap();
    assert!(
        std::net::TcpListener::bind(addr).is_err(),
        "still held for the process"
    );
    sandbox.sockets(HANTAI).expect("its sockets, for a process");
    assert!(sandbox.start(HANTAI).await.is_err(), "handed over for good");
}

#[tokio::test]
async fn a_node_that_fails_by_itself_is_reported_with_why() {
    let mut sandbox = Builder::new().counties(&[HANTAI]).build().unwrap();
    // A file where its database should be: the node cannot open its store.
    std::fs::create_dir_all(sandbox.data_dir(HANTAI).parent().unwrap()).unwrap();
    std::fs::write(sandbox.data_dir(HANTAI), "not a directory").unwrap();
    sandbox.start(HANTAI).await.unwrap();
    let (code, result) = sandbox.exited().await;
    assert_eq!(code, HANTAI);
    assert!(result.is_err(), "{result:?}");
    // Its port is held and refusing again.
    assert!(std::net::TcpListener::bind(sandbox.addr(HANTAI)).is_err());
}

//! Durability at the edge of the disk: a node whose data dir fills up shows
//! only what the disk holds, says so to callers and to health checks, and
//! takes writes again by itself once there is room.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tongban_proto::window::v1::{CaseRef, VerifyIdentityRequest};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

use crate::support::*;

/// A small tmpfs mounted on a directory, unmounted when dropped (also when
/// the test fails). Needs root, which CI has; without it the test fails
/// and says why.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test needs a small tmpfs as a node's data dir and could not mount one \
             (it must run as root, as CI does): mount -t tmpfs {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Self(dir.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a node that is still stopping may hold files on it.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Fills the file system holding `path` until it refuses another byte.
fn fill(path: &Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("create the ballast");
    let block = vec![0u8; 64 * 1024];
    loop {
        match f.write(&block) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("writing the ballast: {e}"),
        }
    }
    // Fill the last partial block too.
    while let Ok(n) = f.write(&[0u8; 512]) {
        if n == 0 {
            break;
        }
    }
}

async fn health(cluster: &Cluster, code: &str) -> ServingStatus {
    let mut health = HealthClient::new(cluster.client(code, clerk(code, "wang")).await);
    health
        .check(HealthCheckRequest {
            service: "tongban.window.v1.Window".into(),
        })
        .await
        .expect("health answers")
        .into_inner()
        .status()
}

#[tokio::test]
async fn a_full_disk_refuses_writes_shows_what_is_on_disk_and_recovers_by_itself() {
    let mut mount = None;
    let mut cluster = Cluster::start_after(Options::default(), |sandbox| {
        mount = Some(Tmpfs::mount(sandbox.data_dir(HANTAI), "4m"));
    })
    .await;
    let _mount = mount.expect("mounted");
    let data_dir = cluster.data_dir(HANTAI).to_owned();
    let mut window = cluster.window(HANTAI).await;

    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &gt_materials(),
    )
    .await
    .expect("apply");
    window
        .verify_identity(VerifyIdentityRequest {
            request_id: String::new(),
            case_no: case.case_no.clone(),
            method: "id-card-reader".into(),
        })
        .await
        .expect("verify identity");
    let case_ref = || CaseRef {
        request_id: String::new(),
        case_no: case.case_no.clone(),
    };
    let before = window
        .get_case(case_ref())
        .await
        .expect("status")
        .into_inner();
    assert_eq!(health(&cluster, HANTAI).await, ServingStatus::Serving);

    let ballast = data_dir.join("ballast");
    fill(&ballast);
    let err = window
        .accept(case_ref())
        .await
        .expect_err("accept with a full disk");
    assert_eq!(err.code(), tonic::Code::Unavailable, "{err:?}");
    assert_eq!(
        err.message(),
        "the node's storage is full; nothing was stored"
    );
    let shown = window
        .get_case(case_ref())
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        shown.state, before.state,
        "the status shows what the disk holds, not the refused accept"
    );
    assert_eq!(shown.history.len(), before.history.len());
    assert_eq!(health(&cluster, HANTAI).await, ServingStatus::NotServing);

    std::fs::remove_file(&ballast).expect("remove the ballast");
    let started = std::time::Instant::now();
    eventually("health SERVING once the disk has room", || async {
        (health(&cluster, HANTAI).await == ServingStatus::Serving).then_some(())
    })
    .await;
    let recovered = started.elapsed();
    println!("writes taken again {recovered:?} after the space came back");
    assert!(
        recovered < Duration::from_secs(5),
        "took {recovered:?} to take writes again"
    );
    let accepted = window
        .accept(case_ref())
        .await
        .expect("accept once the disk has room")
        .into_inner()
        .case
        .expect("case");
    assert_ne!(accepted.state, before.state);
    // The handoff the accept queued reaches the home county.
    let mut review = cluster.review(YANTA).await;
    home_case_until(&mut review, &case.case_no, "received", |_| true).await;
    cluster.stop(HANTAI).await;
}

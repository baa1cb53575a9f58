//! `tongban node --config F --check` as a real process: it reports every
//! problem (exit 64) or none (exit 0), and binds and writes nothing.

use std::process::Command;

use tongban_pki::Identity;
use tongban_sandbox::Pki;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

fn check(config: &std::path::Path) -> (Option<i32>, String, String) {
    let out = Command::new(BIN)
        .args(["node", "--check", "--config"])
        .arg(config)
        .output()
        .expect("run tongban node --check");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn check_passes_a_good_config_and_names_every_problem_of_a_bad_one() {
    let sandbox = tongban_sandbox::Builder::new()
        .temp_prefix("tongban-check-")
        .counties(&[HANTAI])
        .build()
        .expect("lay out the sandbox");
    let root = sandbox.root();

    let (code, stdout, stderr) = check(sandbox.config_path(HANTAI));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("ok, 0 warning(s)"), "{stdout}");
    // Nothing was created: the data dir is only checked to be creatable.
    assert!(!sandbox.data_dir(HANTAI).exists());
    // A data dir others can read is a warning, not an error.
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(sandbox.data_dir(HANTAI))
            .unwrap();
    }
    let (code, stdout, stderr) = check(sandbox.config_path(HANTAI));
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(
        stdout.contains("warning: ")
            && stdout.contains("data_dir: ")
            && stdout.contains("mode 755"),
        "{stdout}"
    );

    // Another county's node certificate, expired, and no directory file.
    let now = time::OffsetDateTime::now_utc();
    let mut spec = Pki::spec(&[&Identity::new(TD, node(SHANGZHOU)).unwrap().spiffe_id()]);
    spec.not_before = now - time::Duration::days(40);
    spec.not_after = now - time::Duration::days(3);
    spec.server = true;
    let bad = sandbox.pki().leaf(spec);
    std::fs::write(root.join("certs/bad.crt"), &bad.cert_pem).unwrap();
    std::fs::write(root.join("certs/bad.key"), &bad.key_pem).unwrap();
    let good = std::fs::read_to_string(sandbox.config_path(HANTAI)).unwrap();
    let config = root.join("bad.toml");
    std::fs::write(
        &config,
        good.replace("federation.toml", "missing.toml")
            .replace(&format!("node-{HANTAI}."), "bad."),
    )
    .unwrap();
    let (code, stdout, stderr) = check(&config);
    assert_eq!(code, Some(64), "{stdout}{stderr}");
    let errors: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    let has = |needle: &str| errors.iter().any(|l| l.contains(needle));
    assert!(
        has("bad.toml: directory: ") && has("missing.toml"),
        "{stdout}"
    );
    assert!(
        has(&format!(
            "bad.toml: tls.cert: certificate is spiffe://{TD}/county/{SHANGZHOU}/node, expected spiffe://{TD}/county/{HANTAI}/node"
        )),
        "{stdout}"
    );
    assert!(has("bad.toml: tls.cert: expired on "), "{stdout}");
    assert_eq!(errors.len(), 3, "{stdout}");
    assert!(stderr.contains("3 error(s)"), "{stderr}");
}

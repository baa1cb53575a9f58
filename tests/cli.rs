//! The `tongban` client commands as real processes against an in-process
//! cluster: `--json` prints one JSON document holding every field of the
//! reply's proto message, so a new field cannot go missing from scripts.

use std::path::Path;
use std::process::Command;

use prost::Message;
use prost_types::{DescriptorProto, FileDescriptorSet};
use serde_json::Value;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

/// Runs `tongban ARGS --profile P --json` off the async runtime and parses
/// its stdout as one JSON document.
pub(crate) async fn json(profile: &Path, args: &[&str]) -> Value {
    let mut command = Command::new(BIN);
    command
        .args(args)
        .arg("--profile")
        .arg(profile)
        .arg("--json");
    let what = format!("{args:?}");
    tokio::task::spawn_blocking(move || {
        let out = command.output().expect("run tongban");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{what}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("{what}: stdout is not one JSON document ({e}): {stdout}"))
    })
    .await
    .unwrap()
}

/// The message `name` (e.g. `.tongban.common.v1.CaseView`) of the
/// compiled protocol.
fn message(name: &str) -> DescriptorProto {
    let set = FileDescriptorSet::decode(tongban_proto::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .iter()
        .flat_map(|f| {
            f.message_type
                .iter()
                .map(move |m| (format!(".{}.{}", f.package(), m.name()), m))
        })
        .find(|(full, _)| full == name)
        .map(|(_, m)| m.clone())
        .unwrap_or_else(|| panic!("no message {name}"))
}

/// Asserts that `doc` has every field of `name` under its `.proto` name.
/// As in the proto3 JSON mapping, the fields with presence (a oneof's, a
/// single message) appear only when set; the test sets those it checks.
fn assert_every_field(doc: &Value, name: &str) {
    use prost_types::field_descriptor_proto::{Label, Type};
    let m = message(name);
    assert!(!m.field.is_empty(), "{name} has fields");
    let has_presence = |f: &prost_types::FieldDescriptorProto| {
        f.oneof_index.is_some() || (f.r#type() == Type::Message && f.label() != Label::Repeated)
    };
    for f in m.field.iter().filter(|f| !has_presence(f)) {
        assert!(
            doc.get(f.name()).is_some(),
            "{name}.{} is missing from --json: {doc:#}",
            f.name()
        );
    }
}

const CASE_VIEW: &str = ".tongban.common.v1.CaseView";

#[tokio::test]
async fn json_of_every_client_reply_holds_every_field_of_its_message() {
    let cluster = Cluster::start().await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let dir = cluster.root();
    let mut material_args = Vec::new();
    for (kind, data) in gt_materials() {
        let path = dir.join(format!("{kind}.pdf"));
        std::fs::write(&path, data).unwrap();
        material_args.push("--material".to_owned());
        material_args.push(format!("{kind}={}", path.display()));
    }

    let mut apply = vec![
        "window",
        "apply",
        "--item",
        "GT-0001",
        "--home",
        YANTA,
        "--delivery",
        "mail-applicant",
        "--person-name",
        "张三",
        "--person-id",
        PERSON_ID,
        "--phone",
        "13812345678",
        "--address",
        "汉中市汉台区",
    ];
    apply.extend(material_args.iter().map(String::as_str));
    let case = json(&clerk, &apply).await;
    assert_every_field(&case, CASE_VIEW);
    assert_every_field(&case["materials"][0], ".tongban.common.v1.MaterialDigest");
    assert_every_field(&case["applicant"], ".tongban.common.v1.Applicant");
    assert!(case["applicant"]["person"]["name"].is_string(), "{case:#}");
    let case_no = case["case_no"].as_str().expect("case_no").to_owned();

    let case = json(
        &clerk,
        &["window", "verify-identity", &case_no, "--method", "face"],
    )
    .await;
    assert_every_field(&case["identity_check"], ".tongban.common.v1.IdentityCheck");

    let receipt = json(&clerk, &["window", "accept", &case_no]).await;
    assert_every_field(&receipt, ".tongban.window.v1.IntakeReceipt");
    assert_every_field(&receipt["case"], CASE_VIEW);
    assert_eq!(receipt["case"]["case_no"], case_no.as_str());

    for args in [&["window", "list"][..], &["window", "overdue"]] {
        let list = json(&clerk, args).await;
        assert_every_field(&list, ".tongban.window.v1.ListCasesReply");
    }
    let list = json(&clerk, &["window", "list"]).await;
    assert_every_field(&list["cases"][0], CASE_VIEW);
    assert_every_field(
        &json(&clerk, &["window", "status", &case_no]).await,
        CASE_VIEW,
    );

    let mut review = cluster.review(YANTA).await;
    home_state(&mut review, &case_no, "HANDED_OFF").await;
    let inbox = json(&reviewer, &["review", "inbox"]).await;
    assert_every_field(&inbox, ".tongban.review.v1.InboxReply");
    assert_eq!(inbox["cases"][0]["case_no"], case_no.as_str());
    assert_every_field(
        &json(&reviewer, &["review", "overdue"]).await,
        ".tongban.review.v1.InboxReply",
    );
    let case = json(&reviewer, &["review", "accept", &case_no]).await;
    assert_every_field(&case, CASE_VIEW);
    assert_eq!(case["state"], "UNDER_REVIEW");

    let case = json(
        &clerk,
        &[
            "mail",
            "send",
            &case_no,
            "--leg",
            "materials",
            "--carrier",
            "EMS",
            "--waybill",
            "EA473124829CN",
        ],
    )
    .await;
    assert_every_field(&case, CASE_VIEW);
    assert_every_field(&case["mail"][0], ".tongban.common.v1.MailLeg");
    let case = json(
        &clerk,
        &[
            "mail",
            "event",
            "--waybill",
            "EA473124829CN",
            "--status",
            "in-transit",
        ],
    )
    .await;
    assert_every_field(&case, CASE_VIEW);
}

/// Runs `tongban ARGS` with `env` set, off the async runtime; returns (exit
/// code, stdout, stderr).
pub(crate) async fn run(args: &[&str], env: &[(&str, &Path)]) -> (i32, String, String) {
    let mut command = Command::new(BIN);
    command.args(args).env_remove("TONGBAN_PROFILE");
    for (name, value) in env {
        command.env(name, value);
    }
    tokio::task::spawn_blocking(move || {
        let out = command.output().expect("run tongban");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    })
    .await
    .unwrap()
}

/// Asserts the exit code of `tongban ARGS` and that stderr says `says`.
pub(crate) async fn exits(code: i32, args: &[&str], env: &[(&str, &Path)], says: &str) {
    let (got, out, err) = run(args, env).await;
    assert_eq!(got, code, "{args:?}: {out}{err}");
    assert!(err.contains(says), "{args:?}: {says:?} in {err}");
}

#[tokio::test]
async fn certs_and_node_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    exits(
        2,
        &["certs", "create-ca", "--dir", d],
        &[],
        "--trust-domain",
    )
    .await;
    exits(
        2,
        &[
            "certs",
            "create-user",
            "--dir",
            d,
            "--county",
            "610702",
            "--role",
            "boss",
            "--name",
            "x",
        ],
        &[],
        "[possible values: clerk, reviewer]",
    )
    .await;
    exits(
        1,
        &[
            "certs",
            "create-node",
            "--dir",
            d,
            "--county",
            "610702",
            "--host",
            "x",
        ],
        &[],
        "ca.crt",
    )
    .await;
    let (code, out, err) = run(
        &["certs", "create-ca", "--dir", d, "--trust-domain", TD],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(&["certs", "list", "--dir", d], &[]).await;
    assert_eq!(code, 0, "no problems: {out}{err}");
    let line = out.lines().nth(1).expect("a row");
    // NOT AFTER in China Standard Time, as every time the CLI shows people;
    // --json keeps RFC 3339 UTC.
    let cols: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(cols.get(5), Some(&"CST"), "{out}");
    assert!(
        time::PrimitiveDateTime::parse(
            &format!("{} {}", cols[3], cols[4]),
            time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
        )
        .is_ok(),
        "a time to the second: {out}"
    );
    let (code, out, err) = run(&["certs", "list", "--dir", d, "--json"], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert!(
        time::OffsetDateTime::parse(
            listed[0]["not_after"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "RFC 3339 in --json: {out}"
    );

    exits(2, &["node"], &[], "--config").await;
    let missing = dir.path().join("node.toml");
    let m = missing.to_str().unwrap();
    exits(
        64,
        &["node", "--config", m],
        &[],
        &format!("{m}: cannot read the file:"),
    )
    .await;
    std::fs::write(&missing, "county = 1\n").unwrap();
    exits(64, &["node", "--config", m], &[], m).await;
}

#[tokio::test]
async fn client_exit_codes_usage_2_profile_64_refused_1() {
    let cluster = Cluster::start().await;
    let clerk_profile = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer_profile = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let clerk = clerk_profile.to_str().unwrap();
    let reviewer = reviewer_profile.to_str().unwrap();
    let dir = cluster.root();
    let missing = dir.join("missing.toml");
    let invalid = dir.join("invalid.toml");
    std::fs::write(&invalid, "node = \"https://127.0.0.1:1\"\nca = 5\n").unwrap();
    let unknown_case = "610702-20261201-999";

    // Usage: connection flags that nothing gives, values outside their set.
    exits(
        2,
        &["window", "status", unknown_case],
        &[],
        "--ca is required",
    )
    .await;
    exits(
        2,
        &["review", "inbox", "--node", "https://127.0.0.1:1"],
        &[],
        "--ca is required",
    )
    .await;
    exits(
        2,
        &[
            "window",
            "verify-identity",
            unknown_case,
            "--method",
            "retina",
            "--profile",
            clerk,
        ],
        &[],
        "[possible values: id-card-reader, face, manual]",
    )
    .await;
    exits(
        2,
        &["window", "list", "--state", "LOST", "--profile", clerk],
        &[],
        "QUEUED",
    )
    .await;
    exits(
        2,
        &[
            "window",
            "attach",
            unknown_case,
            "--material",
            "no-equals",
            "--profile",
            clerk,
        ],
        &[],
        "expected KIND=PATH",
    )
    .await;
    exits(
        2,
        &[
            "review",
            "correct",
            unknown_case,
            "--need",
            "no-colon",
            "--profile",
            reviewer,
        ],
        &[],
        "expected KIND:REASON",
    )
    .await;
    exits(
        2,
        &[
            "mail",
            "send",
            unknown_case,
            "--leg",
            "boat",
            "--carrier",
            "EMS",
            "--waybill",
            "x",
        ],
        &[],
        "[possible values: materials, result]",
    )
    .await;
    exits(2, &["audit", "trace", unknown_case], &[], "--node").await;

    // Configuration: a profile that is missing or invalid, by flag or environment.
    let m = missing.to_str().unwrap();
    exits(
        64,
        &["window", "list", "--profile", m],
        &[],
        "cannot read profile",
    )
    .await;
    exits(
        64,
        &["review", "inbox"],
        &[("TONGBAN_PROFILE", &invalid)],
        "line 2",
    )
    .await;
    exits(
        64,
        &[
            "mail",
            "event",
            "--waybill",
            "x",
            "--status",
            "lost",
            "--profile",
            m,
        ],
        &[],
        m,
    )
    .await;
    exits(
        64,
        &[
            "audit",
            "verify",
            "--node",
            "https://127.0.0.1:1",
            "--profile",
            m,
        ],
        &[],
        "cannot read profile",
    )
    .await;

    // Refused by the node or failed: exit 1, the message says what.
    exits(
        1,
        &["window", "status", unknown_case, "--profile", clerk],
        &[],
        unknown_case,
    )
    .await;
    let (code, _, err) = run(&["window", "status", "not-a-case", "--profile", clerk], &[]).await;
    assert_eq!(code, 1, "{err}");
    assert_eq!(err.matches("case number").count(), 1, "said once: {err}");
    exits(
        1,
        &["review", "accept", unknown_case, "--profile", reviewer],
        &[],
        unknown_case,
    )
    .await;
    exits(
        1,
        &[
            "mail",
            "event",
            "--waybill",
            "EA473124829CN",
            "--status",
            "lost",
            "--profile",
            clerk,
        ],
        &[],
        "EA473124829CN",
    )
    .await;
    let bundle = dir.join("none.bundle.json");
    exits(
        1,
        &[
            "audit",
            "verify-bundle",
            bundle.to_str().unwrap(),
            "--profile",
            clerk,
        ],
        &[],
        "cannot read",
    )
    .await;

    // Success.
    let (code, out, err) = run(&["window", "list", "--profile", clerk], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(
        &["review", "inbox"],
        &[("TONGBAN_PROFILE", &reviewer_profile)],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test]
async fn completions_man_page_and_version() {
    for shell in ["bash", "zsh", "fish"] {
        let (code, out, err) = run(&["completions", shell], &[]).await;
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(out.contains("verify-identity"), "{shell}: {out}");
        assert!(
            out.contains("page-token"),
            "{shell}: window list --page-token"
        );
        // review inbox pages too: its own options list has --page-token.
        let inbox = match shell {
            "bash" => "tongban__subcmd__review__subcmd__inbox)",
            "zsh" => "(inbox)",
            _ => "from inbox\" -l page-token",
        };
        let at = out
            .find(inbox)
            .unwrap_or_else(|| panic!("{shell}: {inbox}"));
        let options: String = out[at..].lines().take(4).collect();
        assert!(
            options.contains("page-token"),
            "{shell}: review inbox --page-token: {options}"
        );
        assert!(
            out.contains("in-transit"),
            "{shell} completes values: {out}"
        );
    }
    exits(2, &["completions", "cmd.exe"], &[], "possible values").await;
    let (code, out, err) = run(&["man"], &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with(".ie") || out.contains(".TH tongban"),
        "{out}"
    );
    let (code, out, _) = run(&["--version"], &[]).await;
    assert_eq!(code, 0);
    let commit = out
        .trim()
        .strip_prefix(concat!("tongban ", env!("CARGO_PKG_VERSION"), " ("))
        .and_then(|rest| rest.strip_suffix(')'))
        .unwrap_or_else(|| panic!("tongban VERSION (COMMIT): {out}"));
    assert!(
        commit == "unknown" || (commit.len() >= 7 && commit.chars().all(|c| c.is_ascii_hexdigit())),
        "{out}"
    );
}

#[tokio::test]
async fn a_clerk_talks_only_to_the_node_of_their_county() {
    let cluster = Cluster::start().await;
    // 汉台's clerk with a profile that points at 雁塔's node.
    let wrong = profile(&cluster, YANTA, "astray", clerk(HANTAI, "wang"));
    let wrong = wrong.to_str().unwrap();
    exits(
        1,
        &["window", "list", "--profile", wrong],
        &[],
        "expected spiffe://shaanxi.tongban/county/610702/node",
    )
    .await;
    let right = profile(&cluster, HANTAI, "home", clerk(HANTAI, "wang"));
    let (code, out, err) = run(
        &["window", "list", "--profile", right.to_str().unwrap()],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
}

#[tokio::test]
async fn a_command_repeated_with_its_request_id_is_applied_once() {
    let cluster = Cluster::start().await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let dir = cluster.root();
    let id = uuid::Uuid::new_v4().to_string();
    let mut apply = vec![
        "window".to_owned(),
        "apply".to_owned(),
        "--item=GT-0001".to_owned(),
        format!("--home={YANTA}"),
        "--delivery=mail-applicant".to_owned(),
        "--person-name=张三".to_owned(),
        format!("--person-id={PERSON_ID}"),
        "--phone=13812345678".to_owned(),
        "--address=汉中市汉台区".to_owned(),
        format!("--request-id={id}"),
    ];
    for (kind, data) in gt_materials() {
        let path = dir.join(format!("{kind}.pdf"));
        std::fs::write(&path, data).unwrap();
        apply.push(format!("--material={kind}={}", path.display()));
    }
    let apply: Vec<&str> = apply.iter().map(String::as_str).collect();
    let first = json(&clerk, &apply).await;
    let again = json(&clerk, &apply).await;
    assert_eq!(first["case_no"], again["case_no"], "{first:#}\n{again:#}");
    assert_eq!(first, again, "the original reply");
    let list = json(&clerk, &["window", "list"]).await;
    assert_eq!(list["cases"].as_array().map(Vec::len), Some(1), "{list:#}");

    // Without the flag, each invocation is a request of its own.
    let fresh: Vec<&str> = apply
        .iter()
        .copied()
        .filter(|a| !a.starts_with("--request-id"))
        .collect();
    let other = json(&clerk, &fresh).await;
    assert_ne!(other["case_no"], first["case_no"]);

    // A flag that is not a UUID is a usage error.
    let mut bad = fresh.clone();
    bad.push("--request-id=42");
    bad.push("--profile");
    let profile_path = clerk.display().to_string();
    bad.push(&profile_path);
    exits(2, &bad, &[], "expected a UUID").await;
}

#[tokio::test]
async fn window_accept_records_a_commitment_from_the_command_line() {
    let cluster = Cluster::start().await;
    let clerk_profile = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let mut window = cluster.window(HANTAI).await;
    let materials: Vec<_> = gt_materials()
        .into_iter()
        .filter(|(k, _)| *k != "premises-proof")
        .collect();
    let case = apply(
        &mut window,
        "GT-0001",
        YANTA,
        "mail-applicant",
        person(),
        &materials,
    )
    .await
    .expect("apply");
    let case_no = case.case_no.as_str();
    window
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            request_id: String::new(),
            case_no: case_no.into(),
            method: "face".into(),
        })
        .await
        .expect("verify identity");
    let p = clerk_profile.as_path();
    let accept = |days: &'static str| {
        vec![
            "window",
            "accept",
            case_no,
            "--commitment-signer",
            "张三",
            "--commitment-kinds",
            "premises-proof",
            "--commitment-days",
            days,
            "--profile",
            p.to_str().unwrap(),
        ]
    };
    exits(1, &accept("0"), &[], "deadline today").await;
    exits(1, &accept("-1"), &[], "deadline in the past").await;
    let mut partial = accept("3");
    partial.truncate(5);
    partial.extend(["--profile", p.to_str().unwrap()]);
    exits(2, &partial, &[], "--commitment-kinds").await;
    let receipt = json(
        &clerk_profile,
        &[
            "window",
            "accept",
            case_no,
            "--commitment-signer",
            "张三",
            "--commitment-kinds",
            "premises-proof",
            "--commitment-days",
            "3",
        ],
    )
    .await;
    assert_eq!(receipt["case"]["state"], "QUEUED");
    assert_every_field(
        &receipt["case"]["commitment"],
        ".tongban.common.v1.Commitment",
    );
    assert_eq!(receipt["case"]["commitment"]["kinds"][0], "premises-proof");
}

#[tokio::test]
async fn the_intake_receipt_prints_china_standard_time_like_the_notices() {
    let cluster = Cluster::start().await;
    let clerk_profile = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
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
        .verify_identity(tongban_proto::window::v1::VerifyIdentityRequest {
            request_id: String::new(),
            case_no: case.case_no.clone(),
            method: "face".into(),
        })
        .await
        .expect("verify identity");
    let p = clerk_profile.to_str().unwrap();
    let (code, out, err) = run(&["window", "accept", &case.case_no, "--profile", p], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let line = out
        .lines()
        .find(|l| l.starts_with("accepted at"))
        .unwrap_or_else(|| panic!("{out}"));
    let shown = line["accepted at".len()..].trim();
    let (stamp, zone) = shown.rsplit_once(' ').unwrap();
    assert_eq!(zone, "CST", "{line}");
    let at = time::PrimitiveDateTime::parse(
        stamp,
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]"),
    )
    .unwrap_or_else(|e| panic!("{line}: {e}"))
    .assume_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap());
    let off = (time::OffsetDateTime::now_utc() - at).abs();
    assert!(off < time::Duration::minutes(5), "{line} is now in CST");

    // Status: the application time and every history line in CST; --json
    // keeps the node's RFC 3339 UTC, so scripts see what they always saw.
    // (JSON first: the handoff's receipt may add an entry in between.)
    let doc = json(&clerk_profile, &["window", "status", &case.case_no]).await;
    let (code, out, err) = run(&["window", "status", &case.case_no, "--profile", p], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    let created = doc["created_at"].as_str().unwrap();
    assert!(created.ends_with('Z'), "{created}");
    assert!(
        out.contains(&format!("applied         {}", cst(created))),
        "{out}"
    );
    let history = doc["history"].as_array().unwrap();
    assert!(history.len() >= 3, "{doc:#}");
    for h in history {
        let at = h["at"].as_str().unwrap();
        assert!(at.ends_with('Z'), "{at}");
        let seq = h["seq"].as_str().expect("a uint64 is a JSON string");
        let line = format!("{seq:>5}  {}  {HANTAI}", cst(at));
        assert!(out.contains(&line), "{line:?} in {out}");
    }
    assert!(!out.contains("Z "), "no UTC time left for people: {out}");
}

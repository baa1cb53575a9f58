//! The console's remaining flows in a real browser (the helpers are
//! `console`'s): a company applicant through hand-out at the window with
//! both mail legs, the overdue pages, each role's pages only, and a node
//! that goes away while the clerk submits (the same request id sent again
//! makes exactly one case and one acceptance), then a parked handoff
//! retried. Screenshots go to `target/console-screenshots/`.

use fantoccini::{Client, Locator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tongban_proto::window::v1::CaseRef;

use crate::console::{
    Started, apply_complete, browser, click, console, fetch, fill, origin, profile, shot,
    status_without_session, until_text,
};
use crate::support::*;

/// Another valid resident ID: not the applicant's.
const OTHER_ID: &str = "110105198001010016";

/// The clerk's console of 汉台区 (and the reviewer's of 雁塔区 when asked
/// for) and a browser signed in to the clerk's.
struct Desk {
    _consoles: Vec<Started>,
    _driver: Started,
    b: Client,
    /// The clerk's console origin.
    clerk: String,
    /// The reviewer's login URL (empty without one).
    reviewer_url: String,
}

impl Desk {
    async fn open(cluster: &Cluster, with_reviewer: bool) -> Self {
        let clerk = profile(cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
        let (clerk_console, clerk_url) = console(&clerk).await;
        let mut consoles = vec![clerk_console];
        let mut reviewer_url = String::new();
        if with_reviewer {
            let reviewer = profile(cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
            let (started, url) = console(&reviewer).await;
            consoles.push(started);
            reviewer_url = url;
        }
        let (driver, b) = browser().await;
        b.goto(&clerk_url).await.unwrap();
        until_text(&b, "h1", "本窗口案件", false).await;
        Self {
            _consoles: consoles,
            _driver: driver,
            b,
            clerk: origin(&clerk_url),
            reviewer_url,
        }
    }
}

/// Writes the test's material files: `(dir, [id-card, form, lease], result)`.
fn files() -> (tempfile::TempDir, [String; 3], String) {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let materials = [
        file("id-card.jpg", b"scan of the id card"),
        file("application-form.pdf", b"signed application form"),
        file("lease.pdf", b"lease contract"),
    ];
    let result = file("licence.pdf", b"the licence document");
    (dir, materials, result)
}

async fn choose_files(b: &Client, files: &[String; 3]) {
    let set = "fieldset[data-materials-for='GT-0001']";
    for (kind, path) in ["id-card", "application-form", "premises-proof"]
        .iter()
        .zip(files)
    {
        b.find(Locator::Css(&format!(
            "{set} input[name='material:{kind}']"
        )))
        .await
        .unwrap()
        .send_keys(path)
        .await
        .unwrap();
    }
}

async fn value(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn text(b: &Client, css: &str) -> String {
    b.find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The status code of `GET path` with the browser's session cookie.
async fn status_with_session(b: &Client, origin: &str, path: &str) -> u16 {
    let cookie = b
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .filter(|c| c.name().starts_with("tongban_console"))
        .map(|c| format!("{}={}", c.name(), c.value()))
        .collect::<Vec<_>>()
        .join("; ");
    assert!(!cookie.is_empty(), "the browser holds a session");
    let addr = origin.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).await.unwrap();
    reply
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn window_case(cluster: &Cluster, case_no: &str) -> tongban_proto::common::v1::CaseView {
    cluster
        .window(HANTAI)
        .await
        .get_case(CaseRef {
            case_no: case_no.to_owned(),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_applicant_mail_legs_and_hand_out_in_a_browser() {
    let cluster = Cluster::start().await;
    let (_dir, materials, result) = files();
    let desk = Desk::open(&cluster, true).await;
    let (b, clerk_origin) = (desk.b.clone(), desk.clerk.clone());
    let (reviewer_url, reviewer_origin) = (desk.reviewer_url.clone(), origin(&desk.reviewer_url));

    // A company: its credit code's check character is checked as typed.
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    click(&b, "input[name=applicant][value=company]").await;
    assert!(
        !b.find(Locator::Css("fieldset[data-applicant=person]"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "only the company's fields are shown"
    );
    fill(&b, "input[name=company_name]", "商洛秦岭茶业有限公司").await;
    fill(&b, "#credit_code", "91350100M000100Y44").await;
    let problem = until_text(&b, "#credit_code-error", "校验码", false).await;
    assert!(problem.ends_with('3'), "{problem}");
    fill(&b, "input[name=legal_rep]", "李四").await;
    fill(&b, "#legal_rep_id", PERSON_ID).await;
    fill(&b, "input[name=phone]", "09142345678").await;
    fill(&b, "input[name=address]", "陕西省商洛市商州区北新街8号").await;
    b.find(Locator::Css(
        "select[name=delivery] option[value=mail-window]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    choose_files(&b, &materials).await;
    shot(&b, "30-clerk-company-wrong-code").await;
    click(&b, "#apply button[type=submit]").await;
    assert!(
        b.current_url().await.unwrap().path().ends_with("/new"),
        "the script keeps the form"
    );
    // Past the script, the console refuses it at the field and stores nothing.
    b.execute("document.getElementById('apply').submit()", vec![])
        .await
        .unwrap();
    until_text(&b, "#credit_code-error", "统一社会信用代码", false).await;
    assert_eq!(
        value(&b, "input[name=company_name]").await,
        "商洛秦岭茶业有限公司"
    );
    assert_eq!(value(&b, "#credit_code").await, "91350100M000100Y44");
    shot(&b, "31-clerk-company-refused").await;
    let stored = cluster
        .window(HANTAI)
        .await
        .list_cases(tongban_proto::window::v1::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert!(stored.is_empty(), "nothing stored: {stored:?}");

    fill(&b, "#credit_code", CREDIT_CODE).await;
    assert_eq!(text(&b, "#credit_code-error").await, "");
    choose_files(&b, &materials).await;
    click(&b, "#apply button[type=submit]").await;
    until_text(&b, "#state", "CORRECTION_AT_WINDOW", false).await;
    let facts = text(&b, "table.facts").await;
    assert!(facts.contains("商洛秦岭茶业有限公司"), "{facts}");
    assert!(facts.contains("91350100M000100Y43"), "{facts}");
    // The legal representative, whose ID the hand-out checks, is on the
    // case too (masked, as on the receipt).
    assert!(facts.contains("法定代表人 李四"), "{facts}");
    assert!(!facts.contains(PERSON_ID), "{facts}");
    let case_no = text(&b, "#case-no").await;
    click(&b, "#verify button[type=submit]").await;
    until_text(&b, "#state", "READY_AT_WINDOW", false).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "body", "受理回执", false).await;

    // The paper originals go home by post: the waybill's check digit is
    // checked as typed; the leg is on the case.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    fill(&b, "#waybill", "EA473124828CN").await;
    until_text(&b, "#waybill-error", "校验位", false).await;
    shot(&b, "32-clerk-waybill-wrong").await;
    // Past the script, the node refuses it, worded in Chinese from its
    // reason code, shown in the form as typed.
    b.execute("document.getElementById('mail-send').submit()", vec![])
        .await
        .unwrap();
    let refused = until_text(&b, "#mail-send .error", "校验码", false).await;
    assert!(refused.contains("运单号 EA473124828CN"), "{refused}");
    assert!(!refused.contains("check"), "{refused}");
    assert_eq!(value(&b, "#waybill").await, "EA473124828CN");
    assert!(
        b.find(Locator::Css("#mail")).await.is_err(),
        "no leg stored"
    );
    fill(&b, "#waybill", "EA473124829CN").await;
    assert_eq!(text(&b, "#waybill-error").await, "");
    click(&b, "#mail-send button[type=submit]").await;
    until_text(&b, "#mail", "EA473124829CN", false).await;
    assert!(
        b.find(Locator::Css("#mail-send")).await.is_err(),
        "sent once"
    );
    shot(&b, "33-clerk-paper-mailed").await;

    // Home: accept, the originals arrive, approve, mail the result to the
    // window, and record its delivery.
    b.goto(&reviewer_url).await.unwrap();
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "#state", "UNDER_REVIEW", false).await;
    click(&b, "#paper button[type=submit]").await;
    until_text(&b, "table.facts", "纸质原件", false).await;
    b.find(Locator::Css("#approve input[name=result]"))
        .await
        .unwrap()
        .send_keys(&result)
        .await
        .unwrap();
    fill(&b, "#approve input[name=licence_no]", "610113600012345").await;
    click(&b, "#approve button[type=submit]").await;
    until_text(&b, "#state", "APPROVED", false).await;
    // The result document is on the reviewer's case page like a material,
    // and reads back as uploaded.
    let row = until_text(&b, "tr[data-kind=result]", "licence.pdf", false).await;
    assert!(row.contains("查看") && row.contains("下载"), "{row}");
    let doc = fetch(&b, &format!("/case/{case_no}/material/result")).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.bytes, b"the licence document");
    assert_eq!(doc.content_type, "application/pdf");
    fill(&b, "#mail-send input[name=waybill]", "EA123456785CN").await;
    click(&b, "#mail-send button[type=submit]").await;
    until_text(&b, "#state", "RESULT_IN_TRANSIT", false).await;
    b.find(Locator::Css(
        "#mail-event select[name=waybill] option[value=EA123456785CN]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    b.find(Locator::Css(
        "#mail-event select[name=status] option[value=delivered]",
    ))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    fill(&b, "#mail-event input[name=note]", "汉台区政务服务中心签收").await;
    shot(&b, "34-reviewer-mail-event").await;
    click(&b, "#mail-event button[type=submit]").await;
    until_text(&b, "#state", "READY_FOR_PICKUP", false).await;
    until_text(&b, "#mail", "汉台区政务服务中心签收", false).await;
    shot(&b, "35-reviewer-result-delivered").await;

    // The window hands it out: not to someone else, to the legal
    // representative.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "READY_FOR_PICKUP", true).await;
    // The clerk prints the result document for the applicant (出件): the
    // window got it with the decision.
    let row = until_text(&b, "tr[data-kind=result]", "licence.pdf", false).await;
    assert!(row.contains("下载"), "{row}");
    let doc = fetch(&b, &format!("/case/{case_no}/material/result?download=1")).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.bytes, b"the licence document");
    assert!(
        doc.disposition.starts_with("attachment;"),
        "{}",
        doc.disposition
    );
    shot(&b, "35a-clerk-result-document").await;
    // The same page in English, then back to Chinese (the choice is kept).
    b.goto(&format!("{clerk_origin}/case/{case_no}?lang=en"))
        .await
        .unwrap();
    until_text(&b, "#handout", "Hand out the result", false).await;
    until_text(&b, "#mail", "the receiving window", false).await;
    shot(&b, "35b-clerk-ready-for-pickup-en").await;
    b.goto(&format!("{clerk_origin}/case/{case_no}?lang=zh-CN"))
        .await
        .unwrap();
    until_text(&b, "#handout", "出件", false).await;
    fill(&b, "#recipient_id", OTHER_ID).await;
    click(&b, "#handout button[type=submit]").await;
    let refused = until_text(&b, "#handout .error", "不是申请人", false).await;
    assert!(!refused.contains("not the applicant"), "{refused}");
    assert_eq!(
        value(&b, "#recipient_id").await,
        OTHER_ID,
        "the refused form keeps what was typed"
    );
    shot(&b, "36-clerk-handout-refused").await;
    fill(&b, "#recipient_id", PERSON_ID).await;
    click(&b, "#handout button[type=submit]").await;
    until_text(&b, "#state", "CLOSED", false).await;
    shot(&b, "37-clerk-handed-out").await;
    let closed = window_case(&cluster, &case_no).await;
    assert_eq!(closed.state, "CLOSED");
    assert_eq!(closed.mail.len(), 2, "both legs: {:?}", closed.mail);
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overdue_pages_and_each_role_only_its_own_pages_in_a_browser() {
    let clock = TestClock::default();
    let cluster = Cluster::on_clock(&clock).await;
    let (_dir, materials, _) = files();
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let auditor = profile(
        &cluster,
        HANTAI,
        "auditor",
        tongban_pki::Principal::Auditor {
            county: None,
            name: "zhao".into(),
        },
    );
    let ((_c, clerk_url), (_r, reviewer_url), (_a, auditor_url)) =
        tokio::join!(console(&clerk), console(&reviewer), console(&auditor));
    let (clerk_origin, reviewer_origin, auditor_origin) = (
        origin(&clerk_url),
        origin(&reviewer_url),
        origin(&auditor_url),
    );
    let (_driver, b) = browser().await;

    // Without a session every address is refused alike, existing or not.
    for path in ["/overdue", "/trace", "/no-such-page"] {
        assert_eq!(
            status_without_session(&clerk_origin, path).await,
            401,
            "{path}"
        );
    }
    b.goto(&clerk_url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    let case_no = apply_complete(&b, &clerk_origin, &materials).await;
    // With one, another role's page does not exist.
    assert_eq!(
        status_with_session(&b, &clerk_origin, "/trace?case=x").await,
        404
    );
    assert_eq!(
        status_with_session(&b, &clerk_origin, "/overdue").await,
        200
    );
    let reviewer_only = format!("/case/{case_no}/paper-received");
    assert_eq!(
        status_with_session(&b, &clerk_origin, &reviewer_only).await,
        404
    );
    assert_eq!(
        status_without_session(&clerk_origin, &reviewer_only).await,
        401
    );
    b.goto(&format!("{clerk_origin}/trace?case={case_no}"))
        .await
        .unwrap();
    until_text(&b, "h1", "没有这个页面", false).await;
    shot(&b, "40-clerk-asks-auditor-page").await;

    b.goto(&reviewer_url).await.unwrap();
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "#state", "UNDER_REVIEW", false).await;
    assert_eq!(status_with_session(&b, &reviewer_origin, "/new").await, 404);
    assert_eq!(
        status_with_session(&b, &reviewer_origin, "/trace").await,
        404
    );
    b.goto(&auditor_url).await.unwrap();
    until_text(&b, "h1", "案件追溯", false).await;
    assert_eq!(
        status_with_session(&b, &auditor_origin, &format!("/case/{case_no}")).await,
        404
    );
    assert_eq!(
        status_with_session(&b, &auditor_origin, "/overdue").await,
        404
    );

    // Nothing overdue yet; then the promised days pass.
    b.goto(&format!("{reviewer_origin}/overdue")).await.unwrap();
    until_text(&b, "main", "没有案件", false).await;
    clock.advance_days(60);
    b.goto(&format!("{reviewer_origin}/overdue")).await.unwrap();
    let row = format!("tr[data-case='{case_no}']");
    let overdue = until_text(&b, &row, "已超期", true).await;
    assert!(overdue.contains("个工作日"), "{overdue}");
    shot(&b, "41-reviewer-overdue").await;
    b.goto(&format!("{clerk_origin}/overdue")).await.unwrap();
    until_text(&b, &row, "已超期", true).await;
    shot(&b, "42-clerk-overdue").await;
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "table.facts", "已超期", false).await;
    // The home authority's acceptance is printable at the window too.
    let href = b
        .find(Locator::Css("#acceptance-link"))
        .await
        .unwrap()
        .attr("href")
        .await
        .unwrap()
        .expect("a link");
    b.goto(&format!("{clerk_origin}{href}")).await.unwrap();
    let notice = until_text(&b, "body", "受理通知书", false).await;
    assert!(notice.contains(&case_no), "{notice}");
    shot(&b, "43-clerk-acceptance-notice").await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_node_keeps_the_form_and_the_same_request_id_then_a_parked_handoff_is_retried() {
    let mut cluster = Cluster::start_with(Options {
        extra: "[delivery]\ninitial_backoff_ms = 10\nmax_backoff_ms = 20\nmax_attempts = 3\n"
            .into(),
        ..Options::default()
    })
    .await;
    let (_dir, materials, _) = files();
    let desk = Desk::open(&cluster, false).await;
    let (b, clerk_origin) = (desk.b.clone(), desk.clerk.clone());
    // The home county is down all along: the handoff will be parked.
    cluster.stop(YANTA).await;

    // The clerk's own node goes away while she submits the application.
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    fill(&b, "input[name=person_name]", "王五").await;
    fill(&b, "#person_id", PERSON_ID).await;
    fill(&b, "input[name=phone]", "13812345678").await;
    fill(&b, "input[name=address]", "陕西省汉中市汉台区北关街3号").await;
    choose_files(&b, &materials).await;
    let request_id = value(&b, "#apply input[name=request_id]").await;
    cluster.stop(HANTAI).await;
    click(&b, "#apply button[type=submit]").await;
    until_text(&b, "#error", "连接中断", false).await;
    until_text(&b, "#lost", "请求编号不变", false).await;
    assert_eq!(value(&b, "input[name=person_name]").await, "王五");
    assert_eq!(
        value(&b, "input[name=address]").await,
        "陕西省汉中市汉台区北关街3号"
    );
    assert_eq!(
        value(&b, "#apply input[name=request_id]").await,
        request_id,
        "the same request id to send again"
    );
    shot(&b, "50-clerk-apply-lost-connection").await;
    cluster.restart(HANTAI).await;
    choose_files(&b, &materials).await;
    click(&b, "#apply button[type=submit]").await;
    until_text(&b, "#state", "CORRECTION_AT_WINDOW", false).await;
    let case_no = text(&b, "#case-no").await;
    click(&b, "#verify button[type=submit]").await;
    until_text(&b, "#state", "READY_AT_WINDOW", false).await;

    // Again at acceptance: the page says so and offers the same form.
    cluster.stop(HANTAI).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "#error", "连接中断", false).await;
    let resent_id = value(&b, "#resend input[name=request_id]").await;
    assert!(!resent_id.is_empty());
    shot(&b, "51-clerk-accept-lost-connection").await;
    cluster.restart(HANTAI).await;
    click(&b, "#resend button[type=submit]").await;
    until_text(&b, "body", "受理回执", false).await;
    let cases = cluster
        .window(HANTAI)
        .await
        .list_cases(tongban_proto::window::v1::ListCasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cases;
    assert_eq!(cases.len(), 1, "exactly one case: {cases:?}");
    let case = window_case(&cluster, &case_no).await;
    let accepted = case
        .history
        .iter()
        .filter(|e| e.event == "case.accepted")
        .count();
    assert_eq!(accepted, 1, "exactly one acceptance");

    // The handoff to the county that is down runs out of attempts and is
    // parked; once it is back, the clerk sends it again.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#retry", "重新发送", true).await;
    until_text(&b, "table.facts", "gave up after 3 attempts", false).await;
    shot(&b, "52-clerk-handoff-parked").await;
    cluster.restart(YANTA).await;
    click(&b, "#retry button[type=submit]").await;
    until_text(&b, "#state", "HANDED_OFF", true).await;
    assert!(b.find(Locator::Css("#retry")).await.is_err());
    shot(&b, "53-clerk-handoff-retried").await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commitment_lets_the_window_accept_and_the_material_follows_in_a_browser() {
    let cluster = Cluster::start().await;
    let (_dir, materials, _) = files();
    let desk = Desk::open(&cluster, true).await;
    let (b, clerk_origin) = (desk.b.clone(), desk.clerk.clone());
    let (reviewer_url, reviewer_origin) = (desk.reviewer_url.clone(), origin(&desk.reviewer_url));

    // The premises proof (waivable in the directory) is missing.
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    fill(&b, "input[name=person_name]", "张三").await;
    fill(&b, "#person_id", PERSON_ID).await;
    fill(&b, "input[name=phone]", "13812345678").await;
    fill(&b, "input[name=address]", "陕西省汉中市汉台区北关街1号").await;
    let set = "fieldset[data-materials-for='GT-0001']";
    for (kind, path) in [
        ("id-card", &materials[0]),
        ("application-form", &materials[1]),
    ] {
        b.find(Locator::Css(&format!(
            "{set} input[name='material:{kind}']"
        )))
        .await
        .unwrap()
        .send_keys(path)
        .await
        .unwrap();
    }
    click(&b, "#apply button[type=submit]").await;
    until_text(&b, "#missing", "premises-proof", false).await;
    let case_no = text(&b, "#case-no").await;
    assert!(
        b.find(Locator::Css("#accept")).await.is_err(),
        "not acceptable while it is missing"
    );
    click(&b, "#verify button[type=submit]").await;
    until_text(&b, "#commit", "告知承诺", false).await;
    fill(&b, "#commit input[name=signer]", "张三").await;
    fill(&b, "#commit input[name=days]", "3").await;
    shot(&b, "60-clerk-commitment-form").await;
    click(&b, "#commit button[type=submit]").await;
    until_text(&b, "#state", "READY_AT_WINDOW", false).await;
    until_text(&b, "#commitment", "未补齐", false).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "body", "受理回执", false).await;

    // The home authority sees the commitment outstanding.
    b.goto(&reviewer_url).await.unwrap();
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    until_text(&b, "#commitment", "未补齐", false).await;
    assert!(
        b.find(Locator::Css("#supply")).await.is_err(),
        "the window supplies"
    );

    // The window supplies it; both sides see the commitment fulfilled.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    b.find(Locator::Css(
        "#supply input[name='material:premises-proof']",
    ))
    .await
    .unwrap()
    .send_keys(&materials[2])
    .await
    .unwrap();
    shot(&b, "61-clerk-supply").await;
    click(&b, "#supply button[type=submit]").await;
    until_text(&b, "#commitment", "已于", false).await;
    until_text(&b, "table.materials", "lease.pdf", false).await;
    assert!(
        b.find(Locator::Css("#supply")).await.is_err(),
        "nothing left to supply"
    );
    shot(&b, "62-clerk-supplied").await;
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "table.materials", "lease.pdf", true).await;
    let box_text = until_text(&b, "#commitment", "已于", true).await;
    assert!(!box_text.contains("未补齐"), "{box_text}");
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_video_consultation_is_recorded_before_acceptance_in_a_browser() {
    let cluster = Cluster::start().await;
    let dir = tempfile::tempdir().unwrap();
    let desk = Desk::open(&cluster, false).await;
    let (b, clerk_origin) = (desk.b.clone(), desk.clerk.clone());

    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    b.find(Locator::Css("#route option[value='WH-0001/610113']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    // Only the item's delivery modes can be chosen; its terms are shown.
    let mail_applicant = b
        .find(Locator::Css("#delivery option[value=mail-applicant]"))
        .await
        .unwrap();
    assert_eq!(
        mail_applicant.prop("disabled").await.unwrap().as_deref(),
        Some("true")
    );
    let terms = text(&b, "fieldset[data-materials-for='WH-0001'] .item-terms").await;
    assert!(terms.contains("视频会商"), "{terms}");
    fill(&b, "input[name=person_name]", "张三").await;
    fill(&b, "#person_id", PERSON_ID).await;
    fill(&b, "input[name=phone]", "13812345678").await;
    fill(&b, "input[name=address]", "陕西省汉中市汉台区北关街1号").await;
    shot(&b, "63a-clerk-form-video-item").await;
    for kind in [
        "application-form",
        "safety-assessment",
        "storage-proof",
        "legal-rep-id",
    ] {
        let path = dir.path().join(format!("{kind}.pdf"));
        std::fs::write(&path, kind.as_bytes()).unwrap();
        b.find(Locator::Css(&format!(
            "fieldset[data-materials-for='WH-0001'] input[name='material:{kind}']"
        )))
        .await
        .unwrap()
        .send_keys(path.to_str().unwrap())
        .await
        .unwrap();
    }
    click(&b, "#apply button[type=submit]").await;
    until_text(&b, "#state", "CORRECTION_AT_WINDOW", false).await;
    click(&b, "#verify button[type=submit]").await;
    until_text(&b, "#state", "READY_AT_WINDOW", false).await;
    // Uploads go by the script, with a progress bar: an upload the node
    // refuses (no file chosen) is answered in place, the page's address
    // unchanged.
    assert!(b.find(Locator::Css("#attach progress")).await.is_ok());
    let case_page = b.current_url().await.unwrap();
    click(&b, "#attach button[type=submit]").await;
    until_text(&b, "#attach .error", "", false).await;
    assert_eq!(b.current_url().await.unwrap(), case_page);
    // Accepting first is refused, with a reason code the page words in
    // Chinese.
    click(&b, "#accept button[type=submit]").await;
    let refused = until_text(&b, "#accept .error", "视频会商", false).await;
    assert!(!refused.contains("video consultation"), "{refused}");

    // An hour ago, China Standard Time, as the clerk's browser shows it.
    let an_hour_ago = time::OffsetDateTime::now_utc() + time::Duration::hours(7);
    let at = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}",
        an_hour_ago.year(),
        u8::from(an_hour_ago.month()),
        an_hour_ago.day(),
        an_hour_ago.hour(),
        an_hour_ago.minute()
    );
    b.execute(
        "document.querySelector('#consult input[name=at]').value = arguments[0]",
        vec![serde_json::json!(at)],
    )
    .await
    .unwrap();
    fill(&b, "#consult input[name=reviewer]", "雁塔区 李审批").await;
    fill(
        &b,
        "#consult textarea[name=outcome]",
        "材料齐全，同意窗口受理",
    )
    .await;
    shot(&b, "63-clerk-video-consultation").await;
    click(&b, "#consult button[type=submit]").await;
    until_text(&b, "#consultation", "同意窗口受理", false).await;
    assert!(
        b.find(Locator::Css("#consult")).await.is_err(),
        "recorded once"
    );
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "body", "受理回执", false).await;
    b.close().await.unwrap();
}

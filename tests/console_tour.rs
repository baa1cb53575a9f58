//! The console's tour in a real browser (the harness is in
//! [`crate::console`]): a clerk's empty list and one-time sign-in token, a
//! wrong check character refused by the script and then by the node (shown
//! once, at its field), an application and its correction notice, the
//! reviewer's decision, the notices, and the auditor's trace and evidence
//! bundle (verified again by `tongban audit verify-bundle`); a screenshot of
//! every page.

use fantoccini::Locator;
use tokio::process::Command;
use tongban_pki::Principal;

use crate::console::{
    attach_in_browser, browser, click, console, fetch, fill, origin, post_without_script, profile,
    shot, status_for_host, status_without_session, until_text,
};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_tongban");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clerk_reviewer_and_auditor_in_a_browser() {
    let cluster = Cluster::start().await;
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let id_card = file("id-card.jpg", &b"scan of the id card".repeat(100));
    let form = file("application-form.pdf", b"signed application form");
    let lease = file("lease.pdf", b"lease contract");
    let result = file("licence.pdf", b"the licence document");

    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let auditor = profile(
        &cluster,
        HANTAI,
        "auditor",
        Principal::Auditor {
            county: None,
            name: "zhao".into(),
        },
    );
    let ((_c, clerk_url), (_r, reviewer_url), (_a, auditor_url)) =
        tokio::join!(console(&clerk), console(&reviewer), console(&auditor));
    let (_driver, b) = browser().await;

    // No session: every page is refused; the token opens one session once.
    let clerk_origin = origin(&clerk_url);
    assert_eq!(status_without_session(&clerk_origin, "/").await, 401);
    assert_eq!(status_without_session(&clerk_origin, "/new").await, 401);
    assert_eq!(
        status_without_session(&clerk_origin, "/case/610702-20261201-1").await,
        401
    );
    assert_eq!(
        status_without_session(&clerk_origin, "/assets/console.css").await,
        200
    );
    // A page under another name (DNS rebinding) cannot even log in.
    let clerk_addr = clerk_origin.trim_start_matches("http://");
    let token_path = clerk_url.trim_start_matches(&clerk_origin);
    let rebound = format!("evil.example:{}", clerk_addr.rsplit(':').next().unwrap());
    assert_eq!(status_for_host(clerk_addr, &rebound, token_path).await, 403);
    b.goto(&format!("{clerk_origin}/")).await.unwrap();
    until_text(&b, "h1", "未登录", false).await;
    shot(&b, "00-refused").await;
    b.goto(&clerk_url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    assert_eq!(
        status_without_session(&clerk_origin, token_path).await,
        403,
        "the token is good once"
    );
    shot(&b, "01-clerk-empty-list").await;

    // A wrong check character is shown at its field, and nothing is stored.
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    fill(&b, "input[name=person_name]", "张三").await;
    // The upload's progress bar shows only once something uploads.
    assert!(
        !b.find(Locator::Css("#apply progress"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap(),
        "no empty progress bar before an upload"
    );
    fill(&b, "#person_id", "110105194912310021").await;
    let problem = until_text(&b, "#person_id-error", "校验码", false).await;
    assert!(problem.contains('X'), "{problem}");
    fill(&b, "input[name=phone]", "13812345678").await;
    fill(&b, "input[name=address]", "陕西省汉中市汉台区北关街1号").await;
    shot(&b, "02-clerk-form-wrong-id").await;
    click(&b, "#apply button[type=submit]").await;
    assert!(
        b.current_url().await.unwrap().path().ends_with("/new"),
        "the script keeps the form"
    );
    // Past the script (form.submit() skips it), the node checks again: its
    // refusal is worded in Chinese at the field from its reason code, and
    // the form comes back as typed.
    b.execute("document.getElementById('apply').submit()", vec![])
        .await
        .unwrap();
    // Said once, at the field; the top says only that the form was not
    // accepted and links there (a plain anchor, for a browser without the
    // script too).
    let top = until_text(&b, "#error", "申请未被受理", false).await;
    assert_eq!(top, "申请未被受理：请修改公民身份号码后重新提交。");
    let at_field = until_text(&b, "#person_id-error", "应为 X", false).await;
    assert!(at_field.contains("填的是 1"), "{at_field}");
    let shown = b
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !shown.contains("check character") && !shown.contains("person id"),
        "no English of the node's on the Chinese page: {shown}"
    );
    assert_eq!(shown.matches("校验码不对").count(), 1, "once: {shown}");
    click(&b, "#error a[href='#person_id-error']").await;
    assert_eq!(
        b.current_url().await.unwrap().fragment(),
        Some("person_id-error")
    );
    // A browser without the script gets the same page from the console:
    // the words once, at the field, and the link to it.
    let request_id = uuid::Uuid::new_v4().to_string();
    let (status, page) = post_without_script(
        &b,
        &clerk_origin,
        "/new",
        &[
            ("request_id", &request_id),
            ("route", &format!("GT-0001/{YANTA}")),
            ("delivery", "mail-applicant"),
            ("applicant", "person"),
            ("person_name", "张三"),
            ("person_id", "110105194912310021"),
            ("phone", "13812345678"),
            ("address", "陕西省汉中市汉台区北关街1号"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{page}");
    assert_eq!(page.matches("校验码不对").count(), 1, "{page}");
    assert!(
        page.contains("<a href=\"#person_id-error\">公民身份号码</a>"),
        "{page}"
    );
    let kept = b
        .find(Locator::Css("input[name=person_name]"))
        .await
        .unwrap();
    assert_eq!(kept.prop("value").await.unwrap().as_deref(), Some("张三"));
    let kept = b.find(Locator::Css("input[name=address]")).await.unwrap();
    assert_eq!(
        kept.prop("value").await.unwrap().as_deref(),
        Some("陕西省汉中市汉台区北关街1号")
    );
    shot(&b, "02b-clerk-form-refused").await;
    b.goto(&format!("{clerk_origin}/")).await.unwrap();
    until_text(&b, "#no-cases", "没有案件", false).await;

    // The form leaving a material out: the correction notice names it.
    b.goto(&format!("{clerk_origin}/new")).await.unwrap();
    fill(&b, "input[name=person_name]", "张三").await;
    fill(&b, "#person_id", PERSON_ID).await;
    fill(&b, "input[name=phone]", "13812345678").await;
    fill(&b, "input[name=address]", "陕西省汉中市汉台区北关街1号").await;
    assert_eq!(
        b.find(Locator::Css("#person_id-error"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        ""
    );
    let set = "fieldset[data-materials-for='GT-0001']";
    b.find(Locator::Css(&format!(
        "{set} input[name='material:id-card']"
    )))
    .await
    .unwrap()
    .send_keys(&id_card)
    .await
    .unwrap();
    b.find(Locator::Css(&format!(
        "{set} input[name='material:application-form']"
    )))
    .await
    .unwrap()
    .send_keys(&form)
    .await
    .unwrap();
    shot(&b, "03-clerk-form").await;
    click(&b, "#apply button[type=submit]").await;
    until_text(&b, "#missing", "premises-proof", false).await;
    let case_no = b
        .find(Locator::Css("#case-no"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    until_text(&b, "#state", "CORRECTION_AT_WINDOW", false).await;
    shot(&b, "04-clerk-case-missing").await;
    b.goto(&format!("{clerk_origin}/case/{case_no}/notice/correction"))
        .await
        .unwrap();
    until_text(&b, "body", "补正材料通知书", false).await;
    shot(&b, "05-correction-notice").await;

    // Attach it, verify identity, accept: the intake receipt.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    attach_in_browser(&b, "premises-proof", &lease, "lease.pdf").await;
    assert!(b.find(Locator::Css("#missing")).await.is_err());
    click(&b, "#verify button[type=submit]").await;
    until_text(&b, "#state", "READY_AT_WINDOW", false).await;
    shot(&b, "06-clerk-case-ready").await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "body", "受理回执", false).await;
    assert!(b.source().await.unwrap().contains(&case_no));
    shot(&b, "07-intake-receipt").await;
    // The receipt is the notice page `tongban notice` writes; the console
    // puts a way back to the case above it (the clerk lands here).
    click(&b, "#console-bar #back").await;
    until_text(&b, "#case-no", &case_no, false).await;
    assert!(
        b.current_url()
            .await
            .unwrap()
            .path()
            .ends_with(&format!("/case/{case_no}")),
        "the receipt's bar leads back to the case"
    );
    // The identity check is named as the clerk chose it, not by its code.
    let facts = until_text(&b, "table.facts", "身份证读卡器", false).await;
    assert!(!facts.contains("id-card-reader"), "{facts}");

    // The reviewer accepts and approves with a result file.
    b.goto(&reviewer_url).await.unwrap();
    until_text(&b, "main", &case_no, true).await;
    shot(&b, "08-reviewer-inbox").await;
    b.goto(&format!("{}/case/{case_no}", origin(&reviewer_url)))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "#state", "UNDER_REVIEW", false).await;
    shot(&b, "09-reviewer-case").await;
    b.find(Locator::Css("#approve input[name=result]"))
        .await
        .unwrap()
        .send_keys(&result)
        .await
        .unwrap();
    fill(&b, "#approve input[name=licence_no]", "610113600012345").await;
    click(&b, "#approve button[type=submit]").await;
    // The node refuses before the paper originals are in, with a reason
    // code: the page words it in Chinese, naming the step to take.
    let refused = until_text(&b, "#error", "纸质原件", false).await;
    assert!(refused.starts_with("节点拒绝："), "{refused}");
    assert!(refused.contains("纸质原件已收到"), "{refused}");
    assert!(!refused.contains("paper originals"), "{refused}");
    shot(&b, "10-reviewer-refused").await;
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
    shot(&b, "11-reviewer-approved").await;

    // The clerk sees APPROVED once the home node's report arrives.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "APPROVED", true).await;
    // Decided: the clock stopped, so no count of days left to a due date,
    // but the days that were left then, as the node froze them.
    let mut window = cluster.window(HANTAI).await;
    let approved = window_state(&mut window, &case_no, "APPROVED").await;
    let frozen = format!("已决定（剩余 {} 个工作日时）", approved.working_days_left);
    let facts = until_text(&b, "table.facts", &frozen, false).await;
    assert!(!facts.contains("剩 "), "{facts}");
    // The history in Chinese, worded from each entry's payload; the
    // node's English details only on the English page.
    let history = until_text(&b, "table.history", "窗口受理", false).await;
    for words in [
        "收件：",
        "申请人身份核验：身份证读卡器",
        "收到雁塔区（610113）签名的接收回执",
    ] {
        assert!(history.contains(words), "{words:?} in {history}");
    }
    for english in ["applied for", "accepted at the window", "receipt from"] {
        assert!(!history.contains(english), "{english:?} in {history}");
    }
    shot(&b, "12-clerk-approved").await;
    click(&b, "#lang-switch").await;
    let history = until_text(&b, "table.history", "accepted at the window", false).await;
    assert!(!history.contains("窗口受理"), "{history}");
    shot(&b, "12b-clerk-approved-en").await;
    click(&b, "#lang-switch").await;
    until_text(&b, "table.history", "窗口受理", false).await;
    b.goto(&format!("{clerk_origin}/?state=APPROVED"))
        .await
        .unwrap();
    until_text(&b, "table.cases", &case_no, false).await;
    shot(&b, "13-clerk-list-approved").await;

    // The auditor traces it across both nodes: the `audit trace --html` page.
    b.goto(&auditor_url).await.unwrap();
    fill(&b, "#find input[name=case]", &case_no).await;
    shot(&b, "14-auditor-find").await;
    click(&b, "#find button[type=submit]").await;
    let page = until_text(&b, "body", "汉台区", false).await;
    assert!(page.contains("雁塔区"), "{page}");
    assert!(page.contains("VERIFIED"), "{page}");
    shot(&b, "15-auditor-trace").await;

    // And downloads the evidence bundle: the file `audit export` writes,
    // which `audit verify-bundle` checks offline.
    b.goto(&format!("{}/", origin(&auditor_url))).await.unwrap();
    until_text(&b, "#find", "下载证据包", false).await;
    let bundle = fetch(&b, &format!("/bundle?case={case_no}")).await;
    assert_eq!(bundle.status, 200);
    assert_eq!(bundle.content_type, "application/json");
    assert_eq!(
        bundle.disposition,
        format!("attachment; filename=\"evidence-{case_no}.json\"")
    );
    let path = std::env::temp_dir().join(format!("evidence-{case_no}-{}.json", std::process::id()));
    std::fs::write(&path, &bundle.bytes).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&bundle.bytes).expect("a JSON bundle");
    assert_eq!(doc["case_no"], case_no.as_str());
    assert_eq!(doc["nodes"].as_array().map(|n| n.len()), Some(2));
    let checked = Command::new(BIN)
        .args([
            "audit",
            "verify-bundle",
            path.to_str().unwrap(),
            "--profile",
        ])
        .arg(&auditor)
        .env_remove("TONGBAN_PROFILE")
        .output()
        .await
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let said = String::from_utf8_lossy(&checked.stdout);
    assert!(
        checked.status.success() && said.contains("VERIFIED"),
        "{said}"
    );

    // Back on the trace, the console's bar above `audit trace --html`'s page
    // signs out like every other page.
    b.goto(&format!("{}/trace?case={case_no}", origin(&auditor_url)))
        .await
        .unwrap();
    until_text(&b, "body", "VERIFIED", false).await;
    click(&b, "#console-bar #logout").await;
    until_text(&b, "body", "已退出登录", false).await;

    b.close().await.unwrap();
}

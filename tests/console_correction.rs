//! A correction round trip and a denial in a real browser (the harness is
//! in [`crate::console`]): the reviewer asks for one material, the clerk
//! answers with a new file, the reviewer decides, and both pages show the
//! frozen days left.

use crate::console::{
    apply_complete, attach_in_browser, browser, click, console, fill, origin, profile, shot,
    until_text,
};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn correction_round_trip_and_denial_in_a_browser() {
    let cluster = Cluster::start().await;
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let materials = [
        file("id-card.jpg", b"scan of the id card"),
        file("application-form.pdf", b"signed application form"),
        file("old-lease.pdf", b"an expired lease"),
    ];
    let new_lease = file("new-lease.pdf", b"a lease that runs until 2030");
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let ((_c, clerk_url), (_r, reviewer_url)) = tokio::join!(console(&clerk), console(&reviewer));
    let (clerk_origin, reviewer_origin) = (origin(&clerk_url), origin(&reviewer_url));
    let (_driver, b) = browser().await;
    b.goto(&clerk_url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    let case_no = apply_complete(&b, &clerk_origin, &materials).await;

    // The reviewer accepts and asks for a new lease, all at once.
    b.goto(&reviewer_url).await.unwrap();
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    click(&b, "#accept button[type=submit]").await;
    until_text(&b, "#state", "UNDER_REVIEW", false).await;
    click(&b, "#correct input[name=need][value=premises-proof]").await;
    fill(
        &b,
        "#correct input[name='reason:premises-proof']",
        "租赁合同已过期",
    )
    .await;
    fill(&b, "#correct input[name=deadline]", "5").await;
    shot(&b, "20-reviewer-correction-form").await;
    click(&b, "#correct button[type=submit]").await;
    until_text(&b, "#state", "CORRECTION_REQUESTED", false).await;

    // The clerk sees what is asked, attaches it and resubmits.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "CORRECTION_REQUESTED", true).await;
    until_text(&b, "main", "租赁合同已过期", false).await;
    shot(&b, "21-clerk-correction-requested").await;
    attach_in_browser(&b, "premises-proof", &new_lease, "new-lease.pdf").await;
    click(&b, "#resubmit button[type=submit]").await;
    until_text(&b, "main", "已于", false).await;
    shot(&b, "22-clerk-resubmitted").await;

    // Back under review at home, the reviewer denies with a reason.
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "UNDER_REVIEW", true).await;
    until_text(&b, "table.materials", "new-lease.pdf", false).await;
    fill(&b, "#deny textarea[name=reason]", "经营场所不符合规划用途").await;
    click(&b, "#deny button[type=submit]").await;
    until_text(&b, "#state", "DENIED", false).await;
    // The time limit says how many working days were left at the decision
    // (the node's count, frozen then).
    let mut review = cluster.review(YANTA).await;
    let denied = home_state(&mut review, &case_no, "DENIED").await;
    assert!(!denied.clock_running && !denied.due_date.is_empty());
    let frozen = format!("已决定（剩余 {} 个工作日时）", denied.working_days_left);
    until_text(&b, "table.facts", &frozen, false).await;
    // What goes in the post now is the written denial, and the form says so.
    until_text(&b, "#mail-send h2", "邮寄不予许可决定书", false).await;
    shot(&b, "23-reviewer-denied").await;
    b.goto(&format!("{reviewer_origin}/case/{case_no}/notice/denial"))
        .await
        .unwrap();
    until_text(&b, "body", "经营场所不符合规划用途", false).await;
    shot(&b, "24-denial-notice").await;

    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "DENIED", true).await;
    // The window mirrors the count the home froze.
    until_text(&b, "table.facts", &frozen, false).await;
    shot(&b, "25-clerk-denied").await;

    // A handoff whose window did not state the application time: the
    // reviewer's pages say the time shown is its arrival here, and only
    // for that case.
    let unstated = "610702-20261125-31";
    let materials = gt_materials();
    let env = crate::handoff::fresh_envelope(unstated, &materials);
    let sent = handoff_as(
        &cluster,
        YANTA,
        HANTAI,
        crate::handoff::frames(env, &materials),
    )
    .await;
    assert!(
        matches!(
            sent.outcome,
            Some(tongban_proto::federation::v1::handoff_result::Outcome::Receipt(_))
        ),
        "{sent:?}"
    );
    assert!(
        home_state(&mut review, unstated, "HANDED_OFF")
            .await
            .created_at_is_arrival
    );
    b.goto(&format!("{reviewer_origin}/case/{unstated}"))
        .await
        .unwrap();
    until_text(&b, "#applied", "此为移交到达本节点的时间", false).await;
    shot(&b, "26-reviewer-arrival-time").await;
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    let stated = until_text(&b, "#applied", "", false).await;
    assert!(!stated.contains("到达"), "the window stated it: {stated}");
    b.goto(&format!("{reviewer_origin}/?lang=en"))
        .await
        .unwrap();
    until_text(
        &b,
        &format!("tr[data-case='{unstated}']"),
        "(arrival)",
        false,
    )
    .await;
    b.goto(&format!("{reviewer_origin}/case/{unstated}"))
        .await
        .unwrap();
    until_text(&b, "#applied", "when the handoff arrived here", false).await;
    b.close().await.unwrap();
}

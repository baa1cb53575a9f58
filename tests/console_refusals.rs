//! Refusals that reach the clerk other than at a form, in a real browser:
//! the home authority's refusal of a handoff's application time, shown on
//! the case page as that county's report (worded from its code, its English
//! as the node's record), and a case number the node does not have.
//! Screenshots go to `target/console-screenshots/`.

use crate::console::{browser, console, origin, profile, shot, until_text};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_home_s_refusal_and_an_unknown_case_number_are_worded_for_the_clerk() {
    let mut cluster = Cluster::start().await;
    // 汉台's clock runs two hours ahead: 雁塔 refuses the application time.
    hantai_two_hours_ahead(&mut cluster).await;
    let mut window = cluster.window(HANTAI).await;
    let case = accepted_case(&mut window, YANTA).await;
    window_case_until(&mut window, &case.case_no, "refused", |c| {
        c.history.iter().any(|e| e.event == "handoff.refused")
    })
    .await;

    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let (_console, url) = console(&clerk).await;
    let (_driver, b) = browser().await;
    b.goto(&url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    let clerk_origin = origin(&url);
    b.goto(&format!("{clerk_origin}/case/{}", case.case_no))
        .await
        .unwrap();
    let note = until_text(&b, "#note", "节点说明", false).await;
    // Who refused, then its reason and what to do, then its English as the
    // node's record.
    assert!(
        note.starts_with(
            "雁塔区（610113）拒收本次移交，已暂停。雁塔区（610113）节点说明：申请时间"
        ),
        "{note}"
    );
    assert!(
        note.contains(
            "（允许误差 300 秒）：请本窗口节点的管理员校准系统时钟；移交所载的申请时间不变"
        ),
        "{note}"
    );
    assert!(
        note.contains("节点记录：refused by 610113 (INVALID): applied_at"),
        "{note}"
    );
    until_text(&b, "#retry", "重新发送", false).await;
    shot(&b, "70-clerk-handoff-refused-by-home").await;

    // A case number with one digit wrong: the page names what was not
    // found, where, and how the number reads.
    b.goto(&format!("{clerk_origin}/case/610702-20261125-999"))
        .await
        .unwrap();
    let body = until_text(&b, "body", "没有编号为 610702-20261125-999 的案件", false).await;
    assert!(body.contains("本节点（610702）"), "{body}");
    assert!(!body.contains("no case"), "no English: {body}");
    shot(&b, "71-clerk-case-not-found").await;
    b.close().await.unwrap();
}

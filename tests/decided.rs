//! A decided case's promise as `tongban review status` and `window status`
//! print it: the working days that were left at the decision, frozen
//! (`decided with N working days left; clock stopped`), a week later and
//! past the old due date, on both nodes; a case decided while paused for a
//! correction has no due date but the same line; one decided late says by
//! how many days (`decided N working days late`). And the node's own
//! count: frozen on both nodes, over gRPC.

use tongban_proto::review::v1::DenyRequest;

use crate::cli::run;
use crate::review::{approve, case_ref, request_correction, set_today, under_review};
use crate::support::*;

#[tokio::test]
async fn status_says_how_many_working_days_were_left_at_the_decision() {
    let clock = TestClock::default();
    set_today(&clock, time::macros::date!(2026 - 11 - 02));
    let cluster = Cluster::on_clock(&clock).await;
    // Accepted on Monday 2 November with 5 working days: due Monday 9
    // November. Approved on Wednesday 4 November with 3 left; the other
    // case paused for a correction that day with 3 left, then denied.
    let (mut window, mut review, approved) = under_review(&cluster, "mail-applicant").await;
    let (_, _, denied) = under_review(&cluster, "mail-applicant").await;
    set_today(&clock, time::macros::date!(2026 - 11 - 04));
    review.paper_received(case_ref(&approved)).await.unwrap();
    approve(&mut review, &approved).await.expect("approve");
    request_correction(&mut review, &denied).await;
    set_today(&clock, time::macros::date!(2026 - 11 - 05));
    review
        .deny(DenyRequest {
            case_no: denied.clone(),
            reason: "经营场所位于住宅楼内".into(),
            request_id: String::new(),
        })
        .await
        .expect("deny");
    window_state(&mut window, &approved, "APPROVED").await;
    window_state(&mut window, &denied, "DENIED").await;

    // A week on: a running clock would say 3 days overdue by now.
    set_today(&clock, time::macros::date!(2026 - 11 - 12));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let status = |side: &'static str, who: &std::path::Path, case_no: &str| {
        let (who, case_no) = (who.to_str().unwrap().to_owned(), case_no.to_owned());
        async move {
            let (code, out, err) = run(&[side, "status", &case_no, "--profile", &who], &[]).await;
            assert_eq!(code, 0, "{side} status {case_no}: {out}{err}");
            let due: Vec<String> = out
                .lines()
                .filter(|l| l.starts_with("due "))
                .map(str::to_owned)
                .collect();
            assert!(!out.contains("overdue"), "{side} {case_no}: {out}");
            due
        }
    };
    assert_eq!(
        status("review", &reviewer, &approved).await,
        ["due             2026-11-09 (decided with 3 working days left; clock stopped)"]
    );
    // The window holds the home's due date and count, not a count of its
    // own.
    assert_eq!(
        status("window", &clerk, &approved).await,
        ["due             2026-11-09 (decided with 3 working days left; clock stopped)"]
    );
    // Paused when decided: the due date went with the pause, the count
    // stayed.
    let paused_then = ["due             decided with 3 working days left; clock stopped"];
    assert_eq!(status("review", &reviewer, &denied).await, paused_then);
    assert_eq!(status("window", &clerk, &denied).await, paused_then);
}

#[tokio::test]
async fn the_days_left_stop_at_the_decision_on_both_nodes() {
    let clock = TestClock::default();
    set_today(&clock, time::macros::date!(2026 - 11 - 02));
    let cluster = Cluster::on_clock(&clock).await;
    // Accepted on Monday 2 November with 5 working days: due Monday 9
    // November.
    let (mut window, mut review, approved) = under_review(&cluster, "mail-applicant").await;
    let (_, _, denied) = under_review(&cluster, "mail-applicant").await;
    // Approved on Wednesday 4 November with 5, 6 and 9 November left; the
    // other case is asked for a correction that day (paused with 3 left)
    // and denied while paused.
    set_today(&clock, time::macros::date!(2026 - 11 - 04));
    review.paper_received(case_ref(&approved)).await.unwrap();
    let decided = approve(&mut review, &approved).await.expect("approve");
    assert!(!decided.clock_running);
    assert_eq!(decided.working_days_left, 3);
    let asked = request_correction(&mut review, &denied).await;
    assert_eq!(asked.working_days_left, 3);
    set_today(&clock, time::macros::date!(2026 - 11 - 05));
    let refused = review
        .deny(DenyRequest {
            case_no: denied.clone(),
            reason: "经营场所位于住宅楼内".into(),
            request_id: String::new(),
        })
        .await
        .expect("deny")
        .into_inner();
    assert_eq!(refused.working_days_left, 3, "paused, then stopped");
    window_state(&mut window, &approved, "APPROVED").await;
    window_state(&mut window, &denied, "DENIED").await;

    // A week on, past the due date: the promise ended with the decision,
    // so nothing counts down (a running clock would say -3 by now).
    set_today(&clock, time::macros::date!(2026 - 11 - 12));
    for case_no in [&approved, &denied] {
        let home = home_case_until(&mut review, case_no, "decided", |_| true).await;
        let at_window = window_case_until(&mut window, case_no, "decided", |_| true).await;
        for (side, case) in [("home", &home), ("window", &at_window)] {
            assert!(!case.clock_running, "{side} {case_no}");
            assert_eq!(case.working_days_left, 3, "{side} {case_no}");
        }
        // What was promised stays after the decision, the same on both
        // nodes; the case denied while paused had none then.
        let due = if case_no == &approved {
            "2026-11-09"
        } else {
            ""
        };
        assert_eq!(home.due_date, due, "home {case_no}");
        assert_eq!(at_window.due_date, due, "window {case_no}");
    }
}

#[tokio::test]
async fn a_case_decided_late_says_by_how_many_days() {
    let clock = TestClock::default();
    set_today(&clock, time::macros::date!(2026 - 11 - 02));
    let cluster = Cluster::on_clock(&clock).await;
    // Accepted on Monday 2 November with 5 working days: due Monday 9
    // November; approved on Wednesday 11 November, 2 working days late.
    let (mut window, mut review, approved) = under_review(&cluster, "mail-applicant").await;
    set_today(&clock, time::macros::date!(2026 - 11 - 11));
    review.paper_received(case_ref(&approved)).await.unwrap();
    let decided = approve(&mut review, &approved).await.expect("approve");
    assert_eq!(decided.working_days_left, -2);
    window_case_until(&mut window, &approved, "decided late", |c| {
        c.state == "APPROVED" && c.working_days_left == -2
    })
    .await;
    let late = ["due             2026-11-09 (decided 2 working days late; clock stopped)"];
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    for (side, who) in [("review", &reviewer), ("window", &clerk)] {
        let who = who.to_str().unwrap();
        let (code, out, err) = run(&[side, "status", &approved, "--profile", who], &[]).await;
        assert_eq!(code, 0, "{side} status: {out}{err}");
        let due: Vec<&str> = out.lines().filter(|l| l.starts_with("due ")).collect();
        assert_eq!(due, late, "{side}: {out}");
    }
}

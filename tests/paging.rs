//! Paging of the case lists over the real API: `ListCases` and `Inbox`
//! walk every case exactly once in their order through `next_page_token`,
//! a filter holds across pages, and a token the node did not give is
//! refused naming `page_token`; `tongban window list --page-token` pages
//! the same list from the command line.

use tongban_proto::review::v1::InboxRequest;
use tongban_proto::window::v1::ListCasesRequest;

use crate::cli::{exits, json, run};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn case_lists_page_through_every_case_once() {
    let cluster = Cluster::start().await;
    let mut window = cluster.window(HANTAI).await;
    let mut made = Vec::new();
    for _ in 0..5 {
        made.push(accepted_case(&mut window, YANTA).await.case_no);
    }

    // The window's list, newest first, two at a time.
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let reply = window
            .list_cases(ListCasesRequest {
                state: String::new(),
                limit: 2,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(reply.cases.len() <= 2);
        seen.extend(reply.cases.into_iter().map(|c| c.case_no));
        pages += 1;
        if reply.next_page_token.is_empty() {
            break;
        }
        token = reply.next_page_token;
    }
    let newest_first: Vec<_> = made.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    // A filter that matches nothing is one empty, final page.
    let none = window
        .list_cases(ListCasesRequest {
            state: "CLOSED".into(),
            limit: 2,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(none.cases.is_empty() && none.next_page_token.is_empty());

    refused_coded(
        window
            .list_cases(ListCasesRequest {
                state: String::new(),
                limit: 2,
                page_token: "not a token\u{7}".into(),
            })
            .await,
        tonic::Code::InvalidArgument,
        "page_token",
        "page.token-unknown",
        "page_token",
    );

    // The home county's inbox, oldest first, once every handoff is in.
    let mut review = cluster.review(YANTA).await;
    eventually("all five cases in the inbox", || {
        let mut review = review.clone();
        async move {
            let all = review
                .inbox(InboxRequest::default())
                .await
                .ok()?
                .into_inner();
            (all.cases.len() == 5).then_some(())
        }
    })
    .await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let reply = review
            .inbox(InboxRequest {
                limit: 3,
                page_token: token.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        seen.extend(reply.cases.into_iter().map(|c| c.case_no));
        if reply.next_page_token.is_empty() {
            break;
        }
        token = reply.next_page_token;
    }
    assert_eq!(seen, made, "oldest first, each once");
}

#[tokio::test]
async fn window_list_pages_with_page_token() {
    let cluster = Cluster::start().await;
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let mut window = cluster.window(HANTAI).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(accepted_case(&mut window, YANTA).await.case_no);
    }
    for case_no in &made {
        window_state(&mut window, case_no, "HANDED_OFF").await;
    }
    let newest_first: Vec<&str> = made.iter().rev().map(String::as_str).collect();
    let p = clerk.to_str().unwrap();

    pages_by_token(&clerk, ["window", "list"], &newest_first).await;

    let (code, out, err) = run(
        &[
            "window",
            "list",
            "--state",
            "handed_off",
            "--limit",
            "1",
            "--profile",
            p,
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("more cases: tongban window list --state HANDED_OFF --limit 1 --page-token "),
        "the filter is kept: {out}"
    );
}

#[tokio::test]
async fn review_inbox_pages_with_page_token() {
    let cluster = Cluster::start().await;
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let mut window = cluster.window(HANTAI).await;
    let mut review = cluster.review(YANTA).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(accepted_case(&mut window, YANTA).await.case_no);
    }
    for case_no in &made {
        home_state(&mut review, case_no, "HANDED_OFF").await;
    }
    let p = reviewer.to_str().unwrap();

    let made: Vec<&str> = made.iter().map(String::as_str).collect();
    pages_by_token(&reviewer, ["review", "inbox"], &made).await;

    // The default page holds all three: no next page.
    let (code, out, err) = run(&["review", "inbox", "--profile", p], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(made.iter().all(|c| out.contains(c)), "{out}");
    assert!(!out.contains("more cases"), "{out}");
}

/// Pages `cmd` (`window list`, `review inbox`) two at a time through the
/// three cases `want`, in their order: in `--json` by `next_page_token`,
/// for people by the command the table ends with; and a token the node
/// did not give is refused, naming the flag's field.
async fn pages_by_token(profile: &std::path::Path, cmd: [&str; 2], want: &[&str]) {
    let p = profile.to_str().unwrap();
    let [group, verb] = cmd;
    let first = json(profile, &[group, verb, "--limit", "2"]).await;
    let token = first["next_page_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    assert!(!token.is_empty(), "more follow: {first:#}");
    let second = json(
        profile,
        &[group, verb, "--limit", "2", "--page-token", &token],
    )
    .await;
    assert_eq!(second["next_page_token"], "", "the last page: {second:#}");
    let seen: Vec<&str> = [&first, &second]
        .iter()
        .flat_map(|page| page["cases"].as_array().unwrap())
        .map(|c| c["case_no"].as_str().unwrap())
        .collect();
    assert_eq!(seen, want, "every case once, in order");

    let (code, out, err) = run(&[group, verb, "--limit", "2", "--profile", p], &[]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(want[0]) && out.contains(want[1]), "{out}");
    assert!(!out.contains(want[2]), "two a page: {out}");
    assert!(
        out.trim_end().ends_with(&format!(
            "more cases: tongban {group} {verb} --limit 2 --page-token {token}"
        )),
        "the table ends with the next page's command: {out}"
    );
    let (code, out, err) = run(
        &[
            group,
            verb,
            "--limit",
            "2",
            "--page-token",
            &token,
            "--profile",
            p,
        ],
        &[],
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(want[2]) && !out.contains(want[0]), "{out}");
    assert!(!out.contains("more cases"), "the last page: {out}");

    exits(
        1,
        &[group, verb, "--page-token", "not a token", "--profile", p],
        &[],
        "page_token",
    )
    .await;
}

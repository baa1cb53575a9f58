//! How the courier delivers: only to the named partner, in bounded
//! attempts, backing off per partner, parking only what cannot be sent.

use tongban_proto::review::v1::InboxRequest;

use crate::support::*;

/// Rewrites `code`'s directory (stopping and restarting its node) so that
/// the endpoint of `partner` is `endpoint`.
async fn point_partner(cluster: &mut Cluster, code: &str, partner: &str, endpoint: &str) {
    cluster.stop(code).await;
    let path = cluster.root.path().join("federation.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut changed = String::new();
    let mut in_partner = false;
    for line in text.lines() {
        if line.starts_with("code = ") {
            in_partner = line == format!("code = \"{partner}\"");
        }
        if in_partner && line.starts_with("endpoint = ") {
            changed.push_str(&format!("endpoint = \"{endpoint}\"\n"));
            in_partner = false;
            continue;
        }
        changed.push_str(line);
        changed.push('\n');
    }
    assert_ne!(changed, text, "{partner} is in the directory");
    std::fs::write(&path, changed).unwrap();
    cluster.restart(code).await;
}

async fn inbox_case_nos(cluster: &Cluster, code: &str) -> Vec<String> {
    let mut review = cluster.review(code).await;
    let mut nos: Vec<String> = review
        .inbox(InboxRequest {})
        .await
        .expect("inbox")
        .into_inner()
        .cases
        .into_iter()
        .map(|c| c.case_no)
        .collect();
    nos.sort();
    nos
}

#[tokio::test]
async fn a_case_goes_only_to_the_node_of_its_destination() {
    let mut cluster = Cluster::start().await;
    // 雁塔's directory says 汉台 is at 商州's address, where 商州's real node
    // answers with its valid federation certificate.
    let shangzhou = format!("https://{}", cluster.addr(SHANGZHOU));
    point_partner(&mut cluster, YANTA, HANTAI, &shangzhou).await;
    let mut window = cluster.window(YANTA).await;
    let to_hantai = accepted_case(&mut window, HANTAI).await;
    let to_shangzhou = accepted_case(&mut window, SHANGZHOU).await;

    // 商州 is served in the same run...
    window_state(&mut window, &to_shangzhou.case_no, "HANDED_OFF").await;
    // ...while the case for 汉台 waits, noting whom it found instead.
    let waiting = window_case_until(
        &mut window,
        &to_hantai.case_no,
        "a wrong-partner note",
        |c| {
            c.note
                .contains(&format!("expected spiffe://{TD}/county/{HANTAI}/node"))
        },
    )
    .await;
    assert_eq!(waiting.state, "QUEUED");
    assert!(
        waiting.note.contains(&format!(
            "server certificate is spiffe://{TD}/county/{SHANGZHOU}/node"
        )),
        "{}",
        waiting.note
    );
    assert!(waiting.note.contains("next try in"), "{}", waiting.note);
    // The impostor holds only the case that was for it.
    assert_eq!(
        inbox_case_nos(&cluster, SHANGZHOU).await,
        std::slice::from_ref(&to_shangzhou.case_no)
    );
    assert!(inbox_case_nos(&cluster, HANTAI).await.is_empty());

    // A wrong endpoint is an operator's fix, not a refusal: once the
    // directory is right, the case goes through.
    let hantai = format!("https://{}", cluster.addr(HANTAI));
    point_partner(&mut cluster, YANTA, HANTAI, &hantai).await;
    let mut window = cluster.window(YANTA).await;
    window_state(&mut window, &to_hantai.case_no, "HANDED_OFF").await;
    assert_eq!(
        inbox_case_nos(&cluster, HANTAI).await,
        std::slice::from_ref(&to_hantai.case_no)
    );
    assert_eq!(
        inbox_case_nos(&cluster, SHANGZHOU).await,
        [to_shangzhou.case_no]
    );
}

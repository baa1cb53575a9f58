//! The parts of a case page both sides have: the mail legs with their
//! forms, hand-out, retrying parked handoffs, the printable notices; and the
//! pages that are not a case's: overdue cases, another role's address, a
//! lost connection to the node.

use maud::{Markup, html};
use tongban_proto::common::v1::CaseView;

use super::*;
use crate::console::routes::Resend;

/// Carrier statuses a clerk or reviewer records, with their names.
const MAIL_STATUSES: [(&str, &str, &str); 5] = [
    ("posted", "已收寄", "posted"),
    ("in-transit", "运输中", "in transit"),
    ("delivered", "已妥投", "delivered"),
    ("returned", "已退回", "returned"),
    ("lost", "已丢失", "lost"),
];

pub(in crate::console) fn mail_status_name(status: &str) -> &str {
    MAIL_STATUSES
        .iter()
        .find(|(s, _, _)| *s == status)
        .map_or(status, |(_, zh, en)| t(zh, en))
}

pub(in crate::console) fn leg_name(leg: &str) -> &'static str {
    match leg {
        "materials" => t("纸质原件（窗口→属地）", "paper originals (window → home)"),
        "result" => t("审批结果", "the result"),
        _ => "",
    }
}

pub(super) fn leg_to(to: &str) -> &'static str {
    match to {
        "home" => t("属地审批部门", "the home authority"),
        "applicant" => t("申请人", "the applicant"),
        "window" => t("受理窗口", "the receiving window"),
        _ => "",
    }
}

/// The case's mail legs, each with its carrier events and, while it is on
/// its way, the form to record the next one.
pub(super) fn mail_legs(c: &Console, k: &CaseView, problem: Option<&Problem<'_>>) -> Markup {
    // Each side records its own legs' events; the window also a result's
    // arrival there.
    let ours = |leg: &str, to: &str| match c.role {
        Role::Clerk => leg == "materials" || to == "window",
        _ => leg == "result",
    };
    html! {
        @if !k.mail.is_empty() {
            h2 { (t("寄递", "Mail")) }
            table.mail.stack #mail {
                thead { tr {
                    th { (t("寄件", "Leg")) } th { (t("寄往", "To")) } th { (t("承运", "Carrier")) }
                    th { (t("运单号", "Waybill")) } th { (t("状态", "Status")) } th { (t("经过", "Events")) }
                } }
                tbody { @for m in &k.mail {
                    tr data-waybill=(m.waybill) {
                        td data-label=(t("寄件", "Leg")) { (leg_name(&m.leg)) }
                        td data-label=(t("寄往", "To")) { (leg_to(&m.to)) }
                        td data-label=(t("承运", "Carrier")) { (m.carrier) }
                        td data-label=(t("运单号", "Waybill")) { code { (m.waybill) } }
                        td.mail-status data-label=(t("状态", "Status")) { (mail_status_name(&m.status)) }
                        td data-label=(t("经过", "Events")) { ul.events { @for e in &m.events {
                            li { span.nowrap { (local_time(&e.at)) } " " (mail_status_name(&e.status))
                                @if !e.note.is_empty() { " · " (e.note) } }
                        } } }
                    }
                } }
            }
            @let open: Vec<_> = k.mail.iter().filter(|m| ours(&m.leg, &m.to) && matches!(m.status.as_str(), "posted" | "in-transit")).collect();
            @if !open.is_empty() {
                form.action #mail-event method="post" action={ "/case/" (k.case_no) "/mail-event" } {
                    (request_id())
                    (problem_at(problem, "mail-event"))
                    h2 { (t("记录邮件状态", "Record a carrier event")) }
                    label { (t("运单号", "Waybill"))
                        select name="waybill" { @for m in &open { option value=(m.waybill) { (m.waybill) " · " (leg_name(&m.leg)) } } }
                    }
                    label { (t("状态", "Status"))
                        select name="status" { @for (s, zh, en) in &MAIL_STATUSES[1..] { option value=(s) { (t(zh, en)) } } }
                    }
                    label { (t("备注", "Note")) input name="note" autocomplete="off" value=(kept(problem, "mail-event", "note")); }
                    button type="submit" { (t("记录", "Record")) }
                }
            }
        }
    }
}

/// The form that records a leg as sent: carrier and waybill, its check
/// digit checked as it is typed (UPU S10) and again by the node.
pub(super) fn mail_send(
    k: &CaseView,
    leg: &str,
    title: &str,
    problem: Option<&Problem<'_>>,
) -> Markup {
    html! {
        form.action #mail-send method="post" action={ "/case/" (k.case_no) "/mail" } {
            (request_id())
            (problem_at(problem, "mail"))
            h2 { (title) }
            input type="hidden" name="leg" value=(leg);
            @let carrier = kept(problem, "mail", "carrier");
            label { (t("承运", "Carrier")) input name="carrier" value=(if carrier.is_empty() { "EMS" } else { carrier }) required autocomplete="off"; }
            label { (t("运单号", "Waybill"))
                input name="waybill" #waybill required maxlength="13" data-waybill autocomplete="off" spellcheck="false"
                    value=(kept(problem, "mail", "waybill")) placeholder="EA473124829CN";
                span.field-error #waybill-error aria-live="polite" {}
            }
            button type="submit" { (t("登记寄出", "Record as sent")) }
        }
    }
}

/// Hand-out at this side: the collector's ID, checked as it is typed and
/// by the node against the applicant's (or the legal representative's).
pub(super) fn handout(k: &CaseView, problem: Option<&Problem<'_>>) -> Markup {
    html! {
        form.action #handout method="post" action={ "/case/" (k.case_no) "/handout" } {
            (request_id())
            (problem_at(problem, "handout"))
            h2 { (t("出件（当面交付结果）", "Hand out the result")) }
            p.dim { (t("核对领取人身份证件：须为申请人本人，或企业的法定代表人。",
                       "Check the collector's ID card: the applicant, or the company's legal representative.")) }
            label { (t("领取人公民身份号码", "Collector's resident ID number"))
                input name="recipient_id" #recipient_id required maxlength="18" data-resident-id autocomplete="off" spellcheck="false"
                    value=(kept(problem, "handout", "recipient_id"));
                span.field-error #recipient_id-error aria-live="polite" {}
            }
            button type="submit" { (t("核验并交付", "Check and hand out")) }
        }
    }
}

/// Whether a handoff of the case is parked (a park after the last retry,
/// which queues every parked handoff of the case again): then the retry
/// form is offered. A handoff the partner refused is parked too, and is
/// sent again the same way once the cause (a clock, say) is fixed.
pub(super) fn parked(k: &CaseView) -> bool {
    k.history
        .iter()
        .rev()
        .find(|e| {
            matches!(
                e.event.as_str(),
                "handoff.parked" | "handoff.refused" | "handoff.retried"
            )
        })
        .is_some_and(|e| e.event != "handoff.retried")
}

/// Sending parked handoffs again, once the cause is fixed.
pub(super) fn retry(k: &CaseView, problem: Option<&Problem<'_>>) -> Markup {
    html! {
        @if parked(k) {
            form.action.warning #retry method="post" action={ "/case/" (k.case_no) "/retry" } {
                (request_id())
                (problem_at(problem, "retry"))
                h2 { (t("移交已暂停", "A handoff is parked")) }
                p { (t("向对方节点的移交已停止自动重试（原因见上方“说明”）。排除原因后，点“重新发送”。",
                       "Sending to the partner node stopped retrying by itself (the reason is in the note above). Once the cause is fixed, send it again.")) }
                button type="submit" { (t("重新发送", "Send again")) }
            }
        }
    }
}

/// Links to each printable notice the case's history allows.
pub(super) fn notices(k: &CaseView) -> Markup {
    let no = &k.case_no;
    let was = |state: &str| k.state == state || k.history.iter().any(|e| e.state == state);
    // At the window a correction notice lists missing materials; a case
    // that waits only for its identity check has none to list.
    let correcting = match k.state.as_str() {
        "CORRECTION_AT_WINDOW" => !k.missing.is_empty(),
        "CORRECTION_REQUESTED" => true,
        _ => false,
    };
    let accepted = k.history.iter().any(|e| e.event == "case.accepted");
    let reviewed = was("UNDER_REVIEW");
    let denied = was("DENIED");
    html! {
        // No "Print:" with nothing after it (a case before acceptance with
        // nothing missing).
        @if accepted || correcting || reviewed || denied {
        p.notices #notices { (t("打印：", "Print: "))
            @if accepted {
                a #receipt-link href={ "/case/" (no) "/notice/intake-receipt" } target="_blank" { (t("受理回执", "intake receipt")) } " "
            }
            @if correcting {
                a #correction-link href={ "/case/" (no) "/notice/correction" } target="_blank" { (t("补正材料通知书", "correction notice")) } " "
            }
            @if reviewed {
                a #acceptance-link href={ "/case/" (no) "/notice/acceptance" } target="_blank" { (t("受理通知书", "acceptance notice")) } " "
            }
            @if denied {
                a #denial-link href={ "/case/" (no) "/notice/denial" } target="_blank" { (t("不予许可决定书", "denial decision")) }
            }
        }
        }
    }
}

/// The commitment (告知承诺) and its state; at the window, after acceptance,
/// the form that supplies what it promised.
pub(super) fn commitment(c: &Console, k: &CaseView, error: Option<&Problem<'_>>) -> Markup {
    html! {
        @if let Some(m) = &k.commitment {
            section.notice-box #commitment {
                h2 { (t("告知承诺", "Commitment")) }
                p { (m.signer) " · " (t("补齐期限 ", "due ")) (m.due_date) " · "
                    @if m.fulfilled_at.is_empty() { span.overdue { (t("未补齐", "outstanding")) } }
                    @else { (t("已于 ", "fulfilled ")) (local_time(&m.fulfilled_at)) (t(" 补齐", "")) } }
                ul { @for kind in &m.kinds { li { (material_name(k, kind)) " " code.dim { (kind) } } } }
                @let accepted = k.history.iter().any(|e| e.event == "case.accepted");
                @if c.role == Role::Clerk && accepted && m.fulfilled_at.is_empty() {
                    form.action #supply method="post" action={ "/case/" (k.case_no) "/supply" } enctype="multipart/form-data" {
                        (request_id())
                        (problem_at(error, "supply"))
                        h2 { (t("补交承诺的材料", "Supply the committed materials")) }
                        @for kind in &m.kinds {
                            label { (material_name(k, kind)) " " code.dim { (kind) } input type="file" name={ "material:" (kind) }; }
                        }
                        button type="submit" { (t("上传并送属地", "Upload and send home")) }
                    }
                }
            }
        }
    }
}

/// The cases past their promised date, most overdue first.
pub(in crate::console) fn overdue(c: &Console, cases: &[CaseView], pager: &Pager) -> Markup {
    layout(
        c,
        t("超期案件", "Overdue cases"),
        html! {
            p.dim { (t("已过承诺办结日期的案件（按工作日计，节假日按目录中的日历）。",
                       "Cases past their promised date (working days, with the directory's holiday calendar).")) }
            (cases_table(cases))
            (pager.links())
        },
    )
}

/// Another role's address, or none at all, asked with a session.
pub(in crate::console) fn not_found() -> Markup {
    bare(
        t("没有这个页面", "No such page"),
        html! {
            p { (t("此控制台按证书的角色只提供该角色的页面。", "This console has only the pages of its certificate's role.")) }
            p { a href="/" { (t("返回", "Back")) } }
        },
    )
}

/// The node did not answer a form: say so, and offer the form again as it
/// was sent, with its request id, so sending it again is safe.
pub(in crate::console) fn lost_connection(
    c: &Console,
    no: &str,
    msg: &str,
    again: &Resend,
) -> Markup {
    layout(
        c,
        t("与节点的连接中断", "Lost the connection to the node"),
        html! {
            p.error role="alert" #error { (msg) }
            (lost_page_body(again))
            p { a href={ "/case/" (no) } { (t("返回案件", "Back to the case")) } }
        },
    )
}

/// What the lost-connection page says, and the form as it was sent.
fn lost_page_body(again: &Resend) -> Markup {
    let multipart = !again.files.is_empty();
    html! {
        p { (t("控制台已用同一请求编号重试数次，节点仍未应答。这次提交可能没有送达节点，也可能已经办理。节点恢复后请点“重新提交”：请求编号不变，节点只会办理一次。",
               "The console tried again a few times with the same request id and the node did not answer. The request may not have reached the node, or it may have been done. When the node is back, send it again: the request id is the same, so the node does it once.")) }
        @let shown: Vec<_> = again.fields.iter().filter(|(n, v)| n != "request_id" && !v.is_empty()).collect();
        @if !shown.is_empty() {
            table.facts #resent-fields {
                @for (name, value) in &shown { tr { th { code { (name) } } td { (value) } } }
            }
        }
        form #resend method="post" action=(again.action) enctype=[multipart.then_some("multipart/form-data")] {
            @for (name, value) in &again.fields {
                input type="hidden" name=(name) value=(value);
            }
            @if multipart {
                p { (t("浏览器不会重发文件，请重新选择：", "Browsers do not send files again; choose them again:")) }
                @for (name, filename) in &again.files {
                    label { (filename) input type="file" name=(name) required; }
                }
            }
            button type="submit" { (t("重新提交", "Send again")) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_proto::common::v1::CaseEvent;

    fn with_events(events: &[&str]) -> CaseView {
        CaseView {
            history: events
                .iter()
                .map(|e| CaseEvent {
                    event: (*e).into(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn parked_until_retried_and_again_after_a_new_park() {
        assert!(!parked(&with_events(&["case.accepted"])));
        assert!(parked(&with_events(&["case.accepted", "handoff.parked"])));
        let retried = ["handoff.parked", "handoff.parked", "handoff.retried"];
        assert!(!parked(&with_events(&retried)));
        let again = ["handoff.parked", "handoff.retried", "handoff.parked"];
        assert!(parked(&with_events(&again)));
    }

    #[test]
    fn a_lost_form_is_offered_again_with_its_request_id() {
        let again = Resend {
            action: "/case/610702-20261201-1/deny".into(),
            fields: vec![
                ("reason".into(), "经营场所不符合规划用途".into()),
                (
                    "request_id".into(),
                    "0b6f7a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b".into(),
                ),
            ],
            files: vec![("result".into(), "licence.pdf".into())],
        };
        let page = lost_page_body(&again).into_string();
        assert!(
            page.contains(r#"action="/case/610702-20261201-1/deny""#),
            "{page}"
        );
        assert!(
            page.contains(r#"name="request_id" value="0b6f7a1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b""#),
            "{page}"
        );
        assert!(
            page.contains("经营场所不符合规划用途"),
            "the typed text is shown: {page}"
        );
        assert!(page.contains(r#"enctype="multipart/form-data""#), "{page}");
        assert!(page.contains(r#"type="file" name="result""#), "{page}");
    }

    #[test]
    fn a_refused_form_keeps_its_fields_and_only_its_own() {
        let fields = vec![("recipient_id".to_owned(), "110105198001010016".to_owned())];
        let problem = Problem {
            form: "handout",
            msg: "refused",
            fields: &fields,
        };
        let k = CaseView {
            case_no: "610702-20261201-1".into(),
            ..Default::default()
        };
        let page = handout(&k, Some(&problem)).into_string();
        assert!(page.contains("value=\"110105198001010016\""), "{page}");
        assert!(page.contains("refused"), "{page}");
        assert_eq!(kept(Some(&problem), "mail", "recipient_id"), "");
    }
}

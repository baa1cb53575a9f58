//! The home authority reviewer's pages: the inbox and the case page with
//! the decisions its state allows.

use maud::{Markup, html};
use tongban_proto::common::v1::CaseView;

use super::*;

/// The reviewer's inbox, fewest days left first.
pub(in crate::console) fn review_inbox(c: &Console, cases: &[CaseView], pager: &Pager) -> Markup {
    layout(
        c,
        t("待办案件（按剩余时限）", "Inbox (fewest days left first)"),
        html! {
            @if pager.spans_pages() {
                p.dim { (t("每页按剩余时限排序；各页按收到先后。", "Each page is sorted by days left; pages follow the order cases arrived in.")) }
            }
            (cases_table(cases))
            (pager.links())
        },
    )
}

/// The reviewer's case page with the decisions its state allows.
pub(in crate::console) fn review_case(
    c: &Console,
    k: &CaseView,
    error: Option<&Problem<'_>>,
) -> Markup {
    let no = &k.case_no;
    let state = k.state.as_str();
    layout(
        c,
        &format!("{} {no}", t("案件", "Case")),
        html! {
            (facts(k))
            (steps::retry(k, error))
            (steps::commitment(c, k, error))
            (corrections(k))
            (materials_table(k))
            @if state == "HANDED_OFF" {
                form.action #accept method="post" action={ "/case/" (no) "/accept" } {
                    (request_id())
                    (problem_at(error, "accept"))
                    h2 { (t("受理", "Accept")) }
                    p.dim { (t("受理后开始计算承诺时限。", "Accepting starts the clock of the promised days.")) }
                    button type="submit" { (t("受理", "Accept")) }
                }
            }
            @if state == "UNDER_REVIEW" && !k.paper_kinds.is_empty() && k.paper_received_at.is_empty() {
                form.action #paper method="post" action={ "/case/" (no) "/paper-received" } {
                    (request_id())
                    (problem_at(error, "paper"))
                    h2 { (t("纸质原件", "Paper originals")) }
                    p { (t("需邮寄的纸质原件：", "Paper originals to be mailed: "))
                        @for (i, kind) in k.paper_kinds.iter().enumerate() {
                            @if i > 0 { (t("、", ", ")) } (material_name(k, kind)) " " code.dim { (kind) }
                        }
                        (t("。收到后方可作出决定。", ". A decision needs them in hand.")) }
                    button type="submit" { (t("纸质原件已收到", "Paper originals received")) }
                }
            }
            @if state == "UNDER_REVIEW" {
                form.action #correct method="post" action={ "/case/" (no) "/correct" } enctype="multipart/form-data" {
                    (request_id())
                    (problem_at(error, "correct"))
                    h2 { (t("一次性告知补正", "Request a correction, all at once")) }
                    @for m in &k.required_materials {
                        div.need {
                            label { input type="checkbox" name="need" value=(m.kind)
                                checked[error.is_some_and(|p| p.form == "correct" && p.fields.iter().any(|(n, v)| n == "need" && *v == m.kind))]; " " (m.name) " " code.dim { (m.kind) } }
                            input name={ "reason:" (m.kind) } placeholder=(t("原因", "reason")) value=(kept(error, "correct", &format!("reason:{}", m.kind)));
                        }
                    }
                    label { (t("补正期限（工作日，留空用默认）", "Deadline (working days; empty for the default)")) input name="deadline" inputmode="numeric" value=(kept(error, "correct", "deadline")); }
                    button type="submit" { (t("发出补正要求", "Send the correction request")) }
                }
                form.action #approve method="post" action={ "/case/" (no) "/approve" } enctype="multipart/form-data" {
                    (request_id())
                    (problem_at(error, "approve"))
                    h2 { (t("准予许可", "Approve")) }
                    label { (t("审批结果文件", "Result document")) input type="file" name="result" required; }
                    label { (t("许可证号", "Licence no.")) input name="licence_no" value=(kept(error, "approve", "licence_no")); }
                    button type="submit" { (t("准予许可", "Approve")) }
                }
                form.action #deny method="post" action={ "/case/" (no) "/deny" } {
                    (request_id())
                    (problem_at(error, "deny"))
                    h2 { (t("不予许可", "Deny")) }
                    label { (t("理由", "Reason")) textarea name="reason" required rows="3" { (kept(error, "deny", "reason")) } }
                    button.danger type="submit" { (t("不予许可", "Deny")) }
                }
            }
            @if matches!(state, "APPROVED" | "DENIED" | "MAIL_RETURNED") && k.delivery != "collect-home" {
                (steps::mail_send(k, "result", if !k.denial_reason.is_empty() { t("邮寄不予许可决定书", "Mail the written denial") } else { t("邮寄审批结果", "Mail the result") }, error))
            }
            @if (matches!(state, "READY_FOR_PICKUP" | "DENIED") && k.delivery == "collect-home") || state == "MAIL_RETURNED" {
                (steps::handout(k, error))
            }
            (steps::notices(k))
            (steps::mail_legs(c, k, error))
            (history(k))
        },
    )
}

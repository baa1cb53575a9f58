//! The home authority reviewer's pages: the inbox and the case page with
//! the decisions its state allows.

use maud::{Markup, html};
use tongban_proto::common::v1::CaseView;

use super::*;

/// The reviewer's inbox, fewest days left first.
pub(in crate::console) fn review_inbox(c: &Console, cases: &[CaseView], pager: &Pager) -> Markup {
    layout(
        c,
        "待办案件（按剩余时限）",
        html! { (cases_table(cases)) (pager.links()) },
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
        &format!("案件 {no}"),
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
                    h2 { "受理" }
                    p.dim { "受理后开始计算承诺时限。" }
                    button type="submit" { "受理" }
                }
            }
            @if state == "UNDER_REVIEW" && !k.paper_kinds.is_empty() && k.paper_received_at.is_empty() {
                form.action #paper method="post" action={ "/case/" (no) "/paper-received" } {
                    (request_id())
                    (problem_at(error, "paper"))
                    h2 { "纸质原件" }
                    p { "需邮寄的纸质原件："
                        @for (i, kind) in k.paper_kinds.iter().enumerate() {
                            @if i > 0 { "、" } (material_name(k, kind)) " " code.dim { (kind) }
                        }
                        "。收到后方可作出决定。" }
                    button type="submit" { "纸质原件已收到" }
                }
            }
            @if state == "UNDER_REVIEW" {
                form.action #correct method="post" action={ "/case/" (no) "/correct" } enctype="multipart/form-data" {
                    (request_id())
                    (problem_at(error, "correct"))
                    h2 { "一次性告知补正" }
                    @for m in &k.required_materials {
                        div.need {
                            label { input type="checkbox" name="need" value=(m.kind)
                                checked[error.is_some_and(|p| p.form == "correct" && p.fields.iter().any(|(n, v)| n == "need" && *v == m.kind))]; " " (m.name) " " code.dim { (m.kind) } }
                            input name={ "reason:" (m.kind) } placeholder="原因" value=(kept(error, "correct", &format!("reason:{}", m.kind)));
                        }
                    }
                    label { "补正期限（工作日，留空用默认）" input name="deadline" inputmode="numeric" value=(kept(error, "correct", "deadline")); }
                    button type="submit" { "发出补正要求" }
                }
                form.action #approve method="post" action={ "/case/" (no) "/approve" } enctype="multipart/form-data" {
                    (request_id())
                    (problem_at(error, "approve"))
                    h2 { "准予许可" }
                    label { "审批结果文件" input type="file" name="result" required; }
                    label { "许可证号" input name="licence_no" value=(kept(error, "approve", "licence_no")); }
                    button type="submit" { "准予许可" }
                }
                form.action #deny method="post" action={ "/case/" (no) "/deny" } {
                    (request_id())
                    (problem_at(error, "deny"))
                    h2 { "不予许可" }
                    label { "理由" textarea name="reason" required rows="3" { (kept(error, "deny", "reason")) } }
                    button.danger type="submit" { "不予许可" }
                }
            }
            @if matches!(state, "APPROVED" | "DENIED" | "MAIL_RETURNED") && k.delivery != "collect-home" {
                (steps::mail_send(k, "result", t("邮寄审批结果", "Mail the result"), error))
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

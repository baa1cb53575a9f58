//! The window clerk's pages: the case list, the application form and the
//! case page with the steps at the window.

use maud::{Markup, html};
use tongban_proto::common::v1::CaseView;

use super::*;
use crate::console::routes::Draft;

/// The clerk's case list, filtered by state.
pub(in crate::console) fn clerk_list(c: &Console, state: &str, cases: &[CaseView]) -> Markup {
    layout(
        c,
        "本窗口案件",
        html! {
            form.filter method="get" action="/" {
                label { "状态 "
                    select name="state" onchange="this.form.submit()" {
                        option value="" selected[state.is_empty()] { "全部" }
                        @for (s, n) in STATES { option value=(s) selected[state == s] { (n) " " (s) } }
                    }
                }
                noscript { button type="submit" { "筛选" } }
                a.button href="/new" { "新申请" }
            }
            (cases_table(cases))
        },
    )
}
/// The application form, driven by the directory: the items this county
/// takes in, for the home counties an agreement names.
pub(in crate::console) fn clerk_new(c: &Console, d: &Draft, error: Option<&str>) -> Markup {
    let Some(dir) = c.directory.as_ref() else {
        return layout(
            c,
            "新申请",
            html! { p.error { "没有联邦目录：请用 --directory 指定 federation.toml 后重新启动控制台。" } },
        );
    };
    let Some(own) = c.identity.county() else {
        return layout(c, "新申请", html! {});
    };
    let mut routes = Vec::new();
    for item in &dir.items {
        for home in &dir.counties {
            if home.code != *own && dir.covers(own, &home.code, &item.code) {
                routes.push((item, home));
            }
        }
    }
    let chosen = format!("{}/{}", d.item, d.home);
    layout(
        c,
        "新申请（跨域通办）",
        html! {
            (error_box(error))
            form #apply method="post" action="/new" enctype="multipart/form-data" {
                (request_id())
                fieldset {
                    legend { "事项与属地" }
                    label { "申请事项 → 属地审批部门"
                        select name="route" #route required {
                            @for (item, home) in &routes {
                                @let value = format!("{}/{}", item.code.as_str(), home.code.as_str());
                                option value=(value) data-item=(item.code.as_str()) selected[value == chosen] {
                                    (item.name) " " (item.code.as_str()) " → " (home.name) " " (home.code.as_str())
                                }
                            }
                        }
                    }
                    label { "送达方式"
                        select name="delivery" {
                            @for m in ["mail-applicant", "mail-window", "collect-home"] {
                                option value=(m) selected[d.delivery == m] { (delivery_name(m)) }
                            }
                        }
                    }
                }
                fieldset {
                    legend { "申请人（自然人）" }
                    label { "姓名" input name="person_name" required value=(d.name) autocomplete="off"; }
                    label { "公民身份号码"
                        input name="person_id" #person_id required maxlength="18" value=(d.id)
                            data-resident-id autocomplete="off" spellcheck="false";
                        span.field-error #person_id-error aria-live="polite" {}
                    }
                    label { "联系电话" input name="phone" required value=(d.phone) autocomplete="off"; }
                    label { "通讯地址" input name="address" required value=(d.address) autocomplete="off"; }
                }
                @for item in &dir.items {
                    fieldset.materials data-materials-for=(item.code.as_str()) {
                        legend { "申请材料：" (item.name) }
                        p.dim { "缺少的材料可以先不上传：受理后会一次性告知需补正的全部材料。" }
                        @for m in &item.materials {
                            label { (m.name) " " code.dim { (m.kind) }
                                @if m.paper { span.dim { "（需邮寄纸质原件）" } }
                                input type="file" name={ "material:" (m.kind) };
                            }
                        }
                    }
                }
                @if error.is_some() { p.dim { "文件需重新选择（浏览器不保留已选文件）。" } }
                button type="submit" { "提交申请" }
            }
        },
    )
}
/// The clerk's case page: what is missing, the forms for the next step,
/// the materials and the history.
pub(in crate::console) fn clerk_case(
    c: &Console,
    k: &CaseView,
    error: Option<&Problem<'_>>,
) -> Markup {
    let no = &k.case_no;
    let state = k.state.as_str();
    let before_accept = matches!(state, "CORRECTION_AT_WINDOW" | "READY_AT_WINDOW");
    let correcting = state == "CORRECTION_REQUESTED";
    let open_correction = k.corrections.iter().any(|x| x.answered_at.is_empty());
    layout(
        c,
        &format!("案件 {no}"),
        html! {
            (facts(k))
            @if !k.missing.is_empty() {
                section.notice-box #missing {
                    h2 { "一次性补正告知：尚缺以下材料" }
                    ul { @for m in &k.missing { li data-kind=(m) { (material_name(k, m)) " " code.dim { (m) } } } }
                    p { a href={ "/case/" (no) "/notice/correction" } target="_blank" { "打印补正材料通知书" } }
                }
            }
            (corrections(k))
            @if before_accept || correcting {
                form.action #attach method="post" action={ "/case/" (no) "/attach" } enctype="multipart/form-data" {
                    (request_id())
                    (problem_at(error, "attach"))
                    h2 { @if correcting { "上传补正材料" } @else { "补充材料" } }
                    @for m in &k.required_materials {
                        @if k.missing.contains(&m.kind) || correcting || before_accept {
                            label { (m.name) " " code.dim { (m.kind) } input type="file" name={ "material:" (m.kind) }; }
                        }
                    }
                    button type="submit" { "上传" }
                }
            }
            @if before_accept {
                form.action #verify method="post" action={ "/case/" (no) "/verify" } {
                    (request_id())
                    (problem_at(error, "verify"))
                    h2 { "身份核验" }
                    label { "方式 "
                        select name="method" {
                            option value="id-card-reader" { "身份证读卡器" }
                            option value="face" { "人脸识别" }
                            option value="manual" { "人工核验" }
                        }
                    }
                    button type="submit" { "记录核验" }
                }
            }
            @if state == "READY_AT_WINDOW" {
                form.action #accept method="post" action={ "/case/" (no) "/accept" } {
                    (request_id())
                    (problem_at(error, "accept"))
                    h2 { "窗口受理" }
                    p.dim { "受理后案件移交属地审批部门，并打印受理回执。" }
                    button type="submit" { "受理并打印回执" }
                }
            }
            @if correcting && open_correction {
                form.action #resubmit method="post" action={ "/case/" (no) "/resubmit" } {
                    (request_id())
                    (problem_at(error, "resubmit"))
                    h2 { "提交补正" }
                    button type="submit" { "将补正材料提交属地" }
                }
            }
            @if k.history.iter().any(|e| e.event == "case.accepted") {
                p { a #receipt-link href={ "/case/" (no) "/notice/intake-receipt" } target="_blank" { "受理回执" } }
            }
            (materials_table(k))
            (history(k))
        },
    )
}

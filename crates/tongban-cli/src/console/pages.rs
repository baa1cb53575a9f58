//! The console's pages (maud templates, compiled in) and its two embedded
//! assets. zh-CN by default, English through [`lang::t`] pairs written where
//! the text is shown; CJK-capable fonts first, China Standard Time; personal
//! data is shown exactly as the node gives it (masked).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use tongban_proto::common::v1::{CaseView, applicant::Who};

use super::lang::{self, t};
use super::routes::Draft;
use super::{Console, Role};
use crate::output::binary_size;
use crate::page::{FONTS, local_time};

/// The stylesheet.
pub(super) const CSS: &str = include_str!("console.css");
/// The script: ID check characters as typed, the form's item choice.
pub(super) const JS: &str = include_str!("console.js");

/// Every state a case list can filter by, with its name for people.
const STATES: [(&str, &str); 12] = [
    ("CORRECTION_AT_WINDOW", "窗口待补正"),
    ("READY_AT_WINDOW", "待窗口受理"),
    ("QUEUED", "待移交"),
    ("HANDED_OFF", "已移交属地"),
    ("UNDER_REVIEW", "审查中"),
    ("CORRECTION_REQUESTED", "属地要求补正"),
    ("APPROVED", "准予许可"),
    ("DENIED", "不予许可"),
    ("RESULT_IN_TRANSIT", "结果寄递中"),
    ("READY_FOR_PICKUP", "待领取"),
    ("MAIL_RETURNED", "邮件退回"),
    ("CLOSED", "已办结"),
];

fn state_name(state: &str) -> &str {
    STATES
        .iter()
        .find(|(s, _)| *s == state)
        .map_or("", |(_, n)| n)
}

fn state_badge(state: &str) -> Markup {
    html! { span.state data-state=(state) { (state_name(state)) " " code { (state) } } }
}

fn county(name: &str, code: &str) -> Markup {
    html! {
        @if name.is_empty() { code { (code) } } @else { (name) " " code.dim { (code) } }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Clerk => t("受理窗口（本地专窗）", "Service window"),
        Role::Reviewer => t("属地审批部门", "Home authority"),
        Role::Auditor => t("审计", "Audit"),
    }
}

fn who(c: &Console) -> String {
    use tongban_pki::Principal;
    let county = c.identity.county().map(|k| {
        let name = c
            .directory
            .as_ref()
            .and_then(|d| d.county(k))
            .map(|x| x.name.clone())
            .unwrap_or_default();
        format!("{name} {}", k.as_str())
    });
    let name = match &c.identity.principal {
        Principal::Clerk { name, .. }
        | Principal::Reviewer { name, .. }
        | Principal::Auditor { name, .. } => name.as_str(),
        Principal::Node { .. } => "",
    };
    match county {
        Some(k) => format!("{k} · {name}"),
        None => format!("{} · {name}", t("全省", "Province-wide")),
    }
}

fn layout(c: &Console, title: &str, body: Markup) -> Markup {
    let lang = lang::lang();
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (t("跨域通办", "Tongban")) }
                style { (PreEscaped(format!(":root {{ --fonts: {FONTS}; }}"))) }
                link rel="stylesheet" href="/assets/console.css";
                script src="/assets/console.js" defer {}
            }
            body {
                header.top {
                    a.brand href="/" { (t("跨域通办", "Cross-region service")) " · " (role_name(c.role)) }
                    span.who { (who(c)) }
                    nav {
                        @if c.role == Role::Clerk {
                            a href="/" { (t("案件", "Cases")) } a href="/new" { (t("新申请", "New application")) }
                        }
                        (lang_switch())
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The link to this page in the other language.
fn lang_switch() -> Markup {
    let other = lang::lang().other();
    html! { a #lang-switch href=(lang::switch_href(other)) hreflang=(other.code()) lang=(other.code()) { (other.name()) } }
}

/// A page outside a session (refused, failed): the stylesheet, the language
/// switch, no navigation.
fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang::lang().code()) {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(format!(":root {{ --fonts: {FONTS}; }}"))) }
                link rel="stylesheet" href="/assets/console.css";
            }
            body {
                header.top { span.brand { (t("跨域通办", "Cross-region service")) } nav { (lang_switch()) } }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The page for a request without a session.
pub(super) fn refused() -> Markup {
    bare(
        t("未登录", "Not signed in"),
        html! {
            p { (t("请使用启动控制台时打印的一次性链接登录。",
                   "The console opens only through the one-time URL that tongban console printed when it started.")) }
        },
    )
}

/// A failure the node reported, on a page of its own.
pub(super) fn failure(msg: &str) -> Markup {
    bare(
        t("操作未完成", "Not done"),
        html! {
            p.error role="alert" { (msg) }
            p { a href="/" { (t("返回", "Back")) } }
        },
    )
}

/// What the node refused, and in which form of the page.
pub(super) struct Problem<'a> {
    /// The form's id (`attach`, `approve`, ...).
    pub(super) form: &'a str,
    /// The node's words.
    pub(super) msg: &'a str,
}

/// The problem's box, inside the form it belongs to.
fn problem_at(problem: Option<&Problem<'_>>, form: &str) -> Markup {
    error_box(problem.filter(|p| p.form == form).map(|p| p.msg))
}

/// A fresh request id for a state-changing form: sending the same form
/// twice (a double click, a reload that posts again) sends the same id, and
/// the node answers the repeat with its first reply instead of acting twice.
fn request_id() -> Markup {
    html! { input type="hidden" name="request_id" value=(uuid::Uuid::new_v4().hyphenated()); }
}

fn error_box(error: Option<&str>) -> Markup {
    html! { @if let Some(e) = error { p.error role="alert" id="error" { (e) } } }
}

/// Days left, or overdue, or why there is no date.
fn days_left(k: &CaseView) -> Markup {
    html! {
        @if k.due_date.is_empty() {
            @if !k.corrections.is_empty() && !k.clock_running { span.paused { "补正中，计时暂停" } }
            @else { span.dim { "—" } }
        } @else if k.working_days_left < 0 {
            span.overdue { "已超期 " (-k.working_days_left) " 个工作日" } " " span.dim { "(" (k.due_date) ")" }
        } @else {
            span.left { "剩 " (k.working_days_left) " 个工作日" } " " span.dim { "(" (k.due_date) ")" }
        }
    }
}

fn applicant(k: &CaseView) -> Markup {
    html! {
        @match k.applicant.as_ref().and_then(|a| a.who.as_ref()) {
            Some(Who::Person(p)) => { (p.name) " " code.dim { (p.resident_id) } }
            Some(Who::Company(co)) => { (co.name) " " code.dim { (co.credit_code) } }
            None => { "" }
        }
    }
}

fn cases_table(cases: &[CaseView]) -> Markup {
    html! {
        @if cases.is_empty() { p.dim #no-cases { "没有案件。" } } @else {
            table.cases {
                thead { tr { th { "案件编号" } th { "事项" } th { "申请人" } th { "受理窗口" } th { "属地" } th { "状态" } th { "时限" } th { "申请时间" } } }
                tbody {
                    @for k in cases {
                        tr data-case=(k.case_no) {
                            td { a href={ "/case/" (k.case_no) } { code { (k.case_no) } } }
                            td { (k.item_name) " " code.dim { (k.item_code) } }
                            td { (applicant(k)) }
                            td { (county(&k.receiving_county_name, &k.receiving_county)) }
                            td { (county(&k.home_county_name, &k.home_county)) }
                            td { (state_badge(&k.state)) }
                            td { (days_left(k)) }
                            td.nowrap { (local_time(&k.created_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// The clerk's case list, filtered by state.
pub(super) fn clerk_list(c: &Console, state: &str, cases: &[CaseView]) -> Markup {
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

fn delivery_name(mode: &str) -> &'static str {
    match mode {
        "mail-applicant" => "邮寄送达申请人",
        "mail-window" => "寄回本窗口领取",
        "collect-home" => "到属地领取",
        _ => "",
    }
}

/// The application form, driven by the directory: the items this county
/// takes in, for the home counties an agreement names.
pub(super) fn clerk_new(c: &Console, d: &Draft, error: Option<&str>) -> Markup {
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

fn material_name<'a>(k: &'a CaseView, kind: &'a str) -> &'a str {
    k.required_materials
        .iter()
        .find(|m| m.kind == kind && !m.name.is_empty())
        .map_or(kind, |m| m.name.as_str())
}

fn facts(k: &CaseView) -> Markup {
    html! {
        table.facts {
            tr { th { "案件编号" } td { code #case-no { (k.case_no) } } }
            tr { th { "状态" } td #state { (state_badge(&k.state)) } }
            tr { th { "事项" } td { (k.item_name) " " code.dim { (k.item_code) } } }
            tr { th { "申请人" } td { (applicant(k)) } }
            @if let Some(a) = &k.applicant { tr { th { "联系电话" } td { (a.phone) } } }
            tr { th { "受理窗口" } td { (county(&k.receiving_county_name, &k.receiving_county)) } }
            tr { th { "属地审批" } td { (county(&k.home_county_name, &k.home_county)) } }
            tr { th { "送达方式" } td { (delivery_name(&k.delivery)) } }
            tr { th { "时限" } td { "承诺 " (k.promised_days) " 个工作日；" (days_left(k)) } }
            tr { th { "身份核验" } td {
                @if let Some(i) = &k.identity_check { (i.method) " · " (local_time(&i.at)) } @else { span.dim { "未核验" } }
            } }
            @if !k.licence_no.is_empty() { tr { th { "许可证号" } td { code { (k.licence_no) } } } }
            @if let Some(r) = &k.result { tr { th { "审批结果" } td { (r.filename) " · " (binary_size(r.size)) } } }
            @if !k.denial_reason.is_empty() { tr { th { "不予许可理由" } td { (k.denial_reason) } } }
            @if !k.paper_received_at.is_empty() { tr { th { "纸质原件" } td { "已于 " (local_time(&k.paper_received_at)) " 收到" } } }
            @if !k.note.is_empty() { tr { th { "说明" } td { (k.note) } } }
            tr { th { "申请时间" } td { (local_time(&k.created_at)) } }
        }
    }
}

fn materials_table(k: &CaseView) -> Markup {
    html! {
        h2 { "材料" }
        @if k.materials.is_empty() { p.dim { "尚无材料。" } } @else {
            table.materials {
                thead { tr { th { "材料" } th { "文件" } th { "大小" } th { "SHA-256" } } }
                tbody { @for m in &k.materials {
                    tr data-kind=(m.kind) {
                        td { (material_name(k, &m.kind)) " " code.dim { (m.kind) } }
                        td { (m.filename) }
                        td.nowrap { (binary_size(m.size)) }
                        td { code.hash { (crate::output::hex(&m.sha256)) } }
                    }
                } }
            }
        }
    }
}

fn history(k: &CaseView) -> Markup {
    html! {
        h2 { "办理经过" }
        table.history {
            thead { tr { th { "时间（北京时间）" } th { "节点" } th { "事件" } th { "说明" } th { "状态" } } }
            tbody { @for e in &k.history {
                tr {
                    td.nowrap { (local_time(&e.at)) }
                    td { code { (e.county) } }
                    td { code { (e.event) } }
                    td { (e.detail) }
                    td { @if !e.state.is_empty() { (state_badge(&e.state)) } }
                }
            } }
        }
    }
}

fn corrections(k: &CaseView) -> Markup {
    html! {
        @for corr in &k.corrections {
            section.notice-box {
                h2 { "属地审批部门的补正要求" }
                p.dim { "要求于 " (local_time(&corr.requested_at)) "；补正期限 " (corr.deadline)
                    @if !corr.answered_at.is_empty() { "；已于 " (local_time(&corr.answered_at)) " 补正" } }
                ul { @for n in &corr.needs { li { (material_name(k, &n.kind)) " " code.dim { (n.kind) } "：" (n.reason) } } }
            }
        }
    }
}

/// The clerk's case page: what is missing, the forms for the next step,
/// the materials and the history.
pub(super) fn clerk_case(c: &Console, k: &CaseView, error: Option<&Problem<'_>>) -> Markup {
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

/// The reviewer's inbox, fewest days left first.
pub(super) fn review_inbox(c: &Console, cases: &[CaseView]) -> Markup {
    layout(c, "待办案件（按剩余时限）", cases_table(cases))
}

/// The reviewer's case page with the decisions its state allows.
pub(super) fn review_case(c: &Console, k: &CaseView, error: Option<&Problem<'_>>) -> Markup {
    let no = &k.case_no;
    let state = k.state.as_str();
    layout(
        c,
        &format!("案件 {no}"),
        html! {
            (facts(k))
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
                            label { input type="checkbox" name="need" value=(m.kind); " " (m.name) " " code.dim { (m.kind) } }
                            input name={ "reason:" (m.kind) } placeholder="原因";
                        }
                    }
                    label { "补正期限（工作日，留空用默认）" input name="deadline" inputmode="numeric"; }
                    button type="submit" { "发出补正要求" }
                }
                form.action #approve method="post" action={ "/case/" (no) "/approve" } enctype="multipart/form-data" {
                    (request_id())
                    (problem_at(error, "approve"))
                    h2 { "准予许可" }
                    label { "审批结果文件" input type="file" name="result" required; }
                    label { "许可证号" input name="licence_no"; }
                    button type="submit" { "准予许可" }
                }
                form.action #deny method="post" action={ "/case/" (no) "/deny" } {
                    (request_id())
                    (problem_at(error, "deny"))
                    h2 { "不予许可" }
                    label { "理由" textarea name="reason" required rows="3" {} }
                    button.danger type="submit" { "不予许可" }
                }
            }
            @if state == "UNDER_REVIEW" || k.history.iter().any(|e| e.state == "UNDER_REVIEW") {
                p { a href={ "/case/" (no) "/notice/acceptance" } target="_blank" { "受理通知书" } }
            }
            @if state == "DENIED" {
                p { a href={ "/case/" (no) "/notice/denial" } target="_blank" { "不予许可决定书" } }
            }
            (history(k))
        },
    )
}

/// The auditor's search form.
pub(super) fn audit_find(c: &Console, case_no: &str, error: Option<&str>) -> Markup {
    layout(
        c,
        "案件追溯",
        html! {
            (error_box(error))
            form.action #find method="get" action="/trace" {
                label { "案件编号" input name="case" required value=(case_no) placeholder="610702-20261201-1" spellcheck="false"; }
                p.dim { "从受理窗口和属地两个节点取回账本，逐条核验后显示经过与结论（与 audit trace --html 同一页面）。" }
                button type="submit" { "追溯并核验" }
            }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_state_has_a_name() {
        for state in tongban_core::CaseState::ALL {
            assert!(!state_name(state.as_str()).is_empty(), "{state:?}");
        }
    }

    #[test]
    fn days_left_marks_overdue_and_paused() {
        let due = |left| CaseView {
            due_date: "2026-12-09".into(),
            working_days_left: left,
            clock_running: true,
            ..Default::default()
        };
        let overdue = days_left(&due(-2)).into_string();
        assert!(overdue.contains("class=\"overdue\""), "{overdue}");
        assert!(overdue.contains("已超期 2 个工作日"), "{overdue}");
        assert!(days_left(&due(3)).into_string().contains("剩 3 个工作日"));
        let paused = CaseView {
            corrections: vec![Default::default()],
            ..Default::default()
        };
        assert!(days_left(&paused).into_string().contains("计时暂停"));
    }

    #[test]
    fn text_from_the_network_is_escaped() {
        let page = state_badge("<script>").into_string();
        assert!(!page.contains("<script>"), "{page}");
    }
}

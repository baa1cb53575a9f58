//! The console's pages (maud templates, compiled in) and its two embedded
//! assets. zh-CN by default, English through [`lang::t`] pairs written where
//! the text is shown; CJK-capable fonts first, China Standard Time; personal
//! data is shown exactly as the node gives it (masked).

use maud::{DOCTYPE, Markup, PreEscaped, html};
use tongban_proto::common::v1::{CaseView, applicant::Who};

use super::lang::{self, t};
use super::paging::Pager;
use super::{Console, Role};
use crate::output::binary_size;
use crate::page::{FONTS, local_time};

mod audit;
mod clerk;
mod events;
mod review;
mod steps;
mod verify;

pub(super) use audit::audit_find;
pub(super) use clerk::{clerk_case, clerk_list, clerk_new};
pub(super) use review::{review_case, review_inbox};
pub(super) use steps::{leg_name, lost_connection, mail_status_name, not_found, overdue};
pub(super) use verify::{verify_home, verify_job};

/// The stylesheet.
pub(super) const CSS: &str = include_str!("console.css");
/// The script: ID check characters as typed, the form's item choice.
pub(super) const JS: &str = include_str!("console.js");

/// Every state a case list can filter by, with its name for people in
/// Chinese and English (the code itself is shown beside it).
const STATES: [(&str, &str, &str); 12] = [
    (
        "CORRECTION_AT_WINDOW",
        "窗口待补正",
        "correction at the window",
    ),
    ("READY_AT_WINDOW", "待窗口受理", "ready for acceptance"),
    ("QUEUED", "待移交", "queued for handoff"),
    ("HANDED_OFF", "已移交属地", "handed off"),
    ("UNDER_REVIEW", "审查中", "under review"),
    (
        "CORRECTION_REQUESTED",
        "属地要求补正",
        "correction requested",
    ),
    ("APPROVED", "准予许可", "approved"),
    ("DENIED", "不予许可", "denied"),
    ("RESULT_IN_TRANSIT", "结果寄递中", "result in transit"),
    ("READY_FOR_PICKUP", "待领取", "ready for pickup"),
    ("MAIL_RETURNED", "邮件退回", "mail returned"),
    ("CLOSED", "已办结", "closed"),
];

pub(in crate::console) fn state_name(state: &str) -> &'static str {
    STATES
        .iter()
        .find(|(s, _, _)| *s == state)
        .map_or("", |(_, zh, en)| t(zh, en))
}

/// The readable label of a ledger event kind, in the page's language (the
/// audit trace's labels, written "中文 · English"); the kind itself if it
/// has none.
fn event_label(kind: &str) -> &str {
    match crate::audit::html::kind_label(kind).and_then(|l| l.split_once(" · ")) {
        Some((zh, en)) => t(zh, en),
        None => kind,
    }
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
                        @if c.role == Role::Reviewer { a href="/" { (t("待办", "Inbox")) } }
                        @if c.role != Role::Auditor { a #nav-overdue href="/overdue" { (t("超期", "Overdue")) } }
                        @if c.role == Role::Auditor {
                            a #nav-trace href="/" { (t("案件追溯", "Trace a case")) } a #nav-verify href="/verify" { (t("核验节点", "Verify a node")) }
                        }
                        (lang_switch())
                        form.logout method="post" action="/logout" {
                            button #logout type="submit" { (t("退出登录", "Sign out")) }
                        }
                    }
                }
                p #session-ended role="alert" hidden {
                    (t("会话已结束：请先复制已填写的内容，再用控制台终端上新打印的链接登录。",
                       "The session has ended: copy what you typed, then sign in with the new URL the console printed on its terminal."))
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// A page the console shares with the CLI (a printable notice, the audit
/// trace) is a whole document of its own, without the console's header; the
/// console puts a bar above it that leads back and signs out, and that does
/// not print.
pub(in crate::console) fn with_console_bar(page: &str, back: &str, back_label: &str) -> String {
    let bar = html! {
        style { (PreEscaped(".console-bar{display:flex;gap:1em;align-items:center;padding:.4em 1em;\
            background:#8b1a1a;color:#fff;font-size:14px}.console-bar a{color:#fff}\
            .console-bar form{margin:0 0 0 auto}@media print{.console-bar{display:none}}")) }
        nav.console-bar #console-bar {
            a #back href=(back) { "← " (back_label) }
            form method="post" action="/logout" {
                button #logout type="submit" { (t("退出登录", "Sign out")) }
            }
        }
    }
    .into_string();
    match page.find("<body>") {
        Some(i) => format!("{}{bar}{}", &page[..i + 6], &page[i + 6..]),
        None => format!("{bar}{page}"),
    }
}

/// The link to this page in the other language.
fn lang_switch() -> Markup {
    let other = lang::lang().other();
    html! { a #lang-switch href=(lang::switch_href(other)) hreflang=(other.code()) lang=(other.code()) { (other.name()) } }
}

/// A page outside a session (refused, failed): the stylesheet, the language
/// switch, no navigation.
pub(super) fn bare(title: &str, body: Markup) -> Markup {
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
    /// What the form sent, to fill it in again as typed.
    pub(super) fields: &'a [(String, String)],
}

/// The value field `name` of form `form` had when the node refused it
/// (empty otherwise), so nothing typed is lost.
fn kept<'a>(problem: Option<&Problem<'a>>, form: &str, name: &str) -> &'a str {
    problem
        .filter(|p| p.form == form)
        .and_then(|p| p.fields.iter().find(|(n, _)| n == name))
        .map_or("", |(_, v)| v.as_str())
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

/// Whether the home authority has decided the case: its promised-time
/// clock stopped for good, so days left (which the node still counts to the
/// old due date) would mislead, and would turn into "overdue" on a case
/// that closed in time.
fn decided(k: &CaseView) -> bool {
    tongban_core::state::CaseState::parse_wire(&k.state).is_ok_and(|s| s.is_decided())
}

/// Days left, or overdue, or why there is no date. A decided case shows
/// the working days that were left when it was decided (the node freezes
/// the count then): how the promise was kept, not time that is left.
fn days_left(k: &CaseView) -> Markup {
    html! {
        @if decided(k) {
            span.dim.decided {
                // No due date and no count: decided before the clock
                // ran. A case decided while paused for a correction has
                // no due date, but its count.
                @if k.due_date.is_empty() && k.working_days_left == 0 { (t("已作出决定", "decided")) }
                @else if k.working_days_left < 0 {
                    (t("已决定（超期 ", "decided ")) (-k.working_days_left) (t(" 个工作日时）", " working days late"))
                } @else {
                    (t("已决定（剩余 ", "decided with ")) (k.working_days_left) (t(" 个工作日时）", " working days left"))
                }
                @if !k.due_date.is_empty() { " (" (t("时限 ", "due ")) (k.due_date) ")" }
            }
        } @else if k.due_date.is_empty() {
            @if !k.corrections.is_empty() && !k.clock_running { span.paused { (t("补正中，计时暂停", "correcting, clock paused")) } }
            @else { span.dim { "—" } }
        } @else if k.working_days_left < 0 {
            span.overdue { (t("已超期 ", "overdue by ")) (-k.working_days_left) (t(" 个工作日", " working days")) } " " span.dim { "(" (k.due_date) ")" }
        } @else {
            span.left { (t("剩 ", "")) (k.working_days_left) (t(" 个工作日", " working days left")) } " " span.dim { "(" (k.due_date) ")" }
        }
    }
}

/// The application time (申请时间): the window's, which both nodes hold;
/// at a home node whose partner did not state it, the handoff's arrival,
/// said to be that (in full on the case page, as a short mark in a list).
fn applied_at(k: &CaseView, in_full: bool) -> Markup {
    let why = t(
        "受理窗口未发送申请时间，此为移交到达本节点的时间",
        "the window did not send its application time: this is when the handoff arrived here",
    );
    html! {
        (local_time(&k.created_at))
        @if k.created_at_is_arrival {
            " "
            @if in_full { span.dim.arrival { "（" (why) "）" } }
            @else { span.dim.arrival title=(why) { (t("（到达时间）", "(arrival)")) } }
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
        @if cases.is_empty() { p.dim #no-cases { (t("没有案件。", "No cases.")) } } @else {
            table.cases.stack {
                thead { tr {
                    th { (t("案件编号", "Case no.")) } th { (t("事项", "Item")) } th { (t("申请人", "Applicant")) }
                    th { (t("受理窗口", "Window")) } th { (t("属地", "Home")) } th { (t("状态", "State")) }
                    th { (t("时限", "Time limit")) } th { (t("申请时间", "Applied")) }
                } }
                tbody {
                    @for k in cases {
                        tr data-case=(k.case_no) {
                            td data-label=(t("案件编号", "Case no.")) { a href={ "/case/" (k.case_no) } { code { (k.case_no) } } }
                            td data-label=(t("事项", "Item")) { (k.item_name) " " code.dim { (k.item_code) } }
                            td data-label=(t("申请人", "Applicant")) { (applicant(k)) }
                            td data-label=(t("受理窗口", "Window")) { (county(&k.receiving_county_name, &k.receiving_county)) }
                            td data-label=(t("属地", "Home")) { (county(&k.home_county_name, &k.home_county)) }
                            td data-label=(t("状态", "State")) { (state_badge(&k.state)) }
                            td data-label=(t("时限", "Time limit")) { (days_left(k)) }
                            td.nowrap data-label=(t("申请时间", "Applied")) { (applied_at(k, false)) }
                        }
                    }
                }
            }
        }
    }
}
pub(crate) fn delivery_name(mode: &str) -> &'static str {
    match mode {
        "mail-applicant" => t("邮寄送达申请人", "mailed to the applicant"),
        "mail-window" => t("寄回本窗口领取", "mailed back to this window for pickup"),
        "collect-home" => t("到属地领取", "collected at the home authority"),
        _ => "",
    }
}
/// The words for an identity check's method (the same as the clerk's
/// choices); a method this console does not know is shown as the node sent it.
fn identity_method(method: &str) -> &str {
    match method {
        "id-card-reader" => t("身份证读卡器", "ID card reader"),
        "face" => t("人脸识别", "face recognition"),
        "manual" => t("人工核验", "by hand"),
        other => other,
    }
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
            tr { th { (t("案件编号", "Case no.")) } td { code #case-no { (k.case_no) } } }
            tr { th { (t("状态", "State")) } td #state { (state_badge(&k.state)) } }
            tr { th { (t("事项", "Item")) } td { (k.item_name) " " code.dim { (k.item_code) } } }
            tr { th { (t("申请人", "Applicant")) } td { (applicant(k)) } }
            // The person a company's identity check and hand-out are about.
            @if let Some(Who::Company(co)) = k.applicant.as_ref().and_then(|a| a.who.as_ref()) {
                tr { th { (t("法定代表人", "Legal representative")) } td { (co.legal_rep_name) " " code.dim { (co.legal_rep_id) } } }
            }
            @if let Some(a) = &k.applicant { tr { th { (t("联系电话", "Phone")) } td { (a.phone) } } }
            tr { th { (t("受理窗口", "Window")) } td { (county(&k.receiving_county_name, &k.receiving_county)) } }
            tr { th { (t("属地审批", "Home authority")) } td { (county(&k.home_county_name, &k.home_county)) } }
            tr { th { (t("送达方式", "Delivery")) } td { (delivery_name(&k.delivery)) } }
            tr { th { (t("时限", "Time limit")) } td {
                (t("承诺 ", "promised ")) (k.promised_days) (t(" 个工作日；", " working days; ")) (days_left(k))
            } }
            tr { th { (t("身份核验", "Identity check")) } td {
                @if let Some(i) = &k.identity_check { (identity_method(&i.method)) " · " (local_time(&i.at)) } @else { span.dim { (t("未核验", "not checked")) } }
            } }
            @if !k.licence_no.is_empty() { tr { th { (t("许可证号", "Licence no.")) } td { code { (k.licence_no) } } } }
            @if let Some(r) = &k.result { tr { th { (t("审批结果", "Result")) } td { (r.filename) " · " (binary_size(r.size)) } } }
            @if !k.denial_reason.is_empty() { tr { th { (t("不予许可理由", "Reason for denial")) } td { (k.denial_reason) } } }
            @if !k.paper_received_at.is_empty() { tr { th { (t("纸质原件", "Paper originals")) } td {
                (t("已于 ", "received ")) (local_time(&k.paper_received_at)) (t(" 收到", ""))
            } } }
            @if !k.note.is_empty() { tr { th { (t("说明", "Note")) } td #note { (events::note(k)) } } }
            tr { th { (t("申请时间", "Applied")) } td #applied { (applied_at(k, true)) } }
        }
    }
}

fn materials_table(k: &CaseView) -> Markup {
    html! {
        h2 { (t("材料", "Materials")) }
        @if k.materials.is_empty() && k.result.is_none() { p.dim { (t("尚无材料。", "No materials yet.")) } } @else {
            table.materials.stack {
                thead { tr { th { (t("材料", "Material")) } th { (t("文件", "File")) } th { (t("大小", "Size")) } th { "SHA-256" } } }
                tbody {
                    @for m in &k.materials { (material_row(k, material_name(k, &m.kind), m)) }
                    // The approval's result document, read like a material
                    // (kind `result`): the clerk prints it for the applicant
                    // (出件), the reviewer opens it again.
                    @if let Some(r) = &k.result { (material_row(k, t("审批结果", "Result document"), r)) }
                }
            }
        }
    }
}

/// One row of the materials table: name, file with its view (for a format
/// a browser may show) and download links, size and SHA-256.
fn material_row(k: &CaseView, name: &str, m: &tongban_proto::common::v1::MaterialDigest) -> Markup {
    html! {
        tr data-kind=(m.kind) {
            td data-label=(t("材料", "Material")) { (name) " " code.dim { (m.kind) } }
            td data-label=(t("文件", "File")) {
                @let href = format!("/case/{}/material/{}", super::routes::material::percent(&k.case_no), super::routes::material::percent(&m.kind));
                (m.filename)
                " "
                @if tongban_core::filetype::content_type(&m.filename).is_some_and(tongban_core::filetype::inline_safe) {
                    a.view href=(href) target="_blank" rel="noopener" { (t("查看", "view")) }
                    " · "
                }
                a.download href={ (href) "?download=1" } download { (t("下载", "download")) }
            }
            td.nowrap data-label=(t("大小", "Size")) { (binary_size(m.size)) }
            td data-label="SHA-256" { code.hash { (crate::output::hex(&m.sha256)) } }
        }
    }
}

fn history(k: &CaseView) -> Markup {
    html! {
        h2 { (t("办理经过", "History")) }
        table.history.stack {
            thead { tr {
                th { (t("时间（北京时间）", "Time (China Standard Time)")) } th { (t("节点", "Node")) }
                th { (t("事件", "Event")) } th { (t("说明", "Detail")) } th { (t("状态", "State")) }
            } }
            tbody { @for e in &k.history {
                tr {
                    td.nowrap data-label=(t("北京时间", "Time (CST)")) { (local_time(&e.at)) }
                    td data-label=(t("节点", "Node")) { code { (e.county) } }
                    td data-label=(t("事件", "Event")) { (event_label(&e.event)) " " code.dim { (e.event) } }
                    td data-label=(t("说明", "Detail")) { (events::detail(k, e)) }
                    td data-label=(t("状态", "State")) { @if !e.state.is_empty() { (state_badge(&e.state)) } }
                }
            } }
        }
    }
}

fn corrections(k: &CaseView) -> Markup {
    html! {
        @for corr in &k.corrections {
            section.notice-box {
                h2 { (t("属地审批部门的补正要求", "Correction requested by the home authority")) }
                p.dim { (t("要求于 ", "Requested ")) (local_time(&corr.requested_at)) (t("；补正期限 ", "; due ")) (corr.deadline)
                    @if !corr.answered_at.is_empty() { (t("；已于 ", "; answered ")) (local_time(&corr.answered_at)) (t(" 补正", "")) } }
                ul { @for n in &corr.needs { li { (material_name(k, &n.kind)) " " code.dim { (n.kind) } (t("：", ": ")) (n.reason) } } }
            }
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_case_state_has_a_name_in_both_languages() {
        for state in tongban_core::CaseState::ALL {
            let zh = state_name(state.as_str());
            let en = lang::scope(lang::Lang::En, || state_name(state.as_str()));
            assert!(!zh.is_empty() && !en.is_empty() && zh != en, "{state:?}");
        }
    }

    #[test]
    fn event_labels_follow_the_language() {
        assert_eq!(event_label("review.approved"), "准予许可");
        assert_eq!(
            lang::scope(lang::Lang::En, || event_label("review.approved")),
            "approved"
        );
        assert_eq!(event_label("no.such.kind"), "no.such.kind");
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
        let english = lang::scope(lang::Lang::En, || days_left(&due(-2)).into_string());
        assert!(english.contains("overdue by 2 working days"), "{english}");
        let paused = CaseView {
            corrections: vec![Default::default()],
            ..Default::default()
        };
        assert!(days_left(&paused).into_string().contains("计时暂停"));
        // A decided case keeps its due date, but no count of days: the
        // clock stopped at the decision.
        let closed = CaseView {
            state: "CLOSED".into(),
            clock_running: false,
            ..due(-2)
        };
        let closed = days_left(&closed).into_string();
        assert!(
            closed.contains("已决定（超期 2 个工作日时） (时限 2026-12-09)"),
            "{closed}"
        );
        // In English as the CLI's status says it (`output::due_line`).
        let closed = CaseView {
            state: "CLOSED".into(),
            clock_running: false,
            ..due(-2)
        };
        let en = lang::scope(lang::Lang::En, || days_left(&closed).into_string());
        assert!(
            en.contains("decided 2 working days late (due 2026-12-09)"),
            "{en}"
        );
        // The days frozen at the decision, in either language.
        let in_time = CaseView {
            state: "APPROVED".into(),
            clock_running: false,
            ..due(3)
        };
        let zh = days_left(&in_time).into_string();
        assert!(zh.contains("已决定（剩余 3 个工作日时）"), "{zh}");
        let en = lang::scope(lang::Lang::En, || days_left(&in_time).into_string());
        assert!(
            en.contains("decided with 3 working days left (due 2026-12-09)"),
            "{en}"
        );
        // Decided while paused: no due date, but the frozen count.
        let paused_then = CaseView {
            due_date: String::new(),
            ..in_time.clone()
        };
        let paused_then = days_left(&paused_then).into_string();
        assert!(
            paused_then.contains("已决定（剩余 3 个工作日时）") && !paused_then.contains("时限"),
            "{paused_then}"
        );
        // Decided before any clock ran: nothing to count.
        let undated = CaseView {
            state: "DENIED".into(),
            ..Default::default()
        };
        let undated = days_left(&undated).into_string();
        assert!(
            undated.contains("已作出决定") && !undated.contains("工作日"),
            "{undated}"
        );
    }

    #[test]
    fn an_arrival_time_is_said_to_be_one() {
        let arrived = CaseView {
            created_at: "2026-12-01T00:30:12Z".into(),
            created_at_is_arrival: true,
            ..Default::default()
        };
        let full = applied_at(&arrived, true).into_string();
        assert!(full.contains("此为移交到达本节点的时间"), "{full}");
        let mark = lang::scope(lang::Lang::En, || applied_at(&arrived, false).into_string());
        assert!(mark.contains("(arrival)"), "{mark}");
        let stated = CaseView {
            created_at_is_arrival: false,
            ..arrived
        };
        let stated = applied_at(&stated, true).into_string();
        assert!(
            !stated.contains("arrival") && !stated.contains("到达"),
            "{stated}"
        );
    }

    #[test]
    fn identity_methods_are_named_in_the_page_language() {
        assert_eq!(identity_method("face"), "人脸识别");
        assert_eq!(
            lang::scope(lang::Lang::En, || identity_method("manual")),
            "by hand"
        );
        assert_eq!(identity_method("retina"), "retina");
    }

    #[test]
    fn text_from_the_network_is_escaped() {
        let page = state_badge("<script>").into_string();
        assert!(!page.contains("<script>"), "{page}");
    }
}

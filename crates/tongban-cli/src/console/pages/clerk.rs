//! The window clerk's pages: the case list, the application form and the
//! case page with the steps at the window.

use maud::{Markup, html};
use tongban_proto::common::v1::CaseView;

use super::*;
use crate::console::routes::Draft;

/// The clerk's case list, filtered by state.
pub(in crate::console) fn clerk_list(
    c: &Console,
    state: &str,
    cases: &[CaseView],
    pager: &Pager,
) -> Markup {
    layout(
        c,
        t("本窗口案件", "Cases at this window"),
        html! {
            form.filter method="get" action="/" {
                label { (t("状态 ", "State "))
                    select name="state" onchange="this.form.submit()" {
                        option value="" selected[state.is_empty()] { (t("全部", "all")) }
                        @for (s, zh, en) in STATES { option value=(s) selected[state == s] { (t(zh, en)) " " (s) } }
                    }
                }
                noscript { button type="submit" { (t("筛选", "Filter")) } }
                a.button href="/new" { (t("新申请", "New application")) }
            }
            (cases_table(cases))
            (pager.links())
        },
    )
}
/// The application form, driven by the directory: the items this county
/// takes in, for the home counties an agreement names.
pub(in crate::console) fn clerk_new(c: &Console, d: &Draft, error: Option<&Problem<'_>>) -> Markup {
    let Some(dir) = c.directory.as_ref() else {
        return layout(
            c,
            t("新申请", "New application"),
            html! { p.error { (t("没有联邦目录：请用 --directory 指定 federation.toml 后重新启动控制台。",
            "No federation directory: start the console again with --directory federation.toml.")) } },
        );
    };
    let Some(own) = c.identity.county() else {
        return layout(c, t("新申请", "New application"), html! {});
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
    let at = |field: &str| error.filter(|p| p.form == field).map_or("", |p| p.msg);
    layout(
        c,
        t("新申请（跨域通办）", "New application (cross-region)"),
        html! {
            // A refusal at an input is said there alone; the top says only
            // that the form was not accepted, and links to the input (a
            // plain anchor: it works without the script).
            @match error.and_then(|p| input_label(p.form).map(|label| (p.form, label))) {
                Some((input, label)) => {
                    p.error role="alert" id="error" {
                        (t("申请未被受理：请修改", "The application was not accepted: correct "))
                        a href={ "#" (input) "-error" } { (label) }
                        (t("后重新提交。", " and send it again."))
                    }
                }
                None => (error_box(error.map(|p| p.msg))),
            }
            @if error.is_some_and(|p| p.form == "lost") {
                p #lost { (t("控制台已用同一请求编号重试数次，节点仍未应答；申请可能没有送达，也可能已经立案。节点恢复后重新选择文件再提交：请求编号不变，节点只会立案一次。",
                             "The console tried again a few times with the same request id and the node did not answer; the application may not have arrived, or the case may be made. When the node is back, choose the files again and send it: the request id is the same, so the node makes one case.")) }
            }
            form #apply method="post" action="/new" enctype="multipart/form-data" {
                @if d.request_id.is_empty() { (request_id()) }
                @else { input type="hidden" name="request_id" value=(d.request_id); }
                fieldset {
                    legend { (t("事项与属地", "Item and home authority")) }
                    label { (t("申请事项 → 属地审批部门", "Item → home authority"))
                        select name="route" #route required {
                            @for (item, home) in &routes {
                                @let value = format!("{}/{}", item.code.as_str(), home.code.as_str());
                                @let modes: Vec<&str> = item.delivery.iter().map(|m| m.as_str()).collect();
                                option value=(value) data-item=(item.code.as_str()) data-delivery=(modes.join(" ")) selected[value == chosen] {
                                    (item.name) " " (item.code.as_str()) " → " (home.name) " " (home.code.as_str())
                                }
                            }
                        }
                    }
                    label { (t("送达方式", "Delivery"))
                        select name="delivery" #delivery {
                            @for m in ["mail-applicant", "mail-window", "collect-home"] {
                                option value=(m) selected[d.delivery == m] { (delivery_name(m)) }
                            }
                        }
                        span.field-error #delivery-error aria-live="polite" { (at("delivery")) }
                    }
                }
                (applicant_fields(d, error))
                @for item in &dir.items {
                    fieldset.materials data-materials-for=(item.code.as_str()) {
                        legend { (t("申请材料：", "Materials: ")) (item.name) }
                        p.item-terms {
                            (t("承诺时限 ", "Promised in ")) (item.promised_days) (t(" 个工作日", " working days"))
                            " · " (t("送达方式：", "delivery: "))
                            @for (i, m) in item.delivery.iter().enumerate() {
                                @if i > 0 { (t("、", ", ")) } (delivery_name(m.as_str()))
                            }
                            @if item.intake == tongban_core::directory::IntakeMode::VideoConsultation {
                                " · " strong { (t("受理前须与属地视频会商", "a video consultation with the home authority before acceptance")) }
                            }
                        }
                        @if item.code.as_str() == d.item {
                            span.field-error #materials-error aria-live="polite" { (at("materials")) }
                        }
                        p.dim { (t("缺少的材料可以先不上传：受理后会一次性告知需补正的全部材料。",
                                   "Missing materials can follow: the window then lists everything still needed, all at once.")) }
                        @for m in &item.materials {
                            label { (m.name) " " code.dim { (m.kind) }
                                @if m.paper { span.dim { (t("（需邮寄纸质原件）", " (paper original to be mailed)")) } }
                                @if m.waivable { span.dim { (t("（可容缺，签署告知承诺后补交）", " (may follow under a signed commitment)")) } }
                                input type="file" name={ "material:" (m.kind) };
                            }
                        }
                    }
                }
                @if error.is_some() { p.dim { (t("文件需重新选择（浏览器不保留已选文件）。", "Choose the files again (browsers do not keep them).")) } }
                button type="submit" { (t("提交申请", "Submit the application")) }
            }
        },
    )
}
/// The applicant: a person, or a company (法人) with its unified social
/// credit code and legal representative. The script shows the chosen kind
/// and checks each code's check character as it is typed; the node checks
/// every field again, and what it refuses is shown at its field.
/// The name of an input of the application form that a refusal can
/// concern, as its label says it (None: no input, e.g. `lost`).
fn input_label(input: &str) -> Option<&'static str> {
    Some(match input {
        "person_name" => t("姓名", "the name"),
        "person_id" => t("公民身份号码", "the resident ID number"),
        "company_name" => t("单位名称", "the registered name"),
        "credit_code" => t("统一社会信用代码", "the unified social credit code"),
        "legal_rep" => t("法定代表人", "the legal representative"),
        "legal_rep_id" => t(
            "法定代表人公民身份号码",
            "the legal representative's resident ID number",
        ),
        "phone" => t("联系电话", "the phone number"),
        "address" => t("通讯地址", "the postal address"),
        "delivery" => t("送达方式", "the delivery"),
        "materials" => t("申请材料", "the materials"),
        _ => return None,
    })
}

fn applicant_fields(d: &Draft, error: Option<&Problem<'_>>) -> Markup {
    let company = d.kind == "company";
    let at = |field: &str| error.filter(|p| p.form == field).map_or("", |p| p.msg);
    html! {
        fieldset #applicant-kind {
            legend { (t("申请人类型", "Applicant")) }
            label.inline { input type="radio" name="applicant" value="person" checked[!company]; " " (t("自然人", "a person")) }
            label.inline { input type="radio" name="applicant" value="company" checked[company]; " " (t("法人（企业）", "a company")) }
        }
        fieldset data-applicant="person" {
            legend { (t("申请人（自然人）", "Applicant (person)")) }
            label { (t("姓名", "Name")) input name="person_name" required value=(d.name) autocomplete="off";
                span.field-error #person_name-error aria-live="polite" { (at("person_name")) } }
            label { (t("公民身份号码", "Resident ID number"))
                input name="person_id" #person_id required maxlength="18" value=(d.id)
                    data-resident-id autocomplete="off" spellcheck="false";
                span.field-error #person_id-error aria-live="polite" { (at("person_id")) }
            }
        }
        fieldset data-applicant="company" {
            legend { (t("申请人（法人）", "Applicant (company)")) }
            label { (t("单位名称", "Registered name")) input name="company_name" required value=(d.company_name) autocomplete="off";
                span.field-error #company_name-error aria-live="polite" { (at("company_name")) } }
            label { (t("统一社会信用代码", "Unified social credit code"))
                input name="credit_code" #credit_code required maxlength="18" value=(d.credit_code)
                    data-credit-code autocomplete="off" spellcheck="false";
                span.field-error #credit_code-error aria-live="polite" { (at("credit_code")) }
            }
            label { (t("法定代表人", "Legal representative")) input name="legal_rep" required value=(d.legal_rep) autocomplete="off";
                span.field-error #legal_rep-error aria-live="polite" { (at("legal_rep")) } }
            label { (t("法定代表人公民身份号码", "Legal representative's resident ID number"))
                input name="legal_rep_id" #legal_rep_id required maxlength="18" value=(d.legal_rep_id)
                    data-resident-id autocomplete="off" spellcheck="false";
                span.field-error #legal_rep_id-error aria-live="polite" { (at("legal_rep_id")) }
            }
        }
        fieldset {
            legend { (t("联系方式", "Contact")) }
            label { (t("联系电话", "Phone")) input name="phone" #phone required value=(d.phone) autocomplete="off";
                span.field-error #phone-error aria-live="polite" { (at("phone")) } }
            label { (t("通讯地址", "Postal address")) input name="address" required value=(d.address) autocomplete="off";
                span.field-error #address-error aria-live="polite" { (at("address")) } }
        }
    }
}

/// The commitment (告知承诺) that lets the window accept without the
/// missing materials the directory marks waivable (容缺受理).
fn commit_form(c: &Console, k: &CaseView, error: Option<&Problem<'_>>) -> Markup {
    let waivable: Vec<&str> = c
        .directory
        .as_ref()
        .and_then(|d| d.items.iter().find(|i| i.code.as_str() == k.item_code))
        .map(|item| {
            item.materials
                .iter()
                .filter(|m| m.waivable && k.missing.contains(&m.kind))
                .map(|m| m.kind.as_str())
                .collect()
        })
        .unwrap_or_default();
    html! {
        @if !waivable.is_empty() && k.commitment.is_none() {
            form.action #commit method="post" action={ "/case/" (k.case_no) "/commit" } {
                (request_id())
                (problem_at(error, "commit"))
                h2 { (t("容缺受理：告知承诺", "Accept with a commitment (告知承诺)")) }
                p.dim { (t("申请人签署承诺书、承诺在期限内补齐以下可容缺的材料，即可先行受理。",
                           "The applicant signs to supply these waivable materials by the deadline; the case can then be accepted without them.")) }
                @for kind in &waivable {
                    label.inline { input type="checkbox" name={ "kind:" (kind) } checked; " " (material_name(k, kind)) " " code.dim { (kind) } }
                }
                @let days = kept(error, "commit", "days");
                label { (t("承诺人", "Signed by")) input name="signer" required autocomplete="off" value=(kept(error, "commit", "signer")); }
                label { (t("补齐期限（工作日）", "Deadline (working days)")) input name="days" required inputmode="numeric" value=(if days.is_empty() { "5" } else { days }); }
                button type="submit" { (t("记录承诺", "Record the commitment")) }
            }
        }
    }
}

/// The video consultation with the home authority (异地视频会商) that an
/// item with intake `video-consultation` needs before acceptance, and the
/// form that records it.
fn consultation(
    c: &Console,
    k: &CaseView,
    before_accept: bool,
    error: Option<&Problem<'_>>,
) -> Markup {
    let needed = c
        .directory
        .as_ref()
        .and_then(|d| d.items.iter().find(|i| i.code.as_str() == k.item_code))
        .is_some_and(|i| i.intake == tongban_core::directory::IntakeMode::VideoConsultation);
    html! {
        @if let Some(v) = &k.consultation {
            section.notice-box #consultation {
                h2 { (t("异地视频会商", "Video consultation with the home authority")) }
                p { (local_time(&v.at)) " · " (v.reviewer) " · " (v.outcome) }
            }
        } @else if needed && before_accept {
            form.action #consult method="post" action={ "/case/" (k.case_no) "/consult" } {
                (request_id())
                (problem_at(error, "consult"))
                h2 { (t("异地视频会商（受理前须记录）", "Video consultation (needed before acceptance)")) }
                label { (t("会商时间（北京时间）", "When (China Standard Time)"))
                    input type="datetime-local" name="at" required value=(kept(error, "consult", "at")); }
                label { (t("属地审批人员", "Home authority's reviewer"))
                    input name="reviewer" required autocomplete="off" value=(kept(error, "consult", "reviewer")); }
                label { (t("会商结论", "What was agreed"))
                    textarea name="outcome" required rows="2" { (kept(error, "consult", "outcome")) } }
                button type="submit" { (t("记录会商", "Record the consultation")) }
            }
        }
    }
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
    let paper_leg_open = !k.paper_kinds.is_empty()
        && !k.mail.iter().any(|m| m.leg == "materials")
        && matches!(
            state,
            "QUEUED" | "HANDED_OFF" | "UNDER_REVIEW" | "CORRECTION_REQUESTED"
        );
    layout(
        c,
        &format!("{} {no}", t("案件", "Case")),
        html! {
            (facts(k))
            (steps::retry(k, error))
            @if !k.missing.is_empty() {
                section.notice-box #missing {
                    h2 { (t("一次性补正告知：尚缺以下材料", "Missing materials, all at once (一次性补正)")) }
                    ul { @for m in &k.missing { li data-kind=(m) { (material_name(k, m)) " " code.dim { (m) } } } }
                }
            }
            (corrections(k))
            (steps::commitment(c, k, error))
            (consultation(c, k, before_accept, error))
            @if before_accept || correcting {
                form.action #attach method="post" action={ "/case/" (no) "/attach" } enctype="multipart/form-data" {
                    (request_id())
                    (problem_at(error, "attach"))
                    h2 { @if correcting { (t("上传补正材料", "Upload the corrections")) } @else { (t("补充材料", "Add materials")) } }
                    @for m in &k.required_materials {
                        label { (m.name) " " code.dim { (m.kind) } input type="file" name={ "material:" (m.kind) }; }
                    }
                    button type="submit" { (t("上传", "Upload")) }
                }
            }
            @if before_accept {
                (commit_form(c, k, error))
                form.action #verify method="post" action={ "/case/" (no) "/verify" } {
                    (request_id())
                    (problem_at(error, "verify"))
                    h2 { (t("身份核验", "Identity check")) }
                    label { (t("方式 ", "Method "))
                        select name="method" {
                            option value="id-card-reader" { (t("身份证读卡器", "ID card reader")) }
                            option value="face" { (t("人脸识别", "face recognition")) }
                            option value="manual" { (t("人工核验", "by hand")) }
                        }
                    }
                    button type="submit" { (t("记录核验", "Record the check")) }
                }
            }
            @if state == "READY_AT_WINDOW" {
                form.action #accept method="post" action={ "/case/" (no) "/accept" } {
                    (request_id())
                    (problem_at(error, "accept"))
                    h2 { (t("窗口受理", "Accept at the window")) }
                    p.dim { (t("受理后案件移交属地审批部门，并打印受理回执。", "Accepting hands the case to the home authority and prints the intake receipt.")) }
                    button type="submit" { (t("受理并打印回执", "Accept and print the receipt")) }
                }
            }
            @if correcting && open_correction {
                form.action #resubmit method="post" action={ "/case/" (no) "/resubmit" } {
                    (request_id())
                    (problem_at(error, "resubmit"))
                    h2 { (t("提交补正", "Send the corrections")) }
                    button type="submit" { (t("将补正材料提交属地", "Send them to the home authority")) }
                }
            }
            @if paper_leg_open {
                (steps::mail_send(k, "materials", t("邮寄纸质原件到属地", "Mail the paper originals home"), error))
            }
            @if state == "READY_FOR_PICKUP" && k.delivery == "mail-window" {
                (steps::handout(k, error))
            }
            (steps::notices(k))
            (steps::mail_legs(c, k, error))
            (materials_table(k))
            (history(k))
        },
    )
}

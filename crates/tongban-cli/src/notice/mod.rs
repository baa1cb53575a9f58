//! Formal notices (文书) as printable HTML: the intake receipt (受理回执),
//! the one-time correction notice (补正材料通知书, 一次性告知), the
//! acceptance notice (受理通知书) and the denial decision (不予受理/不予许可
//! 决定书).
//!
//! Each notice rests on one ledger entry of the node that showed the case
//! (the history event that put the case where the notice says it is) and
//! carries a verification code derived from that entry ([`code`]), which
//! `tongban audit check-notice` confirms against the nodes' ledgers
//! ([`fits`] is the rule both sides share). Rendering is pure: a
//! [`CaseView`] and a [`Context`] in, a page out, so the command line and
//! the web console print the same pages. Everything that came over the
//! network is HTML-escaped; personal data is shown as the node gave it
//! (masked).

use std::fmt::Write;

use sha2::{Digest, Sha256};
use tongban_proto::common::v1::{CaseEvent, CaseView, applicant::Who};

use crate::page::{FONTS, chinese_date, esc, local_time};

/// The domain separator of verification codes (docs/audit.md).
pub(crate) const CODE_DOMAIN: &str = "tongban-notice-v1";

/// Which notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// 受理回执: the window's receipt once it accepted the case.
    IntakeReceipt,
    /// 补正材料通知书: every missing material at once, with its content,
    /// deadline and how to correct it.
    Correction,
    /// 受理通知书: the home authority accepted the case.
    Acceptance,
    /// 不予许可决定书: the home authority denied the case, with the reason.
    Denial,
}

impl Kind {
    /// Every kind, for checking a code against each.
    pub(crate) const ALL: [Kind; 4] = [
        Kind::IntakeReceipt,
        Kind::Correction,
        Kind::Acceptance,
        Kind::Denial,
    ];

    /// The kind's name on the command line and in the code's input.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::IntakeReceipt => "intake-receipt",
            Kind::Correction => "correction",
            Kind::Acceptance => "acceptance",
            Kind::Denial => "denial",
        }
    }

    /// The document's title.
    pub(crate) fn title(self) -> &'static str {
        match self {
            Kind::IntakeReceipt => "跨域通办受理回执",
            Kind::Correction => "补正材料通知书",
            Kind::Acceptance => "受理通知书",
            Kind::Denial => "不予许可决定书",
        }
    }
}

/// What the page needs besides the case.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// RFC 3339 time the notice is printed.
    pub(crate) printed_at: String,
    /// The command an auditor runs to check the code, shown on the page
    /// (e.g. naming the node's URL); empty for the generic one.
    pub(crate) check_hint: String,
}

/// A notice that does not fit the case: exit code 1, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("cannot print the {} ({}) of case {case_no}: {why}", kind.title(), kind.as_str())]
pub(crate) struct DoesNotFit {
    /// The notice asked for.
    pub(crate) kind: Kind,
    /// The case.
    pub(crate) case_no: String,
    /// Why, naming the case's state.
    pub(crate) why: String,
}

/// The verification code of notice `kind` resting on entry `seq` of
/// `county`'s ledger, whose chain hash is `entry_hash`: the first 16 hex
/// digits of SHA-256("tongban-notice-v1" || 0x00 || kind || 0x00 || county
/// || 0x00 || seq as 8 bytes big-endian || entry_hash), in groups of four.
pub(crate) fn code(kind: Kind, county: &str, seq: u64, entry_hash: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(CODE_DOMAIN.as_bytes());
    h.update([0]);
    h.update(kind.as_str().as_bytes());
    h.update([0]);
    h.update(county.as_bytes());
    h.update([0]);
    h.update(seq.to_be_bytes());
    h.update(entry_hash);
    let digits = hex::encode(&h.finalize()[..8]);
    digits
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed by a person (any case, with or without dashes or
/// spaces) in the form [`code`] prints, or `None` if it is not 16 hex digits.
pub(crate) fn normalize_code(typed: &str) -> Option<String> {
    let digits: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    if digits.len() != 16 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(
        digits
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join("-"),
    )
}

/// Whether a ledger entry of kind `entry_kind` leaving the case in `state`
/// can carry notice `kind`. `reported` is the event a partner reported, for
/// an `update.received` entry (the window's record of the home authority's
/// decision).
pub(crate) fn fits(kind: Kind, entry_kind: &str, state: &str, reported: Option<&str>) -> bool {
    let reported_as = |event: &str| entry_kind == "update.received" && reported == Some(event);
    match kind {
        Kind::IntakeReceipt => entry_kind == "case.accepted",
        Kind::Correction => {
            (matches!(entry_kind, "case.applied" | "case.attached")
                && state == "CORRECTION_AT_WINDOW")
                || entry_kind == "review.correction-requested"
                || reported_as("review.correction-requested")
        }
        Kind::Acceptance => entry_kind == "review.accepted" || reported_as("review.accepted"),
        Kind::Denial => entry_kind == "review.denied" || reported_as("review.denied"),
    }
}

/// The history event notice `kind` rests on, or why the case does not fit.
pub(crate) fn basis(kind: Kind, case: &CaseView) -> Result<&CaseEvent, DoesNotFit> {
    let refuse = |why: String| DoesNotFit {
        kind,
        case_no: case.case_no.clone(),
        why,
    };
    let state = case.state.as_str();
    let found = match kind {
        Kind::IntakeReceipt => case
            .history
            .iter()
            .rev()
            .find(|e| e.event == "case.accepted")
            .ok_or_else(|| {
                refuse(format!(
                    "it has not been accepted at this window (state {state}); the intake receipt is printed by the receiving window once it accepts the case"
                ))
            }),
        Kind::Correction => {
            if !matches!(state, "CORRECTION_AT_WINDOW" | "CORRECTION_REQUESTED") {
                return Err(refuse(format!(
                    "nothing is missing or asked for (state {state}); a correction notice fits CORRECTION_AT_WINDOW or CORRECTION_REQUESTED"
                )));
            }
            case.history
                .iter()
                .rev()
                .find(|e| e.state == state)
                .ok_or_else(|| refuse(format!("no history entry put it in {state}")))
        }
        // Acceptance comes before any correction, so the first entry that
        // put the case under review is the acceptance.
        Kind::Acceptance => case
            .history
            .iter()
            .find(|e| e.state == "UNDER_REVIEW")
            .ok_or_else(|| {
                refuse(format!(
                    "the home authority has not accepted it (state {state})"
                ))
            }),
        Kind::Denial => case
            .history
            .iter()
            .rev()
            .find(|e| e.state == "DENIED")
            .filter(|_| !case.denial_reason.is_empty())
            .ok_or_else(|| refuse(format!("it was not denied (state {state})"))),
    }?;
    if found.entry_hash.len() != 32 {
        return Err(refuse(format!(
            "the node did not give the hash of ledger entry {} (is it older than this tongban?)",
            found.seq
        )));
    }
    Ok(found)
}

/// A county as a notice names it: `雁塔区（610113）`, or the code alone.
fn county(name: &str, code: &str) -> String {
    if name.is_empty() {
        esc(code)
    } else {
        format!("{}（{}）", esc(name), esc(code))
    }
}

/// A material kind by its directory name: `经营场所证明（premises-proof）`.
fn material(case: &CaseView, kind: &str) -> String {
    match case.required_materials.iter().find(|m| m.kind == kind) {
        Some(m) if !m.name.is_empty() => format!("{}（{}）", esc(&m.name), esc(kind)),
        _ => esc(kind),
    }
}

fn delivery(mode: &str) -> String {
    match mode {
        "mail-applicant" => "邮寄送达申请人".to_owned(),
        "mail-window" => "寄回受理窗口，由申请人到窗口领取".to_owned(),
        "collect-home" => "申请人到属地审批部门领取".to_owned(),
        other => esc(other),
    }
}

/// The applicant's rows, as the node gave them (masked).
fn applicant_rows(case: &CaseView) -> (String, String) {
    let Some(a) = &case.applicant else {
        return ("申请人".to_owned(), String::new());
    };
    let mut rows = String::new();
    let name = match &a.who {
        Some(Who::Person(p)) => {
            let _ = write!(
                rows,
                "<tr><th>申请人</th><td>{}</td></tr><tr><th>公民身份号码</th><td>{}</td></tr>",
                esc(&p.name),
                esc(&p.resident_id)
            );
            p.name.clone()
        }
        Some(Who::Company(c)) => {
            let _ = write!(
                rows,
                "<tr><th>申请单位</th><td>{}</td></tr><tr><th>统一社会信用代码</th><td>{}</td></tr><tr><th>法定代表人</th><td>{}（{}）</td></tr>",
                esc(&c.name),
                esc(&c.credit_code),
                esc(&c.legal_rep_name),
                esc(&c.legal_rep_id)
            );
            c.name.clone()
        }
        None => "申请人".to_owned(),
    };
    if !a.phone.is_empty() {
        let _ = write!(rows, "<tr><th>联系电话</th><td>{}</td></tr>", esc(&a.phone));
    }
    (name, rows)
}

/// The application time (申请时间), escaped: the window's, which both
/// nodes hold; at a home node whose partner did not state it, the
/// handoff's arrival, said to be that.
fn applied_at(case: &CaseView) -> String {
    let at = esc(&local_time(&case.created_at));
    if case.created_at_is_arrival {
        format!("{at}（受理窗口未载明申请时间，此为移交到达本地时间）")
    } else {
        at
    }
}

/// Renders notice `kind` for `case`, or says why it does not fit.
pub(crate) fn render(kind: Kind, case: &CaseView, ctx: &Context) -> Result<String, DoesNotFit> {
    let basis = basis(kind, case)?;
    let code = code(kind, &basis.county, basis.seq, &basis.entry_hash);
    let receiving = county(&case.receiving_county_name, &case.receiving_county);
    let home = county(&case.home_county_name, &case.home_county);
    let window = format!("{receiving}跨域通办专窗");
    let authority = format!("{home}业务属地审批部门");
    let (applicant_name, applicant_rows) = applicant_rows(case);
    let item = format!("{}（{}）", esc(&case.item_name), esc(&case.item_code));
    let at = chinese_date(&basis.at);
    let mut facts = format!(
        "<tr><th>案件编号</th><td class=\"mono\">{}</td></tr><tr><th>申请事项</th><td>{item}</td></tr>{applicant_rows}\
         <tr><th>受理窗口</th><td>{receiving}</td></tr><tr><th>属地审批</th><td>{home}</td></tr>\
         <tr><th>申请时间</th><td>{}</td></tr>",
        esc(&case.case_no),
        applied_at(case),
    );
    let (issuer, body) = match kind {
        Kind::IntakeReceipt => {
            let _ = write!(
                facts,
                "<tr><th>窗口受理时间</th><td>{}</td></tr><tr><th>承诺时限</th><td>属地审批部门受理之日起 {} 个工作日（不含受理当日）</td></tr><tr><th>送达方式</th><td>{}</td></tr>",
                esc(&local_time(&basis.at)),
                case.promised_days,
                delivery(&case.delivery)
            );
            let materials: String = case
                .materials
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    let paper = if case.paper_kinds.contains(&m.kind) {
                        "纸质原件另行邮寄"
                    } else {
                        "电子材料"
                    };
                    format!(
                        "<tr><td>{}</td><td>{}</td><td>{paper}</td></tr>",
                        i + 1,
                        material(case, &m.kind)
                    )
                })
                .collect();
            (
                window.clone(),
                format!(
                    "<p>您申请的{item}，本窗口已于{at}收取材料并完成形式审查和身份核验，已通过跨域通办系统转交{authority}审批。审批结果按下列送达方式送达。</p>\
                     <table class=\"facts\">{facts}</table>\
                     <h2>已收材料</h2><table class=\"list\"><tr><th class=\"n\">序号</th><th>材料</th><th class=\"form\">形式</th></tr>{materials}</table>"
                ),
            )
        }
        Kind::Correction => {
            let at_window = case.state == "CORRECTION_AT_WINDOW";
            let way =
                format!("携带补正材料到{window}提交，窗口收件后经跨域通办系统转交{authority}。");
            let (needs, deadline, issuer, intro) = if at_window {
                let needs: Vec<(String, String)> = case
                    .missing
                    .iter()
                    .map(|k| (k.clone(), "申请材料清单要求提交，尚未提交".to_owned()))
                    .collect();
                (
                    needs,
                    "材料补齐后即予受理".to_owned(),
                    window.clone(),
                    format!(
                        "您申请的{item}，经形式审查，申请材料不齐全。现将需要补正的全部材料一次性告知如下："
                    ),
                )
            } else {
                let last = case.corrections.last();
                let needs = last
                    .map(|c| {
                        c.needs
                            .iter()
                            .map(|n| (n.kind.clone(), n.reason.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let deadline = last
                    .map(|c| format!("{}前", chinese_date(&c.deadline)))
                    .unwrap_or_default();
                (
                    needs,
                    deadline,
                    authority.clone(),
                    format!(
                        "您申请的{item}，经{authority}审查，需要补正材料。现将需要补正的全部材料一次性告知如下（补正期间承诺时限暂停计算）："
                    ),
                )
            };
            let rows: String = needs
                .iter()
                .enumerate()
                .map(|(i, (k, reason))| {
                    format!(
                        "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                        i + 1,
                        material(case, k),
                        esc(reason)
                    )
                })
                .collect();
            (
                issuer,
                format!(
                    "<p>{intro}</p>\
                     <table class=\"list\"><tr><th class=\"n\">序号</th><th class=\"mat\">补正材料</th><th>补正内容</th></tr>{rows}</table>\
                     <table class=\"facts\"><tr><th>补正期限</th><td>{}</td></tr><tr><th>补正方式</th><td>{way}</td></tr></table>\
                     <p>以上为需要补正的全部材料，请一次性补齐。</p>\
                     <table class=\"facts\">{facts}</table>",
                    esc(&deadline)
                ),
            )
        }
        Kind::Acceptance => {
            // The due date is the node's current one: none while paused
            // for a correction, kept once decided (what was promised).
            let due = if !case.due_date.is_empty() {
                format!(
                    "<tr><th>承诺办结日期</th><td>{}</td></tr>",
                    chinese_date(&case.due_date)
                )
            } else if case.state == "CORRECTION_REQUESTED" {
                "<tr><th>承诺办结日期</th><td>补正期间暂停计算</td></tr>".to_owned()
            } else {
                String::new()
            };
            let _ = write!(
                facts,
                "<tr><th>受理日期</th><td>{at}</td></tr><tr><th>承诺时限</th><td>{} 个工作日（不含受理当日）</td></tr>{due}<tr><th>送达方式</th><td>{}</td></tr>",
                case.promised_days,
                delivery(&case.delivery)
            );
            (
                authority.clone(),
                format!(
                    "<p>您经{receiving}跨域通办专窗提交的{item}申请，申请材料齐全、符合法定形式，本机关决定予以受理，并于承诺时限内作出决定。</p>\
                     <table class=\"facts\">{facts}</table>"
                ),
            )
        }
        Kind::Denial => {
            let _ = write!(facts, "<tr><th>决定日期</th><td>{at}</td></tr>");
            (
                authority.clone(),
                format!(
                    "<p>您经{receiving}跨域通办专窗提交的{item}申请，经审查，本机关决定不予许可。</p>\
                     <div class=\"reason\"><h2>理由</h2><p>{}</p></div>\
                     <table class=\"facts\">{facts}</table>\
                     <p>如对本决定不服，可以自收到本决定书之日起六十日内依法申请行政复议，或者在六个月内依法向人民法院提起行政诉讼。</p>",
                    esc(&case.denial_reason)
                ),
            )
        }
    };
    let check = if ctx.check_hint.is_empty() {
        format!(
            "tongban audit check-notice {} {code} --node URL",
            esc(&case.case_no)
        )
    } else {
        esc(&ctx.check_hint)
    };
    Ok(format!(
        r#"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} {case_no}</title>
<style>
@page {{ size: A4; margin: 20mm 18mm; }}
* {{ box-sizing: border-box; }}
body {{ font-family: {FONTS}; color: #000; background: #fff; font-size: 15px; line-height: 1.75; max-width: 174mm; margin: 0 auto; padding: 18mm 0; }}
header {{ text-align: center; margin-bottom: 8mm; }}
.issuer {{ font-size: 17px; }}
h1 {{ font-size: 26px; letter-spacing: .3em; margin: 2mm 0; }}
.docno {{ font-size: 13px; margin: 0; }}
h2 {{ font-size: 16px; margin: 6mm 0 2mm; }}
table {{ width: 100%; border-collapse: collapse; margin: 4mm 0; table-layout: fixed; }}
th, td {{ border: 1px solid #000; padding: 2mm 3mm; text-align: left; vertical-align: top; overflow-wrap: anywhere; }}
table.facts th {{ width: 36mm; font-weight: normal; background: #f2f2f2; }}
table.list th {{ background: #f2f2f2; font-weight: normal; }}
table.list th.n {{ width: 16mm; }}
table.list th.form {{ width: 42mm; }}
table.list th.mat {{ width: 62mm; }}
.mono, code {{ font-family: "Noto Sans Mono CJK SC", "DejaVu Sans Mono", monospace; }}
.reason {{ border: 1px solid #000; padding: 0 4mm; }}
.seal {{ margin: 14mm 0 0 auto; width: 80mm; text-align: center; }}
footer {{ margin-top: 12mm; padding-top: 3mm; border-top: 1px dashed #000; font-size: 12px; line-height: 1.6; }}
footer code {{ font-size: 15px; font-weight: bold; letter-spacing: .05em; }}
footer code.cmd {{ font-size: 12px; font-weight: normal; letter-spacing: 0; }}
@media screen {{ body {{ padding: 12mm 8mm; }} }}
@media print {{ body {{ padding: 0; max-width: none; }} }}
</style></head>
<body>
<header><div class="issuer">{issuer}</div><h1>{title}</h1><p class="docno">编号：{case_no}</p></header>
<p>{applicant}：</p>
{body}
<div class="seal">{issuer}<br>（盖章）<br>{printed}</div>
<footer>核验码 <code>{code}</code><br>本文书依据{basis_county}节点账本第 {seq} 条记录（{entry}，{entry_at}）出具。核验方法：<code class="cmd">{check}</code></footer>
</body></html>
"#,
        title = kind.title(),
        case_no = esc(&case.case_no),
        applicant = esc(&applicant_name),
        printed = chinese_date(&ctx.printed_at),
        basis_county = if basis.county == case.home_county {
            home.clone()
        } else if basis.county == case.receiving_county {
            receiving.clone()
        } else {
            esc(&basis.county)
        },
        seq = basis.seq,
        entry = esc(&basis.event),
        entry_at = esc(&local_time(&basis.at)),
    ))
}

#[cfg(test)]
mod tests;

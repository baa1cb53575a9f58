//! What the node refused, in the page's language and at its field.
//!
//! The node sends a coded refusal's reason, the request field it concerns
//! and its facts as the status details (a `tongban.common.v1.Refusal`,
//! docs/protocol.md "Refusals"); this module words it in Chinese from those,
//! never from the English message, which English pages show as the node
//! wrote it. A refusal without details, or with a reason this build does
//! not know (a newer node), falls back to the node's English words.

use std::collections::HashMap;

use prost::Message as _;
use tongban_core::Reason;

use super::lang::{Lang, lang, t};
use super::pages::{delivery_name, state_name};
use super::refusal_names::{allowed_name, code_name, field_name};

/// A refusal as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Words {
    /// The request field it concerns (a proto path), empty for none.
    pub(crate) field: String,
    /// What to tell the person, in the page's language.
    pub(crate) text: String,
}

/// The refusal `status` carries, worded in the page's language; `None`
/// when it carries none this console can word.
pub(crate) fn words(status: &tonic::Status) -> Option<Words> {
    let details = status.details();
    if details.is_empty() {
        return None;
    }
    let r = tongban_proto::common::v1::Refusal::decode(details).ok()?;
    let reason = Reason::parse(&r.reason)?;
    let text = match lang() {
        Lang::En => status.message().to_owned(),
        Lang::Zh => chinese(reason, &r.field, &r.args),
    };
    Some(Words {
        field: r.field,
        text,
    })
}

/// The Chinese words for `reason` at `field` with facts `args`. Every
/// reason has its own arm: a new one does not compile until it is worded.
fn chinese(reason: Reason, field: &str, args: &HashMap<String, String>) -> String {
    let arg = |name: &str| args.get(name).map_or("", String::as_str);
    // What is wrong is named by the field where the page knows it, else by
    // the kind of code.
    let subject = field_name(field)
        .or_else(|| code_name(arg("what")))
        .unwrap_or_else(|| arg("what"));
    let value = arg("value");
    let value = if value.is_empty() {
        String::new()
    } else {
        format!(" {value}")
    };
    match reason {
        Reason::CodeEmpty => format!("请填写{subject}"),
        Reason::CodeLength => format!(
            "{subject}{value} 应为 {} 位，现为 {} 位",
            arg("expected"),
            arg("got")
        ),
        Reason::CodeLengthRange => format!(
            "{subject}{value} 应为 {} 至 {} 位，现为 {} 位",
            arg("min"),
            arg("max"),
            arg("got")
        ),
        Reason::CodeCharacter => format!(
            "{subject}{value} 第 {} 位是“{}”，此处应为{}",
            arg("position"),
            arg("found"),
            allowed_name(arg("allowed"))
        ),
        Reason::CodeCheckCharacter => format!(
            "{subject}{value} 的校验码不对：最后一位应为 {}，填的是 {}；请核对后重新输入",
            arg("expected"),
            arg("found")
        ),
        Reason::CodeBirthDate => format!(
            "{subject}中的出生日期 {} 不是 1900 年以后的有效日期",
            arg("date")
        ),
        Reason::CodeProvince => format!(
            "{subject}{value} 的前两位 {} 不是省级行政区划代码",
            arg("prefix")
        ),
        Reason::CodeFutureBirthDate => format!(
            "{subject}中的出生日期 {} 晚于今天（{}）",
            arg("date"),
            arg("today")
        ),
        Reason::CodeNotCounty => {
            format!("{subject}{value} 以 00 结尾，是地市代码，不是县（区）代码")
        }
        // The shape's rule is the node's sentence; the page says which
        // field and that it is the shape, and keeps the rule as written.
        Reason::CodeFormat => format!("{subject}{value} 格式不对（{}）", arg("detail")),
        Reason::TextRequired => format!("请填写{subject}"),
        Reason::TextTooLong => format!(
            "{subject}最多 {} 个字，现为 {} 个字",
            arg("max"),
            arg("got")
        ),
        Reason::TextControl => format!(
            "{subject}第 {} 个字符是控制字符（{}），请删去",
            arg("position"),
            arg("found")
        ),
        Reason::ValueUnknown => format!(
            "{subject}“{}”不在可选范围内（可选：{}）",
            arg("value"),
            arg("allowed")
        ),
        Reason::StateUnknown => format!("“{}”不是案件状态", arg("value")),
        Reason::StateTransition => format!(
            "案件当前为「{}」，不能转为「{}」",
            state_or_code(arg("from")),
            state_or_code(arg("to"))
        ),
        Reason::StateNotAllowed => format!(
            "案件当前为「{}」，不能办理这一步",
            state_or_code(arg("state"))
        ),
        Reason::PaperNotReceived => format!(
            "纸质原件（{}）尚未收到：收到后先登记“纸质原件已收到”，再作出决定",
            arg("kinds").replace(',', "、")
        ),
        Reason::RecipientMismatch => format!(
            "身份证号码 {} 不是申请人（或企业法定代表人）的，结果不予交付",
            arg("id")
        ),
        Reason::IntakeIncomplete => {
            let mut needs = Vec::new();
            if !arg("missing").is_empty() {
                needs.push(format!("尚缺 {}", arg("missing").replace(',', "、")));
            }
            if arg("identity") != "verified" {
                needs.push("申请人身份尚未核验".to_owned());
            }
            format!("尚不能受理：{}", needs.join("；"))
        }
        Reason::ConsultationNeeded => {
            "本事项受理前须与属地审批部门视频会商：请先记录会商，再受理".to_owned()
        }
        Reason::CorrectionIncomplete => format!(
            "补正要求的材料尚缺 {}：请先上传，再提交",
            arg("kinds").replace(',', "、")
        ),
        Reason::DeliveryNotAllowed => format!(
            "事项 {} 不提供“{}”的送达方式；可选：{}",
            arg("item"),
            delivery_or_code(arg("mode")),
            arg("allowed")
                .split(',')
                .map(delivery_or_code)
                .collect::<Vec<_>>()
                .join("、")
        ),
        Reason::MaterialUnknownKind => format!(
            "事项 {} 没有“{}”这种材料；本事项的材料为：{}",
            arg("item"),
            arg("kind"),
            arg("kinds").replace(',', "、")
        ),
        Reason::MaterialDuplicate => {
            format!("材料“{}”上传了两次：每种材料只交一份", material(args))
        }
        Reason::MaterialEmpty => format!("材料“{}”的文件是空的：请重新选择文件", material(args)),
        Reason::MaterialTooLarge => format!(
            "材料“{}”的文件大小为 {}，超过每份材料 {} 的上限",
            material(args),
            arg("size"),
            arg("max")
        ),
        Reason::CaseTooLarge => format!(
            "本案材料合计 {}，超过每件 {} 的上限",
            arg("size"),
            arg("max")
        ),
        Reason::ResultMissing => "准予许可须附审批结果文件：请选择结果文件".to_owned(),
        Reason::ResultEmpty => "审批结果文件是空的：请重新选择结果文件".to_owned(),
        Reason::DenialReasonMissing => "不予许可须写明理由".to_owned(),
        Reason::CorrectionNoNeeds => "一次性补正告知至少要勾选一项材料".to_owned(),
        Reason::CorrectionReasonMissing => {
            format!("请写明材料“{}”需要补正的原因", material(args))
        }
        Reason::CommitmentNoKinds => "告知承诺至少要勾选一项申请人承诺补交的缺少材料".to_owned(),
        Reason::CommitmentUnknownKind => format!(
            "事项 {} 没有“{}”这种材料，不能承诺补交",
            arg("item"),
            arg("kind")
        ),
        Reason::CommitmentNotWaivable => format!(
            "材料“{}”在事项 {} 中不可容缺：须在受理前提交，不能以告知承诺补交",
            material(args),
            arg("item")
        ),
        Reason::CommitmentNotMissing => format!(
            "材料“{}”已经提交，不必承诺补交：只有缺少的材料才可承诺",
            material(args)
        ),
        Reason::CommitmentRepeated => format!("材料“{}”在承诺中写了两次", material(args)),
        Reason::CommitmentNotCovered => format!(
            "缺少材料“{}”，但告知承诺没有包括它：请一并勾选，或先提交该材料",
            material(args)
        ),
        Reason::CommitmentDeadline => format!(
            "补齐期限 {} 个工作日会使截止日为{}：至少给 1 个工作日",
            arg("days"),
            if arg("when") == "today" {
                "今天"
            } else {
                "过去的日期"
            }
        ),
        Reason::AgreementMissing => format!(
            "没有通办协议允许本窗口（{}）为属地 {} 受理事项 {}",
            arg("county"),
            arg("home"),
            arg("item")
        ),
        Reason::HomeIsOwnCounty => format!(
            "属地 {} 就是本窗口所在县（区）：跨域通办受理的是其他县（区）的事项",
            arg("home")
        ),
        Reason::HomeUnknown => format!("{} 不是通办联盟中的县（区）", arg("home")),
        Reason::CorrectionNoneOpen => "本案没有待答复的补正告知，无需重新提交".to_owned(),
        Reason::CommitmentNoneOpen => "本案没有未履行的告知承诺，无需补交材料".to_owned(),
        Reason::MailNoPaper => format!("事项 {} 没有需要邮寄的纸质原件", arg("item")),
        Reason::MailNoResultLeg => "本案的送达方式为到属地领取，没有结果寄递环节".to_owned(),
        Reason::MailWrongSide => match arg("leg") {
            "materials" => "纸质原件由受理窗口寄出，不由属地寄出".to_owned(),
            _ => "审批结果由属地审批部门寄出，不由受理窗口寄出".to_owned(),
        },
        Reason::HandoutNotHere => format!(
            "案件当前为「{}」、送达方式为“{}”：{}",
            state_or_code(arg("state")),
            delivery_or_code(arg("delivery")),
            if arg("side") == "window" {
                "受理窗口只在结果寄回本窗口（寄回本窗口领取）且已到达后交付"
            } else {
                "属地只在到属地领取的结果（或不予许可决定）已作出、或结果被退回后交付"
            }
        ),
        Reason::SupplyNotAccepted => format!(
            "案件当前为「{}」，尚未受理：缺少的材料请在受理前直接上传，受理后才补交承诺的材料",
            state_or_code(arg("state"))
        ),
        Reason::SupplyAfterDecision => format!(
            "案件当前为「{}」：事项 {} 不实行先证后核，作出决定后不再补交承诺的材料",
            state_or_code(arg("state")),
            arg("item")
        ),
        Reason::SupplyAfterDenial => "本案已不予许可，不再补交任何材料".to_owned(),
        Reason::SupplyNotOutstanding => format!(
            "材料“{}”不是尚待补交的承诺材料（尚待补交：{}）",
            arg("kind"),
            match arg("outstanding") {
                "" => "无".to_owned(),
                kinds => kinds.replace(',', "、"),
            }
        ),
        Reason::MaterialNone => "请至少选择一份材料".to_owned(),
        Reason::TimeFormat => format!("时间“{}”的格式不对：应为日期和时刻", arg("value")),
        Reason::ConsultationInFuture => {
            format!("会商时间 {} 晚于现在：会商结束后再记录", arg("at"))
        }
        Reason::ConsultationNotNeeded => {
            format!("事项 {} 在窗口当面受理，受理时不需要视频会商", arg("item"))
        }
        Reason::RetryNoneParked => "本案没有被退回待重发的移交".to_owned(),
        Reason::ItemUnknown => format!("事项 {} 不在通办事项目录中", arg("item")),
        Reason::ItemWithdrawn => {
            format!("事项 {} 已不在通办事项目录中，不能办理这一步", arg("item"))
        }
        Reason::PaperNone => format!("事项 {} 没有需要邮寄的纸质原件", arg("item")),
        Reason::PaperAlreadyReceived => format!(
            "本案的纸质原件已于 {} 登记收到，无需再次登记",
            crate::page::local_time(arg("at"))
        ),
        Reason::ResultTooLarge => format!(
            "审批结果文件大小为 {}，超过每份材料 {} 的上限",
            arg("size"),
            arg("max")
        ),
        Reason::ResultNotYet => format!(
            "案件当前为「{}」：准予许可后才有审批结果文件",
            state_or_code(arg("state"))
        ),
        Reason::PageTokenUnknown => "翻页地址已失效：请从列表第一页重新翻页".to_owned(),
        Reason::MailEventWrongSide => format!(
            "{}环节的“{}”由{}记录，不在本节点记录",
            super::pages::leg_name(arg("leg")),
            super::pages::mail_status_name(arg("status")),
            if arg("owner") == "window" {
                "受理窗口"
            } else {
                "属地审批部门"
            }
        ),
        Reason::MailEventState => {
            let leg = super::pages::leg_name(arg("leg"));
            let status = super::pages::mail_status_name(arg("status"));
            if arg("replaced") == "yes" {
                format!(
                    "运单 {} 的{leg}已由之后重新交寄的运单取代，不能再记录“{status}”",
                    arg("waybill")
                )
            } else {
                format!(
                    "运单 {} 的{leg}已是“{}”，案件当前为「{}」，不能再记录“{status}”：如需重新寄递，请用新运单号交寄",
                    arg("waybill"),
                    super::pages::mail_status_name(arg("current")),
                    state_or_code(arg("state"))
                )
            }
        }
        Reason::CaseNotFound => format!(
            "本节点（{}）没有编号为 {} 的案件：请核对案件编号（前 6 位是受理地县（区）代码，此号为 {}；中间 8 位是受理日期；最后是序号）",
            arg("county"),
            arg("case_no"),
            arg("issuer")
        ),
        Reason::CaseNotHere => {
            if arg("side") == "window" {
                format!(
                    "案件 {} 不是本窗口（{}）受理的：请在属地审批页面办理",
                    arg("case_no"),
                    arg("county")
                )
            } else {
                format!(
                    "案件 {} 没有移交本县（区）（{}）审查：请在受理窗口页面办理",
                    arg("case_no"),
                    arg("county")
                )
            }
        }
        Reason::WaybillNotFound => format!(
            "本节点（{}）没有运单号为 {} 的寄递：请核对运单号，或确认该运单已在本节点交寄登记",
            arg("county"),
            arg("waybill")
        ),
        Reason::RequestIdFormat => format!(
            "请求编号“{}”不是 UUID（8-4-4-4-12 位十六进制）：请刷新页面后重新提交",
            arg("value")
        ),
        Reason::UploadTruncated => format!(
            "材料“{}”上传不完整：只收到 {} 字节，应为 {} 字节；未保存任何内容，请重新上传",
            arg("kind"),
            arg("received"),
            arg("declared")
        ),
        Reason::UploadTooLong => format!(
            "材料“{}”收到的内容超过申报的 {} 字节；未保存任何内容，请重新上传",
            arg("kind"),
            arg("declared")
        ),
        Reason::UploadDigestMismatch => format!(
            "材料“{}”的内容与申报的 SHA-256 摘要不符（申报 {}，收到 {}）：文件在传输中可能已损坏；未保存任何内容，请重新上传",
            arg("kind"),
            short_hex(arg("declared")),
            short_hex(arg("received"))
        ),
        Reason::UploadDigestLength => format!(
            "材料“{}”申报的 SHA-256 摘要应为 32 字节，现为 {} 字节",
            arg("kind"),
            arg("got")
        ),
        Reason::UploadChunk => format!(
            "上传的数据不按材料顺序（第 {} 份材料）：未保存任何内容，请重新上传",
            arg("material")
        ),
        Reason::ApplicationTimeAhead => format!(
            "申请时间 {} 比属地节点的时钟快 {} 秒（允许误差 {} 秒）：请本窗口节点的管理员校准系统时钟；移交所载的申请时间不变，待属地时间过了该时刻再重新发送",
            crate::page::local_time(arg("at")),
            arg("ahead_s"),
            arg("skew_s")
        ),
        Reason::ApplicationTimeOffDate => format!(
            "申请时间 {} 按北京时间是 {}，与案件编号 {} 的受理日期 {} 不符：重新发送也会被拒收：请本窗口节点的管理员核对系统时钟，并与属地审批部门联系处理本案",
            crate::page::local_time(arg("at")),
            arg("date"),
            arg("case_no"),
            arg("case_date")
        ),
        Reason::ApplicationTimeAfterAcceptance => format!(
            "申请时间 {} 晚于受理时间 {}：重新发送也会被拒收：请本窗口节点的管理员核对系统时钟，并与属地审批部门联系处理本案",
            crate::page::local_time(arg("at")),
            crate::page::local_time(arg("accepted_at"))
        ),
        Reason::CommitmentOutstanding => format!(
            "承诺补交的材料（{}）尚未收到（期限 {}）：本事项须材料齐全后方可准予许可",
            arg("kinds").replace(',', "、"),
            arg("due")
        ),
    }
}

/// The first 12 hex digits of a digest, enough to compare two by eye.
fn short_hex(hex: &str) -> String {
    match hex.get(..12) {
        Some(head) if hex.len() > 12 => format!("{head}…"),
        _ => hex.to_owned(),
    }
}

/// The Chinese words of a refusal a partner node reported for a handoff
/// (its reason code and facts, as the ledger kept them); `None` for a
/// reason this build does not know. The facts are the partner's text:
/// the page escapes them like any other, and says whose words they are.
pub(crate) fn reported(r: &tongban_ledger::ReportedRefusal) -> Option<String> {
    let reason = Reason::parse(&r.reason)?;
    let args: HashMap<String, String> = r.args.clone().into_iter().collect();
    Some(chinese(reason, &r.field, &args))
}

/// A material as the item's directory names it, with its kind beside:
/// `营业执照（licence）`; the kind alone when the node gave no name.
fn material(args: &HashMap<String, String>) -> String {
    let kind = args.get("kind").map_or("", String::as_str);
    match args.get("name").map(String::as_str) {
        Some(name) if !name.is_empty() => format!("{name}（{kind}）"),
        _ => kind.to_owned(),
    }
}

fn delivery_or_code(mode: &str) -> &str {
    match delivery_name(mode) {
        "" => mode,
        name => name,
    }
}

fn state_or_code(state: &str) -> &str {
    match state_name(state) {
        "" => state,
        name => name,
    }
}

/// The words for a failure page: the coded refusal in the page's language
/// or, for one without a code, the node's own words after a line saying in
/// the page's language that the node refused.
pub(crate) fn refused_words(status: &tonic::Status, chain: &str) -> String {
    match words(status) {
        Some(w) => format!("{}{}", t("节点拒绝：", "Refused by the node: "), w.text),
        None => format!("{}{chain}", t("节点拒绝：", "Refused by the node: ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::lang::scope;
    use super::*;
    use tongban_core::{Refusal, ResidentId};

    fn status_of(r: &Refusal, message: &str) -> tonic::Status {
        let details = tongban_proto::common::v1::Refusal {
            reason: r.reason.as_str().to_owned(),
            field: r.field.clone(),
            args: r
                .args
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        };
        tonic::Status::with_details(
            tonic::Code::InvalidArgument,
            message,
            details.encode_to_vec().into(),
        )
    }

    fn has_cjk(s: &str) -> bool {
        s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
    }

    #[test]
    fn every_reason_the_node_can_send_has_chinese_words() {
        // The facts each reason is sent with, as the core makes them.
        let facts = [
            "what",
            "value",
            "expected",
            "got",
            "min",
            "max",
            "position",
            "found",
            "allowed",
            "date",
            "prefix",
            "today",
            "detail",
            "from",
            "to",
            "state",
            "kinds",
            "due",
            "id",
            "missing",
            "identity",
            "item",
            "mode",
            "kind",
            "name",
            "size",
            "days",
            "when",
            "county",
            "home",
            "leg",
            "delivery",
            "side",
            "at",
            "outstanding",
            "ahead_s",
            "skew_s",
            "case_date",
            "case_no",
            "accepted_at",
            "received",
            "declared",
            "material",
            "current",
            "waybill",
            "status",
            "replaced",
            "issuer",
            "side",
        ];
        for reason in Reason::ALL {
            let args: HashMap<String, String> = facts
                .iter()
                .map(|f| ((*f).to_owned(), "QUEUED".to_owned()))
                .collect();
            let zh = chinese(reason, "applicant.phone", &args);
            assert!(has_cjk(&zh), "{reason:?}: {zh}");
            // No English of the node's leaks into the Chinese words.
            assert!(
                !zh.contains("cannot") && !zh.contains(" is "),
                "{reason:?}: {zh}"
            );
        }
    }

    #[test]
    fn a_wrong_check_character_is_worded_at_its_field() {
        let e = "110105194912310021".parse::<ResidentId>().unwrap_err();
        let r = Refusal::from(&e).at("applicant.person.resident_id");
        let status = status_of(&r, &format!("person id: {e}"));
        let w = scope(Lang::Zh, || words(&status)).unwrap();
        assert_eq!(w.field, "applicant.person.resident_id");
        assert!(w.text.starts_with("公民身份号码 110"), "{}", w.text);
        assert!(w.text.contains("应为 X"), "{}", w.text);
        assert!(!w.text.contains("19491231"), "masked: {}", w.text);
        let en = scope(Lang::En, || words(&status)).unwrap();
        assert_eq!(
            en.text,
            format!("person id: {e}"),
            "English pages show the node's words"
        );
    }

    #[test]
    fn a_state_refusal_names_the_state_in_chinese() {
        let r = Refusal::new(
            Reason::StateNotAllowed,
            vec![("state", "UNDER_REVIEW".into())],
        );
        let w = scope(Lang::Zh, || {
            words(&status_of(&r, "case x is UNDER_REVIEW; ..."))
        })
        .unwrap();
        assert_eq!(w.text, "案件当前为「审查中」，不能办理这一步");
    }

    #[test]
    fn material_refusals_name_the_material_as_the_directory_does() {
        let r = Refusal::new(
            Reason::MaterialTooLarge,
            vec![
                ("kind", "licence".into()),
                ("name", "营业执照".into()),
                ("size", "9.0 MiB".into()),
                ("max", "8.0 MiB".into()),
            ],
        )
        .at("materials[1]");
        let w = scope(Lang::Zh, || words(&status_of(&r, "material[1] ..."))).unwrap();
        assert_eq!(w.field, "materials[1]");
        assert_eq!(
            w.text,
            "材料“营业执照（licence）”的文件大小为 9.0 MiB，超过每份材料 8.0 MiB 的上限"
        );
        // Without a name (an older node) the kind stands alone.
        let r = Refusal::new(Reason::MaterialEmpty, vec![("kind", "licence".into())]);
        let w = scope(Lang::Zh, || words(&status_of(&r, "x"))).unwrap();
        assert_eq!(w.text, "材料“licence”的文件是空的：请重新选择文件");
    }

    #[test]
    fn a_delivery_mode_the_item_does_not_allow_is_named_in_chinese() {
        let r = Refusal::new(
            Reason::DeliveryNotAllowed,
            vec![
                ("item", "A-1".into()),
                ("mode", "collect-home".into()),
                ("allowed", "mail-applicant,mail-window".into()),
            ],
        )
        .at("delivery");
        let w = scope(Lang::Zh, || words(&status_of(&r, "delivery: ..."))).unwrap();
        assert_eq!(
            w.text,
            "事项 A-1 不提供“到属地领取”的送达方式；可选：邮寄送达申请人、寄回本窗口领取"
        );
        let en = scope(Lang::En, || words(&status_of(&r, "delivery: item A-1"))).unwrap();
        assert_eq!(en.text, "delivery: item A-1");
    }

    #[test]
    fn commitment_refusals_are_worded_from_the_core_s_errors() {
        let e = tongban_core::CommitmentError::NotWaivable {
            kind: "id-card".into(),
            name: "身份证明".into(),
            item: "GT-0001".into(),
        };
        let r = Refusal::from(&e);
        assert_eq!(r.field, "kinds");
        let w = scope(Lang::Zh, || words(&status_of(&r, &e.to_string()))).unwrap();
        assert_eq!(
            w.text,
            "材料“身份证明（id-card）”在事项 GT-0001 中不可容缺：须在受理前提交，不能以告知承诺补交"
        );
        let e = tongban_core::CommitmentError::Deadline {
            days: 0,
            when: "today",
        };
        let r = Refusal::from(&e);
        assert_eq!(r.field, "days");
        let w = scope(Lang::Zh, || words(&status_of(&r, &e.to_string()))).unwrap();
        assert_eq!(
            w.text,
            "补齐期限 0 个工作日会使截止日为今天：至少给 1 个工作日"
        );
        let e = tongban_core::free_text("commitment signer", " ", 10).unwrap_err();
        let r = Refusal::from(&tongban_core::CommitmentError::Signer(e));
        assert_eq!(
            (r.reason, r.field.as_str()),
            (Reason::TextRequired, "signer")
        );
        let w = scope(Lang::Zh, || words(&status_of(&r, "x"))).unwrap();
        assert_eq!(w.text, "请填写承诺人");
    }

    #[test]
    fn a_hand_out_in_the_wrong_place_says_where_it_is_handed_out() {
        let r = Refusal::new(
            Reason::HandoutNotHere,
            vec![
                ("state", "DENIED".into()),
                ("delivery", "collect-home".into()),
                ("side", "window".into()),
            ],
        );
        let w = scope(Lang::Zh, || words(&status_of(&r, "case x is DENIED ..."))).unwrap();
        assert!(
            w.text
                .starts_with("案件当前为「不予许可」、送达方式为“到属地领取”："),
            "{}",
            w.text
        );
        assert!(w.text.contains("受理窗口只在"), "{}", w.text);
    }

    #[test]
    fn the_steps_a_clerk_or_reviewer_cannot_take_now_are_worded_in_chinese() {
        let zh = |r: Refusal| scope(Lang::Zh, || words(&status_of(&r, "x")).unwrap().text);
        assert_eq!(
            zh(Refusal::new(
                Reason::PaperAlreadyReceived,
                vec![("at", "2026-11-25T02:30:00Z".into())]
            )),
            "本案的纸质原件已于 2026-11-25 10:30:00 登记收到，无需再次登记"
        );
        assert_eq!(
            zh(Refusal::new(
                Reason::SupplyNotOutstanding,
                vec![("kind", "licence".into()), ("outstanding", "a,b".into())]
            )),
            "材料“licence”不是尚待补交的承诺材料（尚待补交：a、b）"
        );
        assert_eq!(
            zh(Refusal::new(
                Reason::ResultNotYet,
                vec![("state", "UNDER_REVIEW".into())]
            )),
            "案件当前为「审查中」：准予许可后才有审批结果文件"
        );
    }

    #[test]
    fn unknown_or_missing_codes_fall_back_to_the_node_s_words() {
        let plain = tonic::Status::invalid_argument("delivery: item x does not allow y");
        assert_eq!(words(&plain), None);
        let newer = tonic::Status::with_details(
            tonic::Code::InvalidArgument,
            "from a newer node",
            tongban_proto::common::v1::Refusal {
                reason: "code.from-the-future".into(),
                ..Default::default()
            }
            .encode_to_vec()
            .into(),
        );
        assert_eq!(words(&newer), None);
        assert_eq!(
            scope(Lang::Zh, || refused_words(
                &plain,
                "invalid argument: delivery: ..."
            )),
            "节点拒绝：invalid argument: delivery: ..."
        );
    }
}

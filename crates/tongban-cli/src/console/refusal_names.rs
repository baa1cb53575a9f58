//! The Chinese names the console gives what a refusal's facts name: the
//! request fields (by proto path), the kinds of code, and what a code
//! allows at a place. Kept apart from the wording of each reason
//! (`refusal.rs`), which reads them.

/// The Chinese name of a request field the node names by its proto path.
pub(super) fn field_name(path: &str) -> Option<&'static str> {
    // `materials[2].filename`, `needs[0].reason`: the list's element is
    // named by its kind where the page shows it; the field is what counts.
    let field = match path.split_once("].") {
        Some((list, rest)) => format!("{}[].{rest}", list.split('[').next().unwrap_or(list)),
        None => path.to_owned(),
    };
    Some(match field.as_str() {
        "applicant.person.name" => "姓名",
        "applicant.person.resident_id" => "公民身份号码",
        "applicant.company.name" => "单位名称",
        "applicant.company.credit_code" => "统一社会信用代码",
        "applicant.company.legal_rep_name" => "法定代表人",
        "applicant.company.legal_rep_id" => "法定代表人公民身份号码",
        "applicant.phone" => "联系电话",
        "applicant.address" => "通讯地址",
        "home_county" => "属地县（区）代码",
        "receiving_county" => "受理地县（区）代码",
        "materials[].filename" => "材料文件名",
        "materials[]" | "materials[].kind" | "needs[].kind" => "材料",
        "needs" => "补正材料",
        "delivery" => "送达方式",
        "result" => "审批结果文件",
        "needs[].reason" => "补正原因",
        "reason" => "理由",
        "licence_no" => "许可证号",
        "reviewer" | "consultation.reviewer" => "属地审批人员",
        "outcome" | "consultation.outcome" => "会商结论",
        "commitment.signer" | "signer" => "承诺人",
        "kinds" => "承诺补交的材料",
        "days" => "补齐期限",
        "carrier" => "寄递企业",
        "note" => "备注",
        "recipient_id" => "领取人公民身份号码",
        "waybill" => "运单号",
        "leg" => "寄递环节",
        "method" => "核验方式",
        "at" => "时间",
        "item_code" => "事项",
        "state" => "案件状态",
        "page_token" => "翻页地址",
        "case_no" => "案件编号",
        "request_id" => "请求编号",
        "applied_at" => "申请时间",
        "status" => "寄递状态",
        _ => return None,
    })
}

/// The Chinese name of a kind of code or value (`what` of the core's
/// errors).
pub(super) fn code_name(what: &str) -> Option<&'static str> {
    Some(match what {
        "resident id" => "公民身份号码",
        "unified social credit code" => "统一社会信用代码",
        "phone number" => "联系电话",
        "county code" => "县（区）代码",
        "waybill" => "运单号",
        "item code" => "事项编码",
        "case number" => "案件编号",
        "leg" => "寄递环节",
        "status" => "寄递状态",
        "addressee" => "收件方",
        "identity method" => "核验方式",
        _ => return None,
    })
}

/// What a code allows at a place, as the core says it, in Chinese.
pub(super) fn allowed_name(allowed: &str) -> &str {
    match allowed {
        "a digit" => "数字",
        "a digit or X" => "数字或 X",
        "a digit or a capital letter other than I, O, S, V, Z" => {
            "数字或大写字母（不含 I、O、S、V、Z）"
        }
        "a letter" => "字母",
        "a digit or '-'" => "数字或“-”",
        "a letter, digit or '-'" => "字母、数字或“-”",
        other => other,
    }
}

//! A verification's problems in the page's language.
//!
//! The audit code says each problem in English for the CLI (its output is
//! fixed, tests/audit.rs) and gives its kind and facts beside
//! ([`Finding::kind`], [`Finding::facts`]); this module words the kinds it
//! knows in Chinese from those. English pages, and a kind not worded yet
//! ([`Problem::Other`]), show the CLI's words.

use crate::audit::node::{Break, Finding, Problem};

use super::lang::{Lang, lang};

/// What the page says about `f`.
pub(crate) fn words(f: &Finding) -> String {
    match lang() {
        Lang::En => f.text.clone(),
        Lang::Zh => chinese(f).unwrap_or_else(|| f.text.clone()),
    }
}

/// What the page says is wrong with the entry where the chain broke, to
/// follow "entry N fails:" (English: the CLI's `why`).
pub(crate) fn why(b: &Break) -> String {
    let f = Finding {
        seq: Some(b.seq),
        case_no: b.case_no.clone(),
        text: b.why.clone(),
        kind: b.kind,
        facts: b.facts.clone(),
    };
    words(&f)
}

/// The Chinese words for `f`, if its kind has them.
fn chinese(f: &Finding) -> Option<String> {
    let arg = |name: &str| {
        f.facts
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    };
    // The receipt a receipt check concerns, as its facts name it.
    let whose = || match (arg("role"), arg("entry")) {
        ("held", entry) => format!("节点 {} 持有的回执（条目 {entry}）", arg("county")),
        (_, "") => format!("节点 {} 为案件 {} 出具的回执", arg("county"), arg("case")),
        (_, entry) => format!(
            "节点 {} 为案件 {} 出具的回执（其条目 {entry}）",
            arg("county"),
            arg("case")
        ),
    };
    let handoff = arg("handoff");
    let stored = || match arg("stored") {
        "log" => "materials.log 中",
        _ => "其文件中",
    };
    Some(match f.kind {
        Problem::ChainUndecodable => format!("账本条目 {} 无法解码，哈希链在此中断", arg("seq")),
        Problem::ChainMissing => format!(
            "账本缺少条目 {}（其后出现的是条目 {}），哈希链在此中断",
            arg("seq"),
            arg("came")
        ),
        Problem::ChainAltered => format!(
            "账本条目 {} 已被改动：它的哈希与条目 {} 记录的前一条哈希（prev_hash）不符",
            arg("seq"),
            arg("next")
        ),
        Problem::ChainPayload => format!(
            "账本条目 {} 的内容与其记录的摘要（payload_sha256）不符",
            arg("seq")
        ),
        Problem::ChainCheckpoint => format!("账本至条目 {} 与节点签名的检查点不符", arg("seq")),
        Problem::EntriesDropped => format!(
            "节点 {} 的账本止于条目 {}，但本控制台此前已核验到条目 {}：有条目被删除",
            arg("county"),
            arg("kept"),
            arg("head")
        ),
        Problem::HistoryRewritten => format!(
            "节点 {} 的账本条目 {} 已不是本控制台此前核验过的那一条（此前核验到条目 {}）：历史记录被改写",
            arg("county"),
            arg("seq"),
            arg("head")
        ),
        Problem::MaterialUnnamed => format!(
            "节点 {} 案件 {} 的材料 {}：其摘要不见于该案的任何账本条目",
            arg("county"),
            arg("case"),
            arg("kind")
        ),
        Problem::MaterialUnreadable => format!(
            "节点 {} 案件 {} 的材料 {}（账本条目 {}）在{}无法读取：{}",
            arg("county"),
            arg("case"),
            arg("kind"),
            arg("seq"),
            stored(),
            arg("detail")
        ),
        Problem::MaterialAltered => format!(
            "节点 {} 案件 {} 的材料 {}（账本条目 {}）已被改动：{}的 {} 字节与条目记录的摘要不符（条目记录 {} 字节）",
            arg("county"),
            arg("case"),
            arg("kind"),
            arg("seq"),
            stored(),
            arg("size"),
            arg("recorded_size")
        ),
        Problem::ReceiptUndecodable if arg("role").is_empty() => {
            format!("交接 {handoff}：为案件 {} 出具的回执无法解码", arg("case"))
        }
        Problem::ReceiptUndecodable => format!("交接 {handoff}：{}无法解码", whose()),
        Problem::ReceiptSignature => format!(
            "交接 {handoff}：{}的签名未通过核验（{}）",
            whose(),
            arg("detail")
        ),
        Problem::ReceiptSigner => format!(
            "交接 {handoff}：{}由节点 {} 签名，而不是由接收方节点 {} 签名",
            whose(),
            arg("signer"),
            arg("to")
        ),
        Problem::ReceiptOtherHandoff => format!(
            "交接 {handoff}：回执写的是从 {} 到 {} 的交接 {}，而不是从 {} 到 {} 的这次交接",
            arg("named_from"),
            arg("named_to"),
            arg("named"),
            arg("from"),
            arg("to")
        ),
        Problem::ReceiptOtherCase => format!(
            "交接 {handoff}：{}写的是案件 {}，而不是案件 {}",
            whose(),
            arg("named"),
            arg("case")
        ),
        Problem::ReceiptEnvelope => format!(
            "交接 {handoff}：{}写的信封摘要 {} 与节点的接收记录 {} 不符（envelope_sha256）",
            whose(),
            arg("named"),
            arg("recorded")
        ),
        Problem::ReceiptNoEntry => format!(
            "交接 {handoff}：{}写明记入账本条目 {}，但节点 {} 没有任何条目记录收到这次交接",
            whose(),
            arg("named"),
            arg("county")
        ),
        Problem::ReceiptOtherEntry => format!(
            "交接 {handoff}：{}写明记入账本条目 {}，但节点 {} 是在条目 {} 记录收到的",
            whose(),
            arg("named"),
            arg("county"),
            arg("seq")
        ),
        Problem::ReceivedEnvelope => format!(
            "交接 {handoff}：节点 {} 的条目 {} 记录的信封摘要 {} 与{}写的 {} 不符（envelope_sha256）",
            arg("county"),
            arg("seq"),
            arg("recorded"),
            whose(),
            arg("named")
        ),
        Problem::ReceivedMaterials => format!(
            "交接 {handoff}：节点 {} 的条目 {} 记录的材料与{}所列的不符（materials）",
            arg("county"),
            arg("seq"),
            whose()
        ),
        Problem::HeldReceiverSeq => format!(
            "交接 {handoff}：条目 {} 记载 {} 的回执写明其条目 {}，回执实际写的是条目 {}（receiver_seq）",
            arg("entry"),
            arg("to"),
            arg("recorded"),
            arg("named")
        ),
        Problem::HeldNothingSent => format!(
            "交接 {handoff}：节点 {} 持有回执（条目 {}），却没有记录当初发送内容的条目",
            arg("county"),
            arg("entry")
        ),
        Problem::SentEnvelope => format!(
            "交接 {handoff}：节点 {} 在条目 {} 记录发送的信封摘要为 {}，但 {} 签收的是 {}（envelope_sha256）",
            arg("county"),
            arg("sent"),
            arg("recorded"),
            arg("to"),
            arg("named")
        ),
        Problem::SentMaterials => format!(
            "交接 {handoff}：节点 {} 在条目 {} 记录发送的材料与 {} 签收的不符（materials）",
            arg("county"),
            arg("sent"),
            arg("to")
        ),
        Problem::SentResult => format!(
            "交接 {handoff}：节点 {} 在条目 {} 记录准予许可的审批结果文件（{} 字节，SHA-256 {}）不是 {} 签收的那一份（{}）",
            arg("county"),
            arg("sent"),
            arg("size"),
            arg("sha256"),
            arg("to"),
            match arg("named_sha256") {
                "" => "回执未列出审批结果文件".to_owned(),
                sha => format!("回执所列为 {} 字节，SHA-256 {sha}", arg("named_size")),
            }
        ),
        Problem::Unreceipted => format!(
            "交接 {}：节点 {} 在条目 {} 记录已接收，却没有它出具的回执",
            arg("handoff"),
            arg("county"),
            arg("seq")
        ),
        Problem::Other => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::super::lang::scope;
    use super::*;

    fn finding(kind: Problem, facts: &[(&'static str, &str)]) -> Finding {
        Finding {
            seq: Some(2),
            case_no: String::new(),
            text: "node 610113: ledger entry 2 was altered: x".into(),
            kind,
            facts: facts.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
        }
    }

    #[test]
    fn a_coded_problem_is_worded_in_chinese_and_english_keeps_the_cli_s_words() {
        let f = finding(Problem::ChainAltered, &[("seq", "2"), ("next", "3")]);
        assert_eq!(
            scope(Lang::Zh, || words(&f)),
            "账本条目 2 已被改动：它的哈希与条目 3 记录的前一条哈希（prev_hash）不符"
        );
        assert_eq!(scope(Lang::En, || words(&f)), f.text);
        let f = finding(
            Problem::MaterialAltered,
            &[
                ("county", "610113"),
                ("case", "610702-20261201-1"),
                ("kind", "licence"),
                ("seq", "7"),
                ("stored", "log"),
                ("size", "9"),
                ("recorded_size", "10"),
            ],
        );
        let zh = scope(Lang::Zh, || words(&f));
        assert!(zh.contains("materials.log 中的 9 字节"), "{zh}");
    }

    #[test]
    fn receipt_problems_name_the_receipt_as_held_or_given() {
        let context = [
            ("handoff", "h-1"),
            ("county", "610113"),
            ("case", "610702-20261201-1"),
        ];
        let with = |kind,
                    role: &'static str,
                    entry: &'static str,
                    more: &[(&'static str, &'static str)]| {
            let mut facts = context.to_vec();
            facts.extend([("role", role), ("entry", entry)]);
            facts.extend_from_slice(more);
            scope(Lang::Zh, || words(&finding(kind, &facts)))
        };
        assert_eq!(
            with(Problem::ReceiptOtherCase, "given", "12", &[("named", "x")]),
            "交接 h-1：节点 610113 为案件 610702-20261201-1 出具的回执（其条目 12）写的是案件 x，而不是案件 610702-20261201-1"
        );
        assert_eq!(
            with(Problem::HeldNothingSent, "held", "9", &[]),
            "交接 h-1：节点 610113 持有回执（条目 9），却没有记录当初发送内容的条目"
        );
        let result = with(
            Problem::SentResult,
            "held",
            "9",
            &[
                ("sent", "8"),
                ("to", "610702"),
                ("size", "5"),
                ("sha256", "ab"),
                ("named_size", "5"),
                ("named_sha256", "cd"),
            ],
        );
        assert_eq!(
            result,
            "交接 h-1：节点 610113 在条目 8 记录准予许可的审批结果文件（5 字节，SHA-256 ab）不是 610702 签收的那一份（回执所列为 5 字节，SHA-256 cd）"
        );
    }

    #[test]
    fn a_kind_not_worded_yet_shows_the_cli_s_words() {
        let f = finding(Problem::Other, &[]);
        assert_eq!(scope(Lang::Zh, || words(&f)), f.text);
    }
}

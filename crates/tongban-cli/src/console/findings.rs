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
        Problem::ReceiptUndecodable => format!(
            "交接 {}：为案件 {} 出具的回执无法解码",
            arg("handoff"),
            arg("case")
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
    fn a_kind_not_worded_yet_shows_the_cli_s_words() {
        let f = finding(Problem::Other, &[]);
        assert_eq!(scope(Lang::Zh, || words(&f)), f.text);
    }
}

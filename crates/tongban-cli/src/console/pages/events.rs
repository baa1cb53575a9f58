//! A case history entry's detail in the page's language.
//!
//! The node writes each entry's detail once, in English; the entry's typed
//! payload (`CaseEvent.payload`, the ledger's JSON) says the same in facts.
//! Chinese pages word the detail from those facts, one arm per entry kind
//! (a new kind does not compile until it is worded); English pages, and an
//! entry whose payload does not decode, show the node's detail. Text people
//! typed (a reason, a carrier's note, a signer's name) is shown as typed.

use maud::{Markup, html};
use tongban_ledger::{DueClock, EntryBody, MaterialFact, Payload};
use tongban_proto::common::v1::{CaseEvent, CaseView};

use super::lang::{Lang, lang};
use super::steps::{leg_name, leg_to, mail_status_name};
use super::{delivery_name, event_label, identity_method, local_time, material_name};

/// The detail of history entry `e` of case `k`.
pub(super) fn detail(k: &CaseView, e: &CaseEvent) -> Markup {
    if lang() == Lang::En {
        return html! { (e.detail) };
    }
    match Payload::decode(&e.event, &e.payload) {
        Ok(p) => {
            let (words, node_words) = chinese(k, &p);
            html! {
                (words)
                // A cause only the node's English records (a partner's
                // refusal, a transport error) follows, marked as the node's.
                @if node_words { br; span.dim lang="en" { "节点记录：" (e.detail) } }
            }
        }
        Err(_) => html! { span lang="en" { (e.detail) } },
    }
}

/// The case's note (its next step or last delivery problem, in the node's
/// English). Chinese pages word it from what set it: the entry whose detail
/// it is (or whose reported detail, for a partner's report); at the window
/// before acceptance, the missing materials and the identity check it
/// lists; on a case handed off, the held receipt. Any other note (a
/// delivery problem, say) is shown as the node wrote it, marked as its
/// record, after what the state says.
pub(super) fn note(k: &CaseView) -> Markup {
    if lang() == Lang::En {
        return html! { (k.note) };
    }
    let reported = format!(": {}", k.note);
    // A parked handoff's note is its entry's detail and what to do next.
    let set_by = k.history.iter().rev().find(|e| {
        e.detail == k.note
            || (e.event == "update.received" && e.detail.ends_with(&reported))
            || (matches!(e.event.as_str(), "handoff.refused" | "handoff.parked")
                && k.note.starts_with(&format!("{}; ", e.detail)))
    });
    if let Some(e) = set_by {
        return detail(k, e);
    }
    let home = county_name(k, &k.home_county);
    let (words, node_words) = match k.state.as_str() {
        "CORRECTION_AT_WINDOW" | "READY_AT_WINDOW" => {
            let mut needs = Vec::new();
            if !k.missing.is_empty() {
                let names: Vec<&str> = k.missing.iter().map(|m| material_name(k, m)).collect();
                needs.push(format!("一次性补正，尚缺 {}", names.join("、")));
            }
            if k.identity_check.is_none() {
                needs.push("申请人身份尚未核验".to_owned());
            }
            let words = if needs.is_empty() {
                "材料齐全：受理后即排队移交属地".to_owned()
            } else {
                needs.join("；")
            };
            (words, false)
        }
        "HANDED_OFF" => (format!("已移交{home}，对方已签收回执；等待属地受理"), false),
        "QUEUED" => (format!("已受理，等待移交{home}"), true),
        _ => (String::new(), true),
    };
    html! {
        (words)
        @if node_words {
            @if !words.is_empty() { br; }
            span.dim { "节点记录：" } span lang="en" { (k.note) }
        }
    }
}

/// The Chinese words for payload `p`, and whether the node's English
/// detail holds a cause the words cannot give.
fn chinese(k: &CaseView, p: &Payload) -> (String, bool) {
    let names = |kinds: &[String]| -> String {
        kinds
            .iter()
            .map(|kind| material_name(k, kind))
            .collect::<Vec<_>>()
            .join("、")
    };
    let facts = |m: &[MaterialFact]| -> String {
        m.iter()
            .map(|f| material_name(k, &f.kind))
            .collect::<Vec<_>>()
            .join("、")
    };
    let county = |code: &str| county_name(k, code);
    let sent_to = p.sent.as_ref().map(|s| county(s.to.as_str()));
    let from = p.received.as_ref().map(|r| county(r.from.as_str()));
    let received = p
        .received
        .as_ref()
        .map(|r| facts(&r.materials))
        .unwrap_or_default();
    let words = match &p.body {
        EntryBody::CaseApplied {
            item,
            home,
            delivery,
            missing,
            ..
        } => {
            let item = if item.as_str() == k.item_code && !k.item_name.is_empty() {
                k.item_name.clone()
            } else {
                item.as_str().to_owned()
            };
            let rest = if missing.is_empty() {
                "材料齐全".to_owned()
            } else {
                format!("缺少 {}", names(missing))
            };
            format!(
                "收件：{item}，属地{}，{}；{rest}",
                county(home.as_str()),
                delivery_name(delivery.as_str())
            )
        }
        EntryBody::CaseAttached { materials, missing } => {
            let rest = if missing.is_empty() {
                "材料已齐".to_owned()
            } else {
                format!("仍缺 {}", names(missing))
            };
            format!("补充材料 {}；{rest}", facts(materials))
        }
        EntryBody::IdentityVerified { method } => {
            format!("申请人身份核验：{}", identity_method(method))
        }
        EntryBody::CaseAccepted { materials } => format!(
            "窗口受理；{} 份材料移交{}，已排队",
            materials.len(),
            sent_to.unwrap_or_default()
        ),
        EntryBody::CommitmentSigned {
            signer,
            kinds,
            due_date,
        } => format!(
            "{signer} 签署告知承诺：{} 于 {due_date} 前补交",
            names(kinds)
        ),
        EntryBody::ConsultationRecorded {
            at,
            reviewer,
            outcome,
        } => format!(
            "异地视频会商（{}，属地 {reviewer}）：{outcome}",
            local_time(at)
        ),
        EntryBody::CommitmentSupplied {
            materials,
            outstanding,
        } => {
            let rest = if outstanding.is_empty() {
                "告知承诺已履行".to_owned()
            } else {
                format!("仍待补交 {}", names(outstanding))
            };
            let how = match (&sent_to, &from) {
                (Some(to), _) => format!("，移交{to}已排队"),
                (None, Some(from)) => format!("，收自{from}"),
                (None, None) => String::new(),
            };
            format!("补交承诺材料 {}{how}；{rest}", facts(materials))
        }
        EntryBody::CaseResubmitted { materials } => format!(
            "补正材料 {} 移交{}，已排队",
            facts(materials),
            sent_to.unwrap_or_default()
        ),
        EntryBody::CaseClosed { recipient } => format!("已交付领取人 {recipient}，办结"),
        EntryBody::HandoffReceipted { to, .. } => {
            format!("收到{}签名的接收回执", county(to.as_str()))
        }
        EntryBody::HandoffRefused { to, reported, .. } => {
            // The partner's reason is its report, said as such: the refusal
            // is its decision, not this node's.
            let to = county(to.as_str());
            let words = match reported
                .as_ref()
                .and_then(crate::console::refusal::reported)
            {
                Some(why) => format!("{to}拒收本次移交，已暂停。{to}节点说明：{why}"),
                None => format!("{to}拒收本次移交，已暂停"),
            };
            return (words, true);
        }
        EntryBody::HandoffParked { to, .. } => {
            let words = format!("向{}的移交多次未成功，已暂停自动重试", county(to.as_str()));
            return (words, true);
        }
        EntryBody::HandoffRetried { handoff_ids } => {
            format!("已暂停的移交重新排队（{} 个）", handoff_ids.len())
        }
        EntryBody::HandoffReceived => format!(
            "收到{}移交的案件{}",
            from.unwrap_or_default(),
            if received.is_empty() {
                String::new()
            } else {
                format!("（材料 {received}）")
            }
        ),
        EntryBody::SupplementReceived => {
            format!("收到{}的补正材料 {received}", from.unwrap_or_default())
        }
        EntryBody::UpdateReceived { event } => {
            format!("{}告知：{}", from.unwrap_or_default(), event_label(event))
        }
        EntryBody::ReviewAccepted {
            due_date,
            promised_days,
        } => format!("属地受理：承诺 {promised_days} 个工作日内办结，期限 {due_date}"),
        EntryBody::CorrectionRequested {
            needs, deadline, ..
        } => {
            let kinds: Vec<String> = needs.iter().map(|(kind, _)| kind.clone()).collect();
            format!(
                "一次性告知补正：{}；补正期限 {deadline}；承诺时限暂停计算",
                names(&kinds)
            )
        }
        EntryBody::SupplementTaken => "补正材料已收到，承诺时限恢复计算".to_owned(),
        EntryBody::PaperReceived { kinds } => format!("收到纸质原件 {}", names(kinds)),
        EntryBody::Approved { licence_no, .. } => {
            if licence_no.is_empty() {
                "准予许可".to_owned()
            } else {
                format!("准予许可，许可证号 {licence_no}")
            }
        }
        EntryBody::Denied { reason } => format!("不予许可，理由：{reason}"),
        EntryBody::MailSent {
            leg,
            carrier,
            waybill,
            to,
        } => format!(
            "{}交寄 {carrier}，运单号 {waybill}，寄往{}",
            leg_name(leg.as_str()),
            leg_to(to.as_str())
        ),
        EntryBody::MailEvent {
            waybill,
            status,
            note,
            ..
        } => {
            let note = if note.is_empty() {
                String::new()
            } else {
                format!("（{note}）")
            };
            format!(
                "运单 {waybill}：{}{note}",
                mail_status_name(status.as_str())
            )
        }
        EntryBody::ReceiptReissued { from, .. } => {
            format!("重新签发对{}移交的接收回执", county(from.as_str()))
        }
        EntryBody::DueRecomputed { changes, .. } => {
            let moved: Vec<String> = changes
                .iter()
                .map(|c| format!("{} {} → {}", clock_name(c.clock), c.old, c.new))
                .collect();
            format!("按现行节假日安排重新计算：{}", moved.join("；"))
        }
        EntryBody::AuditQuery { query } => format!("审计查询：{query}"),
    };
    (words, false)
}

fn clock_name(clock: DueClock) -> &'static str {
    match clock {
        DueClock::Promise => "承诺办结日期",
        DueClock::PausedPromise => "剩余工作日（暂停中）",
        DueClock::Correction => "补正期限",
        DueClock::Commitment => "承诺补交期限",
    }
}

/// A county of the case by the name the case view gives it, else its code.
fn county_name(k: &CaseView, code: &str) -> String {
    let name = if code == k.receiving_county {
        &k.receiving_county_name
    } else if code == k.home_county {
        &k.home_county_name
    } else {
        ""
    };
    if name.is_empty() {
        code.to_owned()
    } else {
        format!("{name}（{code}）")
    }
}

#[cfg(test)]
mod tests {
    use super::super::lang::scope;
    use super::*;
    use tongban_proto::common::v1::RequiredMaterial;

    fn case() -> CaseView {
        CaseView {
            item_code: "GT-0001".into(),
            item_name: "个体工商户设立登记".into(),
            receiving_county: "610702".into(),
            receiving_county_name: "汉台区".into(),
            home_county: "610113".into(),
            home_county_name: "雁塔区".into(),
            required_materials: vec![RequiredMaterial {
                kind: "id-card".into(),
                name: "身份证".into(),
            }],
            ..Default::default()
        }
    }

    fn event(body: EntryBody, detail: &str) -> CaseEvent {
        let payload = Payload::new(detail, body);
        CaseEvent {
            event: payload.body.kind().to_owned(),
            detail: detail.to_owned(),
            payload: payload.encode(),
            ..Default::default()
        }
    }

    #[test]
    fn a_history_detail_is_worded_from_its_payload() {
        let k = case();
        let applied = event(
            EntryBody::CaseApplied {
                item: "GT-0001".parse().unwrap(),
                home: "610113".parse().unwrap(),
                delivery: "mail-applicant".parse().unwrap(),
                materials: Vec::new(),
                missing: vec!["id-card".into()],
            },
            "applied for 个体工商户设立登记 (GT-0001), home 610113, delivery mail-applicant; missing id-card",
        );
        let zh = scope(Lang::Zh, || detail(&k, &applied).into_string());
        assert_eq!(
            zh,
            "收件：个体工商户设立登记，属地雁塔区（610113），邮寄送达申请人；缺少 身份证"
        );
        let en = scope(Lang::En, || detail(&k, &applied).into_string());
        assert!(en.starts_with("applied for"), "{en}");
        // Typed text stays as typed.
        let denied = event(
            EntryBody::Denied {
                reason: "经营场所不符合规划用途".into(),
            },
            "denied: 经营场所不符合规划用途; mail the written denial",
        );
        let zh = scope(Lang::Zh, || detail(&k, &denied).into_string());
        assert_eq!(zh, "不予许可，理由：经营场所不符合规划用途");
    }

    #[test]
    fn a_cause_only_the_node_records_follows_marked() {
        let k = case();
        let parked = event(
            EntryBody::HandoffParked {
                handoff_id: "h-1".into(),
                to: "610113".parse().unwrap(),
            },
            "handoff parked: the partner refused the certificate",
        );
        let zh = scope(Lang::Zh, || detail(&k, &parked).into_string());
        assert!(zh.starts_with("向雁塔区（610113）的移交多次未成功"), "{zh}");
        assert!(zh.contains("节点记录：handoff parked"), "{zh}");
    }

    #[test]
    fn a_note_set_by_an_entry_is_that_entry_in_chinese() {
        let mut k = case();
        k.history = vec![event(
            EntryBody::PaperReceived {
                kinds: vec!["id-card".into()],
            },
            "paper originals received (id-card)",
        )];
        k.note = "paper originals received (id-card)".into();
        assert_eq!(
            scope(Lang::Zh, || note(&k).into_string()),
            "收到纸质原件 身份证"
        );
        k.note = "not yet delivered to 610113: connection refused; next try in 30 s".into();
        k.state = "QUEUED".into();
        let zh = scope(Lang::Zh, || note(&k).into_string());
        assert!(zh.starts_with("已受理，等待移交雁塔区（610113）"), "{zh}");
        assert!(
            zh.contains("节点记录") && zh.contains("lang=\"en\""),
            "{zh}"
        );
        // At the window the note lists what is missing: worded from the
        // case's own missing list and identity check.
        k.state = "CORRECTION_AT_WINDOW".into();
        k.missing = vec!["id-card".into()];
        k.note = "一次性补正 — missing materials: id-card; identity not yet verified".into();
        assert_eq!(
            scope(Lang::Zh, || note(&k).into_string()),
            "一次性补正，尚缺 身份证；申请人身份尚未核验"
        );
        // A partner's report sets the note to its own detail.
        k.state = "APPROVED".into();
        k.history.push(event(
            EntryBody::UpdateReceived {
                event: "review.approved".into(),
            },
            "review.approved at 610113: approved; licence 1",
        ));
        k.note = "approved; licence 1".into();
        let zh = scope(Lang::Zh, || note(&k).into_string());
        assert!(
            zh.contains("告知：准予许可") && !zh.contains("licence"),
            "{zh}"
        );
    }

    #[test]
    fn a_partner_s_coded_refusal_is_its_report_worded_in_chinese_and_escaped() {
        let mut k = case();
        k.state = "QUEUED".into();
        let detail = "refused by 610113 (INVALID): applied_at <b>x</b> is 7200 s ahead";
        let reported = tongban_ledger::ReportedRefusal::check(
            "application-time.ahead".into(),
            "applied_at".into(),
            [
                ("at".to_owned(), "<script>x</script>".to_owned()),
                ("ahead_s".to_owned(), "7200".to_owned()),
                ("skew_s".to_owned(), "300".to_owned()),
            ],
        );
        k.history = vec![event(
            EntryBody::HandoffRefused {
                handoff_id: "h".into(),
                to: "610113".parse().unwrap(),
                reported,
            },
            detail,
        )];
        k.note = format!("{detail}; the handoff is parked: fix the cause, then retry");
        let zh = scope(Lang::Zh, || note(&k).into_string());
        assert!(
            zh.starts_with(
                "雁塔区（610113）拒收本次移交，已暂停。雁塔区（610113）节点说明：申请时间"
            ),
            "{zh}"
        );
        assert!(zh.contains("快 7200 秒（允许误差 300 秒）"), "{zh}");
        assert!(zh.contains("请本窗口节点的管理员校准系统时钟"), "{zh}");
        // The partner's text is escaped, and its English marked as the record.
        assert!(
            !zh.contains("<script>") && zh.contains("&lt;script&gt;"),
            "{zh}"
        );
        assert!(!zh.contains("<b>") && zh.contains("节点记录"), "{zh}");
        // A reason this build does not know: the English alone, after the
        // words that say who refused.
        let unknown =
            tongban_ledger::ReportedRefusal::check("from.the-future".into(), String::new(), []);
        k.history = vec![event(
            EntryBody::HandoffRefused {
                handoff_id: "h".into(),
                to: "610113".parse().unwrap(),
                reported: unknown,
            },
            detail,
        )];
        let zh = scope(Lang::Zh, || note(&k).into_string());
        assert!(
            zh.starts_with("雁塔区（610113）拒收本次移交，已暂停<br>"),
            "{zh}"
        );
        // Text not in the codes' shape is not kept as a code at all.
        assert_eq!(
            tongban_ledger::ReportedRefusal::check("Not A Code".into(), String::new(), []),
            None
        );
    }
}

//! The trace as one self-contained HTML page: the verdict and every problem
//! on top, then the case's events down the page in time order beside a
//! graph with a lane per county and the handoffs as arrows between lanes,
//! then the same events as a table. The arrows stay in the graph and the
//! labels in a column of their own, so no arrow crosses a label however
//! many counties there are. Times are China Standard Time; counties are
//! named beside their codes where the nodes' directories name them. No
//! scripts, no external files: it opens anywhere and prints as it looks.

// SVG fragments read best as raw strings ending in their own newline.
#![allow(clippy::write_with_newline)]

use std::collections::BTreeMap;
use std::fmt::Write;

use super::verify::Report;
use crate::page::{FONTS, esc, local_time};

/// What a ledger entry kind means, for people; `None` for a kind this
/// version does not know (shown as it is).
pub(crate) fn kind_label(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "case.applied" => "收件 · applied at the window",
        "case.attached" => "补充材料 · materials attached",
        "case.identity-verified" => "身份核验 · identity verified",
        "case.accepted" => "窗口受理 · accepted at the window",
        "case.resubmitted" => "提交补正 · supplement sent",
        "case.commitment-signed" => "告知承诺 · commitment signed",
        "case.commitment-supplied" => "承诺补交 · committed materials supplied",
        "case.video-consultation" => "视频会商 · video consultation at intake",
        "case.closed" => "办结 · handed out, closed",
        "case.due-recomputed" => "重算期限 · due dates counted again (new holiday calendar)",
        "handoff.receipted" => "收到回执 · signed receipt held",
        "handoff.refused" => "被拒收 · handoff refused",
        "handoff.parked" => "暂停投递 · handoff parked",
        "handoff.retried" => "重新投递 · handoffs queued again",
        "handoff.received" => "收到案件 · case received",
        "supplement.received" => "收到补正 · supplement received",
        "update.received" => "收到通报 · partner's report",
        "review.accepted" => "受理 · accepted for review",
        "review.correction-requested" => "要求补正 · correction requested",
        "review.supplement-received" => "补正已收 · supplement taken in",
        "review.paper-received" => "原件已收 · paper originals received",
        "review.approved" => "准予许可 · approved",
        "review.denied" => "不予许可 · denied",
        "mail.sent" => "寄出 · mailed",
        "mail.event" => "邮件动态 · carrier event",
        "audit.query" => "审计查询 · audit query",
        _ => return None,
    })
}

/// The label of an event: its kind's meaning, and for a partner's report
/// (`update.received`, whose detail starts `EVENT at COUNTY: ...`) what was
/// reported.
fn event_label(kind: &str, detail: &str, names: &BTreeMap<String, String>) -> String {
    if kind == "update.received"
        && let Some((event, rest)) = detail.split_once(" at ")
        && let Some(reported) = kind_label(event)
        && let Some((county, _)) = rest.split_once(':')
    {
        return format!("收到通报 · {} reports: {reported}", named(county, names));
    }
    kind_label(kind).map_or_else(|| kind.to_owned(), str::to_owned)
}

/// `汉台区 610702`, or the code alone.
fn named(code: &str, names: &BTreeMap<String, String>) -> String {
    match names.get(code) {
        Some(name) => format!("{name} {code}"),
        None => code.to_owned(),
    }
}

/// Renders the report; `names` maps county codes to names.
pub(crate) fn render(report: &Report, names: &BTreeMap<String, String>) -> String {
    // Lanes in the order the counties first appear: the receiving county
    // (where the case starts) on the left.
    let mut lanes: Vec<String> = Vec::new();
    let appearing = report
        .timeline
        .iter()
        .map(|e| &e.county)
        .chain(report.handoffs.iter().flat_map(|a| [&a.from, &a.to]));
    for county in appearing {
        if !lanes.contains(county) {
            lanes.push(county.clone());
        }
    }
    let lane_w = 120.0;
    let row_h = 46.0;
    let top = 70.0;
    let graph_w = lanes.len().max(1) as f64 * lane_w;
    let text_x = graph_w + 16.0;
    let width = text_x + 640.0;
    let height = top + report.timeline.len() as f64 * row_h + 20.0;
    let x_of = |county: &str| {
        lanes.iter().position(|l| l == county).unwrap_or(0) as f64 * lane_w + lane_w / 2.0
    };
    let y_of_row = |i: usize| top + i as f64 * row_h + 16.0;
    let row_of = |county: &str, seq: u64| {
        report
            .timeline
            .iter()
            .position(|e| e.county == county && e.seq == seq)
            .map(y_of_row)
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-size="13">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#1f6feb"/></marker>
<marker id="bad" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#cf222e"/></marker></defs>
"##
    );
    for (i, county) in lanes.iter().enumerate() {
        let x = i as f64 * lane_w;
        let mid = x + lane_w / 2.0;
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="0" width="{lane_w}" height="{height}" fill="{}"/>
<text x="{mid}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text><text x="{mid}" y="44" text-anchor="middle" fill="#57606a">{}</text>
<line x1="{mid}" y1="56" x2="{mid}" y2="{}" stroke="#8c959f" stroke-dasharray="4 3"/>
"##,
            if i % 2 == 0 { "#f6f8fa" } else { "#eef1f4" },
            esc(names.get(county).map_or(county.as_str(), String::as_str)),
            if names.contains_key(county) {
                esc(county)
            } else {
                String::new()
            },
            height - 10.0,
        );
    }
    // Row guides from each event's dot to its label, under the arrows.
    for (i, e) in report.timeline.iter().enumerate() {
        let y = y_of_row(i);
        let _ = write!(
            svg,
            r##"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="#d0d7de" stroke-width="1"/>
"##,
            x_of(&e.county),
            text_x - 4.0
        );
    }
    for a in &report.handoffs {
        if let (Some(y1), Some(y2)) = (row_of(&a.from, a.sent_seq), row_of(&a.to, a.received_seq)) {
            let (color, marker) = if a.matched {
                ("#1f6feb", "arrow")
            } else {
                ("#cf222e", "bad")
            };
            let (x1, x2) = (x_of(&a.from), x_of(&a.to));
            // Stop short of the receiving dot so the head stays visible.
            let x2 = if x2 > x1 { x2 - 7.0 } else { x2 + 7.0 };
            let _ = write!(
                svg,
                r##"<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{color}" stroke-width="2" marker-end="url(#{marker})"><title>handoff {}</title></line>
"##,
                esc(&a.handoff_id)
            );
        }
    }
    for (i, e) in report.timeline.iter().enumerate() {
        let y = y_of_row(i);
        let _ = write!(
            svg,
            r##"<circle cx="{}" cy="{y}" r="6" fill="#0969da"/><text x="{text_x}" y="{}" font-weight="bold">#{} {}</text><text x="{text_x}" y="{}" fill="#57606a">{} · {} · {}</text>
"##,
            x_of(&e.county),
            y - 3.0,
            e.seq,
            esc(&event_label(&e.event, &e.detail, names)),
            y + 14.0,
            esc(&local_time(&e.at)),
            esc(&named(&e.county, names)),
            esc(&e.who())
        );
    }
    svg.push_str("</svg>\n");

    let mut rows = String::new();
    for e in &report.timeline {
        let _ = writeln!(
            rows,
            "<tr><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td>{}</td><td>{}<br><span class=\"kind\">#{} {}</span></td><td>{}</td></tr>",
            esc(&local_time(&e.at)),
            esc(&named(&e.county, names)),
            esc(&e.who()),
            esc(&event_label(&e.event, &e.detail, names)),
            e.seq,
            esc(&e.event),
            esc(&e.detail)
        );
    }
    let verdict = if report.verified {
        "<p class=\"ok\">VERIFIED — every chain, checkpoint, receipt and handoff checks out.</p>"
            .to_owned()
    } else {
        let items: String = report
            .problems
            .iter()
            .map(|p| format!("<li>{}</li>", esc(p)))
            .collect();
        format!(
            "<p class=\"bad\">FAILED — {} problem(s):</p><ul>{items}</ul>",
            report.problems.len()
        )
    };
    let notes: String = report
        .notes
        .iter()
        .map(|n| format!("<li>{}</li>", esc(n)))
        .collect();
    format!(
        r##"<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>tongban audit trace {case}</title>
<style>body{{font-family:{FONTS};margin:24px;color:#1f2328}} svg{{font-family:{FONTS}}} .ok{{color:#1a7f37;font-weight:bold}} .bad{{color:#cf222e;font-weight:bold}}
.when{{color:#57606a}} table{{border-collapse:collapse;margin-top:16px}} td,th{{border:1px solid #d0d7de;padding:4px 8px;font-size:13px;text-align:left;vertical-align:top}}
.nowrap{{white-space:nowrap}} .kind{{color:#57606a;font-family:monospace;font-size:12px}}
@media print{{body{{margin:0}} .graph{{overflow:visible}}}}</style></head>
<body><h1>案件追溯 Case {case}</h1>{verdict}<ul>{notes}</ul>
<p class="when">Times are China Standard Time (UTC+8).</p>
<div class="graph" style="overflow-x:auto">{svg}</div>
<table><tr><th>time (UTC+8)</th><th>county</th><th>actor</th><th>event</th><th>detail</th></tr>
{rows}</table></body></html>
"##,
        case = esc(&report.case_no)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_counties_and_shows_local_times() {
        use super::super::verify::{Arrow, Event};
        let event = |county: &str, seq: u64, kind: &str| Event {
            at: "2026-12-01T18:31:48.996890903Z".into(),
            county: county.into(),
            actor: "spiffe://shaanxi.tongban/county/610702/clerk/wang".into(),
            claimed_actor: String::new(),
            claimed_applied_at: String::new(),
            event: kind.into(),
            detail: "<b>detail</b>".into(),
            seq,
        };
        let report = Report {
            case_no: "610702-20261202-1".into(),
            verified: true,
            problems: vec![],
            notes: vec![],
            coverage: vec![],
            handoffs: vec![Arrow {
                handoff_id: "h".into(),
                from: "610702".into(),
                to: "610113".into(),
                sent_seq: 3,
                received_seq: 1,
                matched: true,
                both_sides: true,
            }],
            timeline: vec![
                event("610702", 3, "case.accepted"),
                event("610113", 1, "handoff.received"),
            ],
            applicant: serde_json::Value::Null,
        };
        let names = BTreeMap::from([
            ("610702".to_owned(), "汉台区".to_owned()),
            ("610113".to_owned(), "雁塔区".to_owned()),
        ]);
        let page = render(&report, &names);
        for text in [
            r#"<meta name="viewport""#,
            r#"font-family:"Noto Sans CJK SC""#,
            "2026-12-02 02:31:48",
            "汉台区 610702",
            "雁塔区 610113",
            "#3 窗口受理 · accepted at the window",
            "#1 handoff.received",
            "&lt;b&gt;detail&lt;/b&gt;",
        ] {
            assert!(page.contains(text), "{text:?} in {page}");
        }
        assert!(!page.contains("18:31:48.996890903Z"), "{page}");
        // The receiving county's lane is the first (left) one.
        assert!(page.find(">汉台区<").unwrap() < page.find(">雁塔区<").unwrap());
    }

    #[test]
    fn partner_reports_name_what_was_reported() {
        let names = BTreeMap::from([("610113".to_owned(), "雁塔区".to_owned())]);
        assert_eq!(
            event_label(
                "update.received",
                "review.accepted at 610113: accepted for review",
                &names
            ),
            "收到通报 · 雁塔区 610113 reports: 受理 · accepted for review"
        );
        assert_eq!(
            event_label("case.applied", "x", &names),
            "收件 · applied at the window"
        );
        assert_eq!(event_label("new.kind", "x", &names), "new.kind");
        assert_eq!(
            event_label("update.received", "odd", &names),
            "收到通报 · partner's report"
        );
    }
}

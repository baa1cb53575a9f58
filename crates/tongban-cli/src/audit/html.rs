//! The trace as one self-contained HTML page: a lane per county, the
//! case's events down the page in time order, handoffs as arrows between
//! lanes, the verdict and every problem on top. No scripts, no external
//! files: it opens anywhere and prints as it looks.

// SVG fragments read best as raw strings ending in their own newline.
#![allow(clippy::write_with_newline)]

use std::fmt::Write;

use super::verify::Report;

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Renders the report.
pub(crate) fn render(report: &Report) -> String {
    let mut lanes: Vec<String> = report.timeline.iter().map(|e| e.county.clone()).collect();
    for a in &report.handoffs {
        lanes.push(a.from.clone());
        lanes.push(a.to.clone());
    }
    lanes.sort();
    lanes.dedup();
    let lane_w = 420.0;
    let row_h = 46.0;
    let top = 60.0;
    let width = lanes.len().max(1) as f64 * lane_w + 40.0;
    let height = top + report.timeline.len() as f64 * row_h + 40.0;
    let x_of = |county: &str| {
        20.0 + lanes.iter().position(|l| l == county).unwrap_or(0) as f64 * lane_w + 30.0
    };
    let row_of = |county: &str, seq: u64| {
        report
            .timeline
            .iter()
            .position(|e| e.county == county && e.seq == seq)
            .map(|i| top + i as f64 * row_h + 20.0)
    };

    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">
<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#1f6feb"/></marker>
<marker id="bad" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#cf222e"/></marker></defs>
"##
    );
    for (i, county) in lanes.iter().enumerate() {
        let x = 20.0 + i as f64 * lane_w;
        let _ = write!(
            svg,
            r##"<rect x="{x}" y="10" width="{}" height="{}" fill="{}" stroke="#d0d7de"/><text x="{}" y="36" font-size="16" font-weight="bold">{}</text>
"##,
            lane_w - 10.0,
            height - 20.0,
            if i % 2 == 0 { "#f6f8fa" } else { "#ffffff" },
            x + 12.0,
            esc(county)
        );
        let _ = write!(
            svg,
            r##"<line x1="{0}" y1="50" x2="{0}" y2="{1}" stroke="#8c959f" stroke-dasharray="4 3"/>
"##,
            x + 30.0,
            height - 20.0
        );
    }
    for a in &report.handoffs {
        if let (Some(y1), Some(y2)) = (row_of(&a.from, a.sent_seq), row_of(&a.to, a.received_seq)) {
            let (color, marker) = if a.matched {
                ("#1f6feb", "arrow")
            } else {
                ("#cf222e", "bad")
            };
            let _ = write!(
                svg,
                r##"<line x1="{}" y1="{y1}" x2="{}" y2="{y2}" stroke="{color}" stroke-width="2" marker-end="url(#{marker})"><title>handoff {}</title></line>
"##,
                x_of(&a.from),
                x_of(&a.to) - 6.0,
                esc(&a.handoff_id)
            );
        }
    }
    for (i, e) in report.timeline.iter().enumerate() {
        let x = x_of(&e.county);
        let y = top + i as f64 * row_h + 20.0;
        let actor = e
            .actor
            .rsplit('/')
            .take(2)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("/");
        let _ = write!(
            svg,
            r##"<circle cx="{x}" cy="{y}" r="6" fill="#0969da"/><text x="{}" y="{}" font-weight="bold">#{} {}</text><text x="{}" y="{}" fill="#57606a">{} · {}</text>
"##,
            x + 14.0,
            y - 4.0,
            e.seq,
            esc(&e.event),
            x + 14.0,
            y + 12.0,
            esc(&e.at),
            esc(&actor)
        );
    }
    svg.push_str("</svg>\n");

    let mut rows = String::new();
    for e in &report.timeline {
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>#{} {}</td><td>{}</td></tr>",
            esc(&e.at),
            esc(&e.county),
            esc(&e.actor),
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
<html lang="zh-CN"><head><meta charset="utf-8"><title>tongban audit trace {case}</title>
<style>body{{font-family:sans-serif;margin:24px;color:#1f2328}} .ok{{color:#1a7f37;font-weight:bold}} .bad{{color:#cf222e;font-weight:bold}}
table{{border-collapse:collapse;margin-top:16px}} td,th{{border:1px solid #d0d7de;padding:4px 8px;font-size:13px;text-align:left}}</style></head>
<body><h1>Case {case}</h1>{verdict}<ul>{notes}</ul>
<div style="overflow-x:auto">{svg}</div>
<table><tr><th>time</th><th>county</th><th>actor</th><th>event</th><th>detail</th></tr>
{rows}</table></body></html>
"##,
        case = esc(&report.case_no)
    )
}

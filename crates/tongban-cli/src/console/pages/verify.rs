//! The auditor's node verification pages: the choice of node (with what
//! this console verified of each, and each node's latest verification) and
//! one verification's page, which shows its progress live (`verify.js`
//! polls the progress JSON; without JavaScript the page refreshes itself)
//! and, once it ended, the verdict with every problem at the entry it
//! concerns, linked to the trace of the case it concerns.

use maud::{Markup, PreEscaped, html};

use super::*;
use crate::audit::node::{Finding, Kept};
use crate::console::routes::material::percent;
use crate::console::verifying::{Before, Job, Phase, Progress};

/// The script that follows a running verification.
const JS: &str = include_str!("verify.js");

/// This page's own styles (the verdict box, the problem list, the bars).
const CSS: &str = "
.verdict { border-radius: 4px; padding: .8em 1em; margin: 0 0 1em; border: 1px solid #dcdfe3; background: #fff; }
.verdict.ok { border-left: 6px solid #1b6b35; }
.verdict.bad { border-left: 6px solid #b3261e; }
.verdict .word { font-size: 1.5em; font-weight: 700; margin: 0 0 .3em; }
.verdict.ok .word { color: #1b6b35; }
.verdict.bad .word { color: #b3261e; }
.bar { margin: .3em 0 .8em; }
.bar progress { display: block; width: 100%; max-width: 40em; height: 1.1em; }
ol.problems { padding-left: 1.6em; }
ol.problems li { margin: 0 0 .7em; background: #fff; border: 1px solid #e0a19c; border-radius: 4px; padding: .4em .7em; }
ol.problems .at { font-weight: 600; }
ol.problems .text, .node-card, .verdict p { overflow-wrap: anywhere; }
.node-card { background: #fff; border: 1px solid #dcdfe3; border-radius: 4px; padding: .6em 1em; margin: 0 0 .8em; }
.node-card h3 { margin: 0 0 .2em; font-size: 1.05em; }
.node-card p { margin: .2em 0; }
";

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::Checkpoint => t(
            "读取并核验节点签名的检查点",
            "reading and checking the node's signed checkpoint",
        ),
        Phase::Chain => t(
            "从第 1 条起逐条核验哈希链",
            "checking the hash chain from entry 1",
        ),
        Phase::Evidence => t(
            "核验证据：节点重算每份材料的摘要，逐份核对回执",
            "checking the evidence: the node re-hashes every material, each receipt is checked",
        ),
        Phase::Done => t("已完成", "done"),
        Phase::Failed => t("未能完成", "could not be done"),
    }
}

/// Entries 1 to `head`: `第 1–9 条`, `entries 1..=9` (as the CLI writes).
fn range(head: u64) -> String {
    match lang::lang() {
        lang::Lang::Zh => format!("第 1–{head} 条"),
        lang::Lang::En => format!("entries 1..={head}"),
    }
}

/// What the console kept of a node's ledger, in words.
fn kept_words(kept: Option<&(u64, String)>) -> Markup {
    html! {
        @match kept {
            Some((head, at)) => {
                (t("本控制台已核验", "this console verified ")) (range(*head))
                (t("（检查点签于 ", " (checkpoint signed ")) (local_time(at)) (t("）", ")"))
            }
            None => span.dim { (t("本控制台尚未核验", "not verified by this console yet")) },
        }
    }
}

/// The choice of node, and each node's state.
pub(in crate::console) fn verify_home(c: &Console, error: Option<&str>) -> Markup {
    let counties = c
        .directory
        .as_ref()
        .map(|d| d.counties.as_slice())
        .unwrap_or_default();
    // A trace or the start-up warm-up may hold the kept prefixes; the page
    // does not wait for it.
    let known = c.known.try_lock().ok();
    let jobs = c.verifications.all();
    layout(
        c,
        t("核验节点账本", "Verify a node's ledger"),
        html! {
            style { (PreEscaped(CSS)) }
            (error_box(error))
            @if counties.is_empty() {
                p.error { (t("没有联盟目录：请用 --directory 启动控制台。", "No federation directory: start the console with --directory.")) }
            }
            form.action #start method="post" action="/verify" {
                label { (t("节点", "Node"))
                    select name="county" #county {
                        @for k in counties { option value=(k.code.as_str()) { (k.name) " " (k.code.as_str()) } }
                    }
                }
                fieldset {
                    legend { (t("核验范围", "What to check")) }
                    label.inline { input type="radio" name="scope" value="full" checked; " " (t("全部账本与证据", "the whole ledger and its evidence")) }
                    label.inline { input type="radio" name="scope" value="quick"; " " (t("仅哈希链", "the hash chain only")) }
                }
                p.dim { (t("从第 1 条起取回该节点的全部账本，逐条核验哈希链、载荷摘要和节点签名的检查点；核验证据时节点重算每份材料的摘要，并核对它持有和出具的每份回执（与 tongban audit verify 相同，仅哈希链即 ",
                           "Fetches the node's whole ledger from entry 1 and checks the hash chain, the payload digests and the node's signed checkpoint; with the evidence, the node re-hashes every material and every receipt it holds and gave is checked (what tongban audit verify does; the hash chain only is "))
                    code.nowrap { "--quick" }
                    (t("）。不使用本控制台的缓存；通过后更新缓存。", "). It does not rely on this console's cache, and updates it when the chain verifies.")) }
                button #start-verify type="submit" { (t("开始核验", "Verify")) }
            }
            h2 { (t("各节点", "Nodes")) }
            @for k in counties {
                @let code = k.code.as_str();
                @let job = jobs.iter().find(|j| j.county == code);
                section.node-card data-county=(code) {
                    h3 { (county(&k.name, code)) }
                    p.dim { code { (k.endpoint) } }
                    p { @match &known {
                        Some(known) => {
                            @let kept = known.get(&k.endpoint).filter(|p| p.county == code).map(|p| (p.head(), p.signed_at.clone()));
                            (kept_words(kept.as_ref()))
                        }
                        None => span.dim { (t("缓存正被启动预热或追溯使用，稍后刷新可见", "the cache is in use by the start-up warm-up or a trace; refresh to see it")) },
                    } }
                    @if let Some(job) = job {
                        p { a href={ "/verify/" (code) } { (t("最近一次核验", "Latest verification")) } "：" (job_state(&job.progress())) " · " (local_time(&job.started_at)) }
                    }
                }
            }
        },
    )
}

/// A verification's state in a few words.
fn job_state(p: &Progress) -> Markup {
    html! {
        @match (&p.phase, &p.verdict) {
            (Some(Phase::Done), Some(v)) if v.verified() => strong.left { "VERIFIED" }
            (Some(Phase::Done), _) => strong.overdue { "FAILED" }
            (Some(phase), _) => (phase_name(*phase)),
            (None, _) => "",
        }
    }
}

/// Where a problem is: its entry, and its case with links to its trace
/// and evidence bundle.
fn finding(f: &Finding) -> Markup {
    html! {
        li data-seq=[f.seq] {
            span.at {
                @if let Some(seq) = f.seq { (t("条目 #", "entry #")) (seq) } @else { (t("不涉及单个条目", "no single entry")) }
            }
            @if !f.case_no.is_empty() {
                " · " (t("案件 ", "case ")) code { (f.case_no) } " ("
                a.trace href={ "/trace?case=" (percent(&f.case_no)) } { (t("追溯", "trace")) }
                " · "
                a.bundle href={ "/bundle?case=" (percent(&f.case_no)) } { (t("证据包", "evidence bundle")) }
                ")"
            }
            br;
            span.text { (super::super::findings::words(f)) }
        }
    }
}

/// One verification: its progress while it runs, its verdict once ended.
pub(in crate::console) fn verify_job(c: &Console, job: &Job) -> Markup {
    let p = job.progress();
    let title = format!(
        "{}{} {}",
        t("核验节点：", "Verifying "),
        job.name,
        job.county
    );
    layout(
        c,
        &title,
        html! {
            style { (PreEscaped(CSS)) }
            @if !p.ended() {
                // Without JavaScript the page refreshes itself; with it,
                // verify.js follows the progress JSON instead.
                noscript { meta http-equiv="refresh" content="2"; }
            }
            table.facts {
                tr { th { (t("节点", "Node")) } td { (county(&job.name, &job.county)) " " code.dim { (job.url) } } }
                tr { th { (t("范围", "Scope")) } td { @if job.quick { (t("仅哈希链（audit verify --quick）", "the hash chain only (audit verify --quick)")) } @else { (t("全部账本与证据（audit verify）", "the whole ledger and its evidence (audit verify)")) } } }
                tr { th { (t("开始时间", "Started")) } td { (local_time(&job.started_at)) @if !p.finished_at.is_empty() { (t("，结束于 ", ", ended ")) (local_time(&p.finished_at)) } } }
                tr { th { (t("开始前的缓存", "Cache before")) } td { @match &job.kept_before {
                    Before::Kept(kept) => (kept_words(kept.as_ref())),
                    Before::Busy => span.dim { (t("当时缓存正被启动预热或追溯使用", "the cache was in use by the start-up warm-up or a trace")) },
                } } }
            }
            section #progress data-url={ "/verify/" (job.county) "/progress" } data-ended=(p.ended()) data-started=(job.started_at)
                data-checkpoint=(phase_name(Phase::Checkpoint)) data-chain=(phase_name(Phase::Chain))
                data-evidence=(phase_name(Phase::Evidence)) data-done=(phase_name(Phase::Done)) data-failed=(phase_name(Phase::Failed))
                data-entry=(t("条目 #", "entry #")) data-no-entry=(t("不涉及单个条目", "no single entry"))
                data-case=(t("案件 ", "case ")) data-trace=(t("追溯", "trace")) data-bundle=(t("证据包", "evidence bundle")) {
                p { (t("阶段：", "Phase: ")) strong #phase { (p.phase.map(phase_name).unwrap_or_default()) } }
                div.bar {
                    (t("哈希链：已核验 ", "Hash chain: ")) span #checked { (p.checked) } " / " span #total { (p.total) } (t(" 条", " entries checked"))
                    progress #entries max=(p.total.max(1)) value=(if p.total == 0 && p.ended() { 1 } else { p.checked }) {}
                }
                @if !job.quick {
                    div.bar {
                        (t("证据：节点已重算 ", "Evidence: the node re-hashed ")) span #rehashed { (binary_size(p.rehashed)) } " / " span #material-bytes { (binary_size(p.material_bytes)) }
                        progress #rehash max=(p.material_bytes.max(1)) value=(if p.material_bytes == 0 && p.ended() { 1 } else { p.rehashed }) {}
                    }
                }
                @if !p.error.is_empty() { p.error role="alert" #error { (t("未能核验：", "Could not verify: ")) (p.error) } }
                @if let Some(v) = &p.verdict { (verdict(job, v, p.kept)) }
                h2 { (t("发现的问题", "Problems found")) " (" span #problem-count { (p.problems.len()) } ")" }
                ol.problems #problems { @for f in &p.problems { (finding(f)) } }
                @if p.problems.is_empty() { p.dim #no-problems { (t("尚未发现问题。", "No problems found so far.")) } }
            }
            @if p.ended() {
                form.action method="post" action="/verify" {
                    input type="hidden" name="county" value=(job.county);
                    input type="hidden" name="scope" value=(if job.quick { "quick" } else { "full" });
                    button #again type="submit" { (t("再次核验", "Verify again")) }
                    " " a href="/verify" { (t("核验其他节点", "Verify another node")) }
                }
            } @else {
                script { (PreEscaped(JS)) }
            }
        },
    )
}

/// The verdict of an ended verification: the word, what was checked, what
/// became of the console's cache, and the verdict to download.
fn verdict(job: &Job, v: &crate::audit::node::Verdict, kept: Option<Kept>) -> Markup {
    let ok = v.verified();
    html! {
        section #verdict .verdict.ok[ok] .bad[!ok] {
            p.word { @if ok { "VERIFIED " (t("核验通过", "")) } @else { "FAILED " (t("未通过", "")) } }
            p { (t("本次从第 1 条起逐条核验了该节点的全部账本（不依赖缓存），直到它签名的第 ", "This run checked the node's whole ledger entry by entry from entry 1 (not relying on the cache), up to its checkpoint at entry "))
                (v.checkpoint_seq) (t(" 条检查点（签于 ", " (signed ")) (local_time(&v.checkpoint_at)) (t("）。", ")."))
                @if let Some(b) = &v.bad {
                    " " (t("第 ", "Entry ")) (b.seq) (t(" 条未通过：", " fails: it ")) (super::super::findings::why(b))
                    @if v.checked_to() > 0 { (t("；此前的", "; ")) (range(v.checked_to())) (t("已核验。", " before it verify.")) } @else { (t("。", ".")) }
                } @else {
                    " " (range(v.chained_to)) (t("的哈希链通过，与检查点一致。", " chain and match the checkpoint."))
                }
            }
            p { @match &v.evidence {
                None => (t("未核验证据（仅哈希链）。", "The evidence was not checked (hash chain only).")),
                Some(s) => {
                    (t("材料：节点重算了 ", "Materials: the node re-hashed ")) (s.materials) (t(" 份（", " (")) (binary_size(s.material_bytes)) (t("）；回执：作为发送方持有 ", "); receipts: ")) (s.held)
                    (t(" 份，作为接收方出具 ", " held as sender, ")) (s.given) (t(" 份。", " given as receiver."))
                }
            } }
            p #kept { @match kept {
                Some(Kept::Replaced { head }) => { (t("本控制台的已核验缓存已更新为", "This console's cache of verified entries is now ")) (range(head)) (t("，此后的追溯只需核验新条目。", "; later traces check only the entries since.")) }
                Some(Kept::Agrees { head }) => { (t("与本控制台已核验的", "Agrees with the ")) (range(head)) (t("一致；缓存含此后签名的条目，保留。", " this console verified, signed later; the cache stays.")) }
                Some(Kept::Disagrees { head }) => { (t("与本控制台此前核验的", "Disagrees with the ")) (range(head)) (t("不符：缓存保留原样，作为节点曾签名内容的记录。", " this console verified before: the cache stays as it was, the record of what the node signed.")) }
                Some(Kept::Nothing) | None => { (t("哈希链未通过，本控制台的缓存未改动。", "The hash chain does not verify; this console's cache was left as it was.")) }
            } }
            p { a #verdict-json href={ "/verify/" (job.county) "/verdict.json" } download { (t("下载核验结果（JSON，与 audit verify --json 相同）", "Download the verdict (JSON, as audit verify --json prints it)")) } }
        }
    }
}

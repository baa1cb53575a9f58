//! The auditor's pages: finding a case, to trace it or download its
//! evidence bundle (the trace itself is the page `audit trace --html`
//! writes).

use maud::{Markup, html};

use super::*;

/// The auditor's search form.
pub(in crate::console) fn audit_find(c: &Console, case_no: &str, error: Option<&str>) -> Markup {
    layout(
        c,
        t("案件追溯", "Trace a case"),
        html! {
            (error_box(error))
            form.action #find method="get" action="/trace" {
                label { (t("案件编号", "Case no.")) input name="case" required value=(case_no) placeholder="610702-20261201-1" spellcheck="false"; }
                p.dim { (t("从受理窗口和属地两个节点取回账本，逐条核验后显示经过与结论（与 audit trace --html 同一页面）。",
                           "Fetches the ledger from the window's and the home node, checks every entry, and shows the history and the verdict (the page audit trace --html writes).")) }
                button type="submit" { (t("追溯并核验", "Trace and verify")) }
                " "
                button.secondary #bundle type="submit" formaction="/bundle" { (t("下载证据包", "Download the evidence bundle")) }
                p.dim { (t("证据包即 audit export 写出的文件，可在任何地方用 tongban audit verify-bundle 离线核验。",
                           "The evidence bundle is the file audit export writes; tongban audit verify-bundle checks it anywhere, offline.")) }
            }
        },
    )
}

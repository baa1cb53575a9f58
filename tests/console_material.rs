//! The reviewer's view of a case's materials in a real browser: each one
//! opened inline (PDF, images) or downloaded, byte for byte, with the headers
//! that keep an uploaded file from running in the console's origin.

use fantoccini::Client;

use crate::console::{apply_complete, browser, console, origin, profile, shot, until_text};
use crate::support::*;

/// A 24×24 checkerboard PNG.
const PNG: [u8; 103] = [
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x18, 0x00, 0x00, 0x00, 0x18, 0x08, 0x02, 0x00, 0x00, 0x00, 0x6f, 0x15, 0xaa,
    0xaf, 0x00, 0x00, 0x00, 0x2e, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x90, 0xb3, 0x39, 0x81,
    0x86, 0x4e, 0xd8, 0xc8, 0xa1, 0x21, 0x62, 0xd4, 0x30, 0x8c, 0x1a, 0x44, 0x47, 0x83, 0xc8, 0xd3,
    0x86, 0xa9, 0x66, 0xd4, 0x20, 0x7a, 0x1a, 0x34, 0x9a, 0xb2, 0x47, 0xf3, 0xda, 0xa8, 0x41, 0x74,
    0x31, 0x08, 0x00, 0x4f, 0xaf, 0x8c, 0x9f, 0xd6, 0x6b, 0x99, 0x0d, 0x00, 0x00, 0x00, 0x00, 0x49,
    0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reviewer_opens_each_material_inline_or_as_a_download_in_a_browser() {
    let cluster = Cluster::start().await;
    let files = tempfile::tempdir().unwrap();
    let file = |name: &str, data: &[u8]| {
        let p = files.path().join(name);
        std::fs::write(&p, data).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let pdf = one_page_pdf("APPLICATION FORM GT-0001");
    let html = b"<html><script>document.title='pwned'</script>lease</html>".to_vec();
    let materials = [
        file("id-card.png", &PNG),
        file("application-form.pdf", &pdf),
        file("租赁合同.html", &html),
    ];
    let clerk = profile(&cluster, HANTAI, "clerk", clerk(HANTAI, "wang"));
    let reviewer = profile(&cluster, YANTA, "reviewer", reviewer(YANTA, "li"));
    let ((_c, clerk_url), (_r, reviewer_url)) = tokio::join!(console(&clerk), console(&reviewer));
    let (clerk_origin, reviewer_origin) = (origin(&clerk_url), origin(&reviewer_url));
    let (_driver, b) = browser().await;
    b.goto(&clerk_url).await.unwrap();
    until_text(&b, "h1", "本窗口案件", false).await;
    let case_no = apply_complete(&b, &clerk_origin, &materials).await;

    // The clerk's case page links each material too, and serves it.
    b.goto(&format!("{clerk_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "table.materials", "id-card.png", false).await;
    let at_window = fetch(&b, &format!("/case/{case_no}/material/id-card")).await;
    assert_eq!(at_window.status, 200);
    assert_eq!(at_window.bytes, PNG);

    b.goto(&reviewer_url).await.unwrap();
    b.goto(&format!("{reviewer_origin}/case/{case_no}"))
        .await
        .unwrap();
    until_text(&b, "#state", "HANDED_OFF", true).await;
    let row = until_text(&b, "tr[data-kind=id-card]", "id-card.png", false).await;
    assert!(row.contains(&hex::encode(sha256(&PNG))), "{row}");
    assert!(row.contains("查看") && row.contains("下载"), "{row}");
    // The HTML file gets no "view" link: it is only ever a download.
    let html_row = until_text(&b, "tr[data-kind=premises-proof]", "下载", false).await;
    assert!(!html_row.contains("查看"), "{html_row}");
    shot(&b, "30-reviewer-materials").await;

    let png = fetch(&b, &format!("/case/{case_no}/material/id-card")).await;
    assert_eq!(png.status, 200);
    assert_eq!(png.bytes, PNG, "the PNG as the reviewer's browser gets it");
    assert_eq!(png.content_type, "image/png");
    assert!(
        png.disposition.starts_with("inline;"),
        "{}",
        png.disposition
    );
    assert_eq!(png.nosniff, "nosniff");
    assert!(png.csp.contains("default-src 'none'"), "{}", png.csp);

    let form = fetch(&b, &format!("/case/{case_no}/material/application-form")).await;
    assert_eq!(form.bytes, pdf);
    assert_eq!(form.content_type, "application/pdf");
    // What lets Chromium's viewer show it with its whole toolbar: the
    // viewer is a plugin embedded in the response's document, so
    // `object-src 'self'`; and no `sandbox`, under which Chromium (156)
    // still draws the pages but drops the viewer's zoom, print and save.
    assert!(form.csp.contains("object-src 'self'"), "{}", form.csp);
    assert!(!form.csp.contains("sandbox"), "{}", form.csp);
    assert!(
        form.disposition.starts_with("inline;"),
        "{}",
        form.disposition
    );
    let download = fetch(
        &b,
        &format!("/case/{case_no}/material/application-form?download=1"),
    )
    .await;
    assert_eq!(download.bytes, pdf);
    assert_eq!(download.content_type, "application/octet-stream");
    assert!(
        download.disposition.starts_with("attachment;"),
        "{}",
        download.disposition
    );

    // Uploaded HTML: never rendered in the console's origin.
    let lease = fetch(&b, &format!("/case/{case_no}/material/premises-proof")).await;
    assert_eq!(lease.bytes, html);
    assert_eq!(lease.content_type, "application/octet-stream");
    assert_eq!(
        lease.disposition,
        "attachment; filename=\"____.html\"; filename*=UTF-8''%E7%A7%9F%E8%B5%81%E5%90%88%E5%90%8C.html"
    );
    assert_eq!(lease.nosniff, "nosniff");
    assert!(lease.csp.contains("sandbox"), "{}", lease.csp);

    // An unknown kind: the node's words, listing what the case has.
    let missing = fetch(&b, &format!("/case/{case_no}/material/passport")).await;
    assert_eq!(missing.status, 404);
    let text = String::from_utf8_lossy(&missing.bytes).into_owned();
    assert!(
        text.contains("passport") && text.contains("id-card"),
        "{text}"
    );

    // The image opened inline, as the "view" link opens it.
    b.goto(&format!(
        "{reviewer_origin}/case/{case_no}/material/id-card"
    ))
    .await
    .unwrap();
    let shown = b
        .execute(
            "const i = document.querySelector('img'); return i ? [i.naturalWidth, i.naturalHeight] : null;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown, serde_json::json!([24, 24]), "the PNG did not render");
    shot(&b, "31-reviewer-material-png-inline").await;

    // The PDF opened inline, as the "view" link opens it: Chromium's own
    // viewer shows it (the headers let its plugin run: `object-src 'self'`,
    // no `sandbox`, inline, application/pdf), rather than a download or a
    // blocked-plugin placeholder.
    let pdf_url = format!("{reviewer_origin}/case/{case_no}/material/application-form");
    b.goto(&pdf_url).await.unwrap();
    let kind = b
        .execute("return document.contentType;", vec![])
        .await
        .unwrap();
    assert_eq!(
        kind, "application/pdf",
        "opened in the browser, not downloaded"
    );
    // The viewer draws on its own time: the page stays in its tab and is
    // looked at again until its frame shows (or the wait ends); the
    // pixels are counted in a second tab.
    let pdf_tab = b.window().await.unwrap();
    let counter = b.new_window(true).await.unwrap().handle;
    let end = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let blue = loop {
        b.switch_to_window(pdf_tab.clone()).await.unwrap();
        let png = b.screenshot().await.unwrap();
        b.switch_to_window(counter.clone()).await.unwrap();
        let blue = blue_pixels(&b, &png).await;
        if blue > 2000 || std::time::Instant::now() > end {
            std::fs::write(
                crate::console::shots_dir().join("32-reviewer-material-pdf-inline.png"),
                &png,
            )
            .unwrap();
            break blue;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert!(
        blue > 2000,
        "the PDF's blue frame is not on the screen ({blue} blue pixels): Chromium's viewer did not render it"
    );
    b.close().await.unwrap();
}

/// How many pixels of screenshot `png` are pure blue (the test PDF's
/// frame), counted by the browser itself: the PNG drawn on a canvas in the
/// current tab, a blank page (no PNG decoder in the tests' dependencies).
async fn blue_pixels(b: &fantoccini::Client, png: &[u8]) -> i64 {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(png);
    let n = b
        .execute_async(
            "const [data, done] = [arguments[0], arguments[arguments.length - 1]];
             const img = new Image();
             img.onerror = () => done(-1);
             img.onload = () => {
               const c = document.createElement('canvas');
               c.width = img.width; c.height = img.height;
               const g = c.getContext('2d');
               g.drawImage(img, 0, 0);
               const d = g.getImageData(0, 0, c.width, c.height).data;
               let n = 0;
               for (let i = 0; i < d.length; i += 4) {
                 if (d[i] < 40 && d[i + 1] < 40 && d[i + 2] > 200) n++;
               }
               done(n);
             };
             img.src = 'data:image/png;base64,' + data;",
            vec![serde_json::Value::String(data)],
        )
        .await
        .unwrap();
    n.as_i64().unwrap_or(-1)
}

/// A well-formed one-page PDF (A6 landscape) showing `text` in Helvetica,
/// with a correct cross-reference table, so a viewer renders it as is.
fn one_page_pdf(text: &str) -> Vec<u8> {
    let content =
        format!("BT /F1 18 Tf 24 150 Td ({text}) Tj ET\n0 0 1 RG 4 w 12 12 396 272 re S\n");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 420 298] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{content}endstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n{body}\nendobj\n", i + 1).as_bytes());
    }
    let xref = pdf.len();
    let mut table = format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1);
    for o in offsets {
        table.push_str(&format!("{o:010} 00000 n \n"));
    }
    pdf.extend_from_slice(table.as_bytes());
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

/// What the browser gets for `GET path` with its session: the status, the
/// headers that decide how a material is shown, and the bytes.
pub(crate) struct Fetched {
    pub(crate) status: u16,
    pub(crate) content_type: String,
    pub(crate) disposition: String,
    pub(crate) nosniff: String,
    pub(crate) csp: String,
    pub(crate) bytes: Vec<u8>,
}

pub(crate) async fn fetch(b: &Client, path: &str) -> Fetched {
    let v = b
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0]).then(async r => done({
               status: r.status,
               type: r.headers.get('content-type') || '',
               disposition: r.headers.get('content-disposition') || '',
               nosniff: r.headers.get('x-content-type-options') || '',
               csp: r.headers.get('content-security-policy') || '',
               bytes: Array.from(new Uint8Array(await r.arrayBuffer())),
             })).catch(e => done({status: 0, error: String(e)}));",
            vec![serde_json::Value::String(path.to_owned())],
        )
        .await
        .unwrap();
    let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    Fetched {
        status: v["status"].as_u64().unwrap_or(0) as u16,
        content_type: s("type"),
        disposition: s("disposition"),
        nosniff: s("nosniff"),
        csp: s("csp"),
        bytes: v["bytes"]
            .as_array()
            .map(|a| a.iter().map(|b| b.as_u64().unwrap() as u8).collect())
            .unwrap_or_default(),
    }
}

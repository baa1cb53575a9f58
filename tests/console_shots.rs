//! Screenshots of the console's pages, as the browser tests save them to
//! `target/console-screenshots/`: every page whole at desktop width, and
//! one screenful at a time at 420 px, to be looked at as a clerk would.

use std::path::{Path, PathBuf};

use fantoccini::Client;

pub(crate) fn shots_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves the whole page as `NAME.png` at desktop width, as tall as the
/// page, and at 420 px (a phone, a window beside another) as
/// `NAME-420.png`, `NAME-420-2.png`, ... one screenful each, so each can be
/// read at its size; then puts the window back.
pub(crate) async fn shot(b: &Client, name: &str) {
    b.set_window_size(1280, page_height(b).await).await.unwrap();
    let png = b.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
    b.set_window_size(420, NARROW_HEIGHT).await.unwrap();
    let height = page_height(b).await;
    for (i, top) in (0..height)
        .step_by(NARROW_HEIGHT as usize - 100)
        .take(8)
        .enumerate()
    {
        b.execute(&format!("window.scrollTo(0, {top})"), vec![])
            .await
            .unwrap();
        let png = b.screenshot().await.unwrap();
        let part = if i == 0 {
            String::new()
        } else {
            format!("-{}", i + 1)
        };
        std::fs::write(shots_dir().join(format!("{name}-420{part}.png")), png).unwrap();
        if top + NARROW_HEIGHT >= height {
            break;
        }
    }
    b.execute("window.scrollTo(0, 0)", vec![]).await.unwrap();
    b.set_window_size(1280, WINDOW_HEIGHT).await.unwrap();
}

/// The window height that shows the whole page at the window's width
/// (the page's height and the window's own frame), within bounds a
/// screenshot can take.
async fn page_height(b: &Client) -> u32 {
    let h = b
        .execute(
            "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(u64::from(WINDOW_HEIGHT));
    u32::try_from(h).unwrap_or(u32::MAX).clamp(400, 12_000)
}

/// The height of one narrow screenful.
const NARROW_HEIGHT: u32 = 900;

/// The browser window's height between screenshots.
const WINDOW_HEIGHT: u32 = 1400;

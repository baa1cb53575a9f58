//! What every printed page shares (the notices, the audit trace): HTML
//! escaping of text that came over the network, China Standard Time for
//! the times nodes record in UTC, and the font families that can show
//! Chinese. It is also the one place that formats a time for people: pages
//! (whose headings name the zone) with [`local_time`], the terminal with
//! [`cst_time`]; `--json` keeps the nodes' RFC 3339 UTC. Pure functions; no
//! I/O.

use time::format_description::well_known::Rfc3339;
use time::macros::{format_description, offset};
use time::{OffsetDateTime, UtcOffset};

/// The font families of every page, CJK-capable ones first so that Chinese
/// renders on Linux, macOS and Windows alike.
pub(crate) const FONTS: &str = r#""Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif"#;

/// China Standard Time, in which counties keep their dates.
const CST: UtcOffset = offset!(+8);

/// `text` safe inside HTML elements and quoted attributes.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => {
                out.extend(c.escape_default());
            }
            c => out.push(c),
        }
    }
    out
}

fn cst(rfc3339: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(rfc3339, &Rfc3339)
        .ok()
        .map(|t| t.to_offset(CST))
}

/// An RFC 3339 time as a local time in China Standard Time,
/// `2026-12-01 18:30:05`; text that is not a time is returned as it is.
pub(crate) fn local_time(rfc3339: &str) -> String {
    cst(rfc3339)
        .and_then(|t| {
            t.format(format_description!(
                "[year]-[month]-[day] [hour]:[minute]:[second]"
            ))
            .ok()
        })
        .unwrap_or_else(|| rfc3339.to_owned())
}

/// An RFC 3339 time for the terminal, in China Standard Time with the
/// zone named and to the second, `2026-12-01 18:30:05 CST`, as clerks and
/// reviewers read every other time (notices, the intake receipt); text
/// that is not a time is returned as it is, and empty text stays empty.
pub(crate) fn cst_time(rfc3339: &str) -> String {
    match cst(rfc3339) {
        Some(_) => format!("{} CST", local_time(rfc3339)),
        None => rfc3339.to_owned(),
    }
}

/// [`cst_time`] of a time already parsed.
pub(crate) fn cst_time_of(t: OffsetDateTime) -> String {
    t.to_offset(CST)
        .format(format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] CST"
        ))
        .unwrap_or_else(|_| t.to_string())
}

/// An RFC 3339 time, or a `YYYY-MM-DD` date, as a Chinese date in China
/// Standard Time, `2026年12月1日`; other text is returned as it is.
pub(crate) fn chinese_date(text: &str) -> String {
    let date = cst(text)
        .map(|t| t.date())
        .or_else(|| time::Date::parse(text, format_description!("[year]-[month]-[day]")).ok());
    match date {
        Some(d) => format!("{}年{}月{}日", d.year(), u8::from(d.month()), d.day()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(esc("张三"), "张三");
    }

    #[test]
    fn times_are_shown_in_china_standard_time() {
        assert_eq!(
            local_time("2026-12-01T17:30:05.123456789Z"),
            "2026-12-02 01:30:05"
        );
        assert_eq!(local_time("not a time"), "not a time");
        assert_eq!(
            cst_time("2026-12-01T17:30:05.123456789Z"),
            "2026-12-02 01:30:05 CST"
        );
        assert_eq!(
            cst_time("2026-12-01T09:30:05+08:00"),
            "2026-12-01 09:30:05 CST"
        );
        assert_eq!(cst_time(""), "");
        assert_eq!(cst_time("not a time"), "not a time");
        assert_eq!(
            cst_time_of(time::macros::datetime!(2026-12-01 00:30:12 UTC)),
            "2026-12-01 08:30:12 CST"
        );
        assert_eq!(chinese_date("2026-12-01T17:30:05Z"), "2026年12月2日");
        assert_eq!(chinese_date("2026-12-08"), "2026年12月8日");
        assert_eq!(chinese_date(""), "");
    }
}

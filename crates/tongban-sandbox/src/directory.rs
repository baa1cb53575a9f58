//! The federation directory file as the sandbox touches it: which counties
//! it names, its trust domain, and their endpoints set to the sandbox's
//! listeners. Edits go through `toml_edit`, so a directory someone changed
//! by hand keeps its comments, order and formatting; only endpoint values
//! change. What the directory means is `tongban_core::Directory`'s business.

use std::collections::BTreeMap;
use std::path::Path;

use toml_edit::{DocumentMut, Item, Value};

use crate::SandboxError;

/// The example directory shipped in `examples/` (three counties on
/// loopback ports 7001-7003), where every sandbox starts by default.
pub const EXAMPLE: &str = include_str!("../../../examples/federation.toml");

/// A county as the directory names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct County {
    /// Its code (`610702`).
    pub code: String,
    /// Its name (`汉台区`).
    pub name: String,
}

fn parse(text: &str, path: &Path) -> Result<DocumentMut, SandboxError> {
    text.parse::<DocumentMut>()
        .map_err(|e| SandboxError::Directory {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

/// The trust domain and the counties of a directory, in file order.
pub fn counties(text: &str, path: &Path) -> Result<(String, Vec<County>), SandboxError> {
    let doc = parse(text, path)?;
    let domain = doc
        .get("trust_domain")
        .and_then(Item::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut out = Vec::new();
    if let Some(tables) = doc.get("county").and_then(Item::as_array_of_tables) {
        for t in tables {
            let field = |k: &str| {
                t.get(k)
                    .and_then(Item::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            out.push(County {
                code: field("code"),
                name: field("name"),
            });
        }
    }
    Ok((domain, out))
}

/// Sets the endpoint of each county in `endpoints` (code → URL) and leaves
/// everything else as it was, comments beside the values included.
pub fn set_endpoints(
    text: &str,
    path: &Path,
    endpoints: &BTreeMap<String, String>,
) -> Result<String, SandboxError> {
    let mut doc = parse(text, path)?;
    let mut missing: Vec<&str> = endpoints.keys().map(String::as_str).collect();
    if let Some(tables) = doc.get_mut("county").and_then(Item::as_array_of_tables_mut) {
        for t in tables.iter_mut() {
            let Some(code) = t.get("code").and_then(Item::as_str).map(str::to_owned) else {
                continue;
            };
            let Some(url) = endpoints.get(&code) else {
                continue;
            };
            missing.retain(|c| *c != code);
            match t.get_mut("endpoint").and_then(Item::as_value_mut) {
                Some(value) if value.as_str() == Some(url) => {}
                Some(value) => {
                    // Keep the spacing and any comment around the value.
                    let decor = value.decor().clone();
                    *value = Value::from(url.as_str());
                    *value.decor_mut() = decor;
                }
                None => {
                    t.insert("endpoint", toml_edit::value(url.as_str()));
                }
            }
        }
    }
    if !missing.is_empty() {
        return Err(SandboxError::Directory {
            path: path.to_owned(),
            reason: format!("no [[county]] with code {}", missing.join(", ")),
        });
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(ports: [u16; 3]) -> BTreeMap<String, String> {
        ["610702", "610113", "611002"]
            .into_iter()
            .zip(ports)
            .map(|(c, p)| (c.to_owned(), format!("https://127.0.0.1:{p}")))
            .collect()
    }

    #[test]
    fn endpoints_follow_the_ports_and_nothing_else_changes() {
        let here = Path::new("federation.toml");
        let out = set_endpoints(EXAMPLE, here, &endpoints([7002, 7003, 7004])).unwrap();
        assert!(out.contains(
            "code = \"610702\"\nname = \"汉台区\"\nendpoint = \"https://127.0.0.1:7002\""
        ));
        assert!(out.contains("endpoint = \"https://127.0.0.1:7003\""));
        assert!(out.contains("endpoint = \"https://127.0.0.1:7004\""));
        assert!(!out.contains("7001"));
        let same = set_endpoints(EXAMPLE, here, &endpoints([7001, 7002, 7003])).unwrap();
        assert_eq!(same, EXAMPLE);
        tongban_core::Directory::from_toml_str(&out).expect("still a valid directory");
    }

    #[test]
    fn an_edited_directory_keeps_its_comments_and_layout() {
        let edited = "# ours\ntrust_domain = \"shaanxi.tongban\"\n\n[[county]]\ncode = \"610702\"   # 汉台\nname = \"汉台区\"\nendpoint   =   \"https://127.0.0.1:9\"  # moved\n\n# an item we added\n[[item]]\ncode = \"X\"\n";
        let mut one = BTreeMap::new();
        one.insert("610702".to_owned(), "https://127.0.0.1:7100".to_owned());
        let out = set_endpoints(edited, Path::new("f.toml"), &one).unwrap();
        assert_eq!(
            out,
            edited.replace("https://127.0.0.1:9\"", "https://127.0.0.1:7100\"")
        );
    }

    #[test]
    fn a_county_the_directory_lacks_is_named() {
        let mut one = BTreeMap::new();
        one.insert("610000".to_owned(), "https://127.0.0.1:1".to_owned());
        let err = set_endpoints(EXAMPLE, Path::new("f.toml"), &one).unwrap_err();
        assert!(err.to_string().contains("610000"), "{err}");
    }

    #[test]
    fn the_example_names_three_counties() {
        let (domain, counties) = counties(EXAMPLE, Path::new("f.toml")).unwrap();
        assert_eq!(domain, crate::TRUST_DOMAIN);
        let codes: Vec<_> = counties.iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, [crate::HANTAI, crate::YANTA, crate::SHANGZHOU]);
        assert_eq!(counties[0].name, "汉台区");
    }
}

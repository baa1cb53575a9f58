//! The federation directory (`federation.toml`): trust domain, counties,
//! item catalogue, agreements and the holiday calendar, with the validation that makes a loaded
//! directory safe to trust, and the lookups a node needs to decide whether it
//! may take in or accept an item for a county.
//!
//! The lookups go through an index built once when the directory is
//! parsed, so that their cost does not grow with the directory: a node in a
//! directory of 2,844 counties, with agreements with every one of them,
//! checks a county or an agreement as fast as in a directory of three.
//!
//! This module parses text; reading the file is the caller's job.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::calendar::Calendar;
use crate::codes::{CountyCode, ItemCode};

/// Why a directory could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The text is not valid TOML or does not have the directory's shape
    /// (including malformed codes, unknown keys and a `[[calendar]]` table
    /// that breaks a rule of the calendar).
    #[error("invalid federation directory: {0}")]
    Parse(String),
    /// The text parsed but breaks a rule of the directory.
    #[error("{field}: {reason}")]
    Invalid {
        /// Path of the offending field, e.g. `county[2].endpoint`.
        field: String,
        /// What is wrong with it, naming the offending value.
        reason: String,
    },
    /// A string is not one of the delivery modes.
    #[error(
        "unknown delivery mode {value:?}; expected one of mail-applicant, mail-window, collect-home"
    )]
    DeliveryMode {
        /// The string given.
        value: String,
    },
}

/// How the result (licence, certificate) gets to the applicant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeliveryMode {
    /// The home county mails the result to the applicant's address.
    MailApplicant,
    /// The home county mails the result to the receiving window, where the
    /// applicant collects it.
    MailWindow,
    /// The applicant collects the result at the home county.
    CollectHome,
}

impl DeliveryMode {
    /// Every delivery mode.
    pub const ALL: [DeliveryMode; 3] = [Self::MailApplicant, Self::MailWindow, Self::CollectHome];

    /// The mode's name as in `federation.toml` and the CLI, e.g. `mail-window`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MailApplicant => "mail-applicant",
            Self::MailWindow => "mail-window",
            Self::CollectHome => "collect-home",
        }
    }
}

impl fmt::Display for DeliveryMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DeliveryMode {
    type Err = DirectoryError;
    fn from_str(s: &str) -> Result<Self, DirectoryError> {
        Self::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| DirectoryError::DeliveryMode {
                value: s.to_owned(),
            })
    }
}

/// The federation directory, as in `federation.toml`.
///
/// Read it, do not change it: the lookups ([`Directory::county`],
/// [`Directory::covers`], …) use an index of the fields built when the
/// directory is parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "Parsed")]
pub struct Directory {
    /// The SPIFFE trust domain of every certificate, e.g. `shaanxi.tongban`.
    pub trust_domain: String,
    /// The member counties (`[[county]]`).
    #[serde(rename = "county", default)]
    pub counties: Vec<County>,
    /// The item catalogue (`[[item]]`).
    #[serde(rename = "item", default)]
    pub items: Vec<Item>,
    /// Which counties take in which items for each other (`[[agreement]]`).
    #[serde(rename = "agreement", default)]
    pub agreements: Vec<Agreement>,
    /// The State Council's holidays and make-up working days, year by year
    /// (`[[calendar]]`); promised times are counted in its working days.
    #[serde(rename = "calendar", default)]
    pub calendar: Calendar,
    /// Positions by code, built from the fields above when parsed.
    #[serde(skip)]
    index: Index,
}

/// The directory's shape in `federation.toml`, before it is indexed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Parsed {
    trust_domain: String,
    #[serde(rename = "county", default)]
    counties: Vec<County>,
    #[serde(rename = "item", default)]
    items: Vec<Item>,
    #[serde(rename = "agreement", default)]
    agreements: Vec<Agreement>,
    #[serde(rename = "calendar", default)]
    calendar: Calendar,
}

impl From<Parsed> for Directory {
    fn from(p: Parsed) -> Self {
        let index = Index::new(&p.counties, &p.items, &p.agreements);
        Directory {
            trust_domain: p.trust_domain,
            counties: p.counties,
            items: p.items,
            agreements: p.agreements,
            calendar: p.calendar,
            index,
        }
    }
}

/// Where each county, item and agreement membership is, by code. With
/// duplicates (which [`Directory::from_toml_str`] refuses) the first
/// occurrence wins, as a scan would find it.
#[derive(Clone, Default, PartialEq, Eq)]
struct Index {
    /// County code → position in `counties`.
    counties: HashMap<String, usize>,
    /// Item code → position in `items`.
    items: HashMap<String, usize>,
    /// County code → positions of the agreements that list it, ascending
    /// and without repeats.
    agreements_of: HashMap<String, Vec<usize>>,
}

impl Index {
    fn new(counties: &[County], items: &[Item], agreements: &[Agreement]) -> Self {
        let mut index = Index::default();
        for (i, c) in counties.iter().enumerate() {
            index
                .counties
                .entry(c.code.as_str().to_owned())
                .or_insert(i);
        }
        for (i, item) in items.iter().enumerate() {
            index
                .items
                .entry(item.code.as_str().to_owned())
                .or_insert(i);
        }
        for (i, a) in agreements.iter().enumerate() {
            for c in &a.counties {
                let list = index
                    .agreements_of
                    .entry(c.as_str().to_owned())
                    .or_default();
                if list.last() != Some(&i) {
                    list.push(i);
                }
            }
        }
        index
    }

    /// The agreements that list `county` (none for a stranger).
    fn agreements_of(&self, county: &CountyCode) -> &[usize] {
        self.agreements_of
            .get(county.as_str())
            .map_or(&[], Vec::as_slice)
    }
}

/// The index is derived from the fields: shown as its size only.
impl fmt::Debug for Index {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Index")
            .field("counties", &self.counties.len())
            .field("items", &self.items.len())
            .finish_non_exhaustive()
    }
}

/// A member county and where its node listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct County {
    /// GB/T 2260 code, e.g. `610702`.
    pub code: CountyCode,
    /// Name, e.g. `汉台区`.
    pub name: String,
    /// The node's gRPC endpoint, an `https://` URL.
    pub endpoint: String,
}

/// A government service item that can be handled across counties.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Item {
    /// The item's implementation code, e.g. `GT-0001`.
    pub code: ItemCode,
    /// Name, e.g. `个体工商户登记`.
    pub name: String,
    /// Category, e.g. `商事登记`.
    pub category: String,
    /// Promised working days from acceptance at the home county.
    pub promised_days: u32,
    /// The delivery modes allowed for the result.
    pub delivery: Vec<DeliveryMode>,
    /// The required materials (`[[item.material]]`).
    #[serde(rename = "material", default)]
    pub materials: Vec<MaterialSpec>,
    /// How the window takes the application in: at the counter, or (for
    /// complex items) only after a video consultation with the home
    /// authority (异地视频会商, seed L2968-2970).
    #[serde(default, skip_serializing_if = "IntakeMode::is_counter")]
    pub intake: IntakeMode,
    /// Whether the home authority may approve while a material the
    /// applicant committed to supply (告知承诺) has not yet arrived.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve_before_commitment: bool,
}

impl Item {
    /// The required material of the given kind, if any.
    pub fn material(&self, kind: &str) -> Option<&MaterialSpec> {
        self.materials.iter().find(|m| m.kind == kind)
    }

    /// Whether the result may be delivered this way.
    pub fn allows(&self, mode: DeliveryMode) -> bool {
        self.delivery.contains(&mode)
    }
}

/// How a window takes in an item's applications (商州's routing rule).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IntakeMode {
    /// Simple items: the clerk takes the materials in (代收代审).
    #[default]
    Counter,
    /// Complex items: the clerk records a video consultation with the home
    /// authority before the case can be accepted (异地视频会商方式收件).
    VideoConsultation,
}

impl IntakeMode {
    /// The name as in `federation.toml`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::VideoConsultation => "video-consultation",
        }
    }

    fn is_counter(&self) -> bool {
        *self == Self::Counter
    }
}

impl fmt::Display for IntakeMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The material kind of an approval's result document (the licence or
/// decision the home authority issues). Reserved: no item may name a
/// material so, so that kind `result` in a material read is always the
/// decision's document.
pub const RESULT_KIND: &str = "result";

/// One required material of an item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaterialSpec {
    /// Machine name, `[a-z0-9-]+`, unique within the item, e.g. `id-card`.
    pub kind: String,
    /// Human name, e.g. `经营者身份证明`.
    pub name: String,
    /// Whether the paper original must be mailed to the home county.
    #[serde(default)]
    pub paper: bool,
    /// Whether the window may accept the case without it (容缺受理) when
    /// the applicant signs a commitment to supply it by a deadline (告知承诺).
    /// Materials not marked so can never be waived.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub waivable: bool,
}

/// An agreement: each listed county takes in the listed items for the others.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agreement {
    /// The counties party to the agreement (at least two).
    pub counties: Vec<CountyCode>,
    /// The items covered (at least one).
    pub items: Vec<ItemCode>,
}

impl Directory {
    /// Parses and validates a directory from TOML text.
    pub fn from_toml_str(text: &str) -> Result<Directory, DirectoryError> {
        let dir: Directory =
            toml::from_str(text).map_err(|e| DirectoryError::Parse(e.to_string()))?;
        dir.validate()?;
        Ok(dir)
    }

    /// Checks every rule a parsed directory must satisfy; the first broken
    /// rule is reported.
    fn validate(&self) -> Result<(), DirectoryError> {
        let td = &self.trust_domain;
        if td.is_empty() {
            return Err(invalid("trust_domain", "is empty"));
        }
        if let Some(c) = td
            .chars()
            .find(|&c| !matches!(c, 'a'..='z' | '0'..='9' | '.' | '-' | '_'))
        {
            return Err(invalid(
                "trust_domain",
                format!(
                    "{td:?} contains {c:?}; only a-z, 0-9, '.', '-' and '_' are allowed (SPIFFE)"
                ),
            ));
        }

        if self.counties.is_empty() {
            return Err(invalid("county", "at least one county is required"));
        }
        let mut seen = HashMap::new();
        for (i, c) in self.counties.iter().enumerate() {
            if let Some(j) = seen.insert(&c.code, i) {
                return Err(invalid(
                    format!("county[{i}].code"),
                    format!("duplicate county code {} (also county[{j}])", c.code),
                ));
            }
            if c.name.trim().is_empty() {
                return Err(invalid(format!("county[{i}].name"), "is empty"));
            }
            let host = c.endpoint.strip_prefix("https://").map(|rest| {
                let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
                // A port alone (`https://:7001`) names no host either.
                authority.split(':').next().unwrap_or("")
            });
            match host {
                None => {
                    return Err(invalid(
                        format!("county[{i}].endpoint"),
                        format!("{:?} is not an https url", c.endpoint),
                    ));
                }
                Some("") => {
                    return Err(invalid(
                        format!("county[{i}].endpoint"),
                        format!("{:?} has no host", c.endpoint),
                    ));
                }
                Some(_) => {}
            }
        }

        let mut seen = HashMap::new();
        for (i, item) in self.items.iter().enumerate() {
            if let Some(j) = seen.insert(&item.code, i) {
                return Err(invalid(
                    format!("item[{i}].code"),
                    format!(
                        "duplicate item code {:?} (also item[{j}])",
                        item.code.as_str()
                    ),
                ));
            }
            if item.name.trim().is_empty() {
                return Err(invalid(format!("item[{i}].name"), "is empty"));
            }
            if item.promised_days == 0 {
                return Err(invalid(
                    format!("item[{i}].promised_days"),
                    "must be at least 1 working day",
                ));
            }
            if item.delivery.is_empty() {
                return Err(invalid(
                    format!("item[{i}].delivery"),
                    "at least one delivery mode is required",
                ));
            }
            for (k, mode) in item.delivery.iter().enumerate() {
                if item.delivery[..k].contains(mode) {
                    return Err(invalid(
                        format!("item[{i}].delivery"),
                        format!("{mode} is listed twice"),
                    ));
                }
            }
            for (k, m) in item.materials.iter().enumerate() {
                let field = format!("item[{i}].material[{k}].kind");
                let well_formed = !m.kind.is_empty()
                    && m.kind
                        .chars()
                        .all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-'));
                if !well_formed {
                    return Err(invalid(
                        field,
                        format!("{:?} must be one or more of a-z, 0-9 and '-'", m.kind),
                    ));
                }
                if m.kind == RESULT_KIND {
                    return Err(invalid(
                        field,
                        format!(
                            "{RESULT_KIND:?} is reserved for the result document of an approval"
                        ),
                    ));
                }
                if item.materials[..k].iter().any(|o| o.kind == m.kind) {
                    return Err(invalid(
                        field,
                        format!("duplicate material kind {:?}", m.kind),
                    ));
                }
            }
        }

        for (i, a) in self.agreements.iter().enumerate() {
            for c in &a.counties {
                if self.county(c).is_none() {
                    return Err(invalid(
                        format!("agreement[{i}].counties"),
                        format!("unknown county {c}"),
                    ));
                }
            }
            let mut distinct: Vec<&CountyCode> = a.counties.iter().collect();
            distinct.sort();
            distinct.dedup();
            if distinct.len() < 2 {
                return Err(invalid(
                    format!("agreement[{i}].counties"),
                    format!(
                        "needs at least two distinct counties, got {}",
                        distinct.len()
                    ),
                ));
            }
            if a.items.is_empty() {
                return Err(invalid(
                    format!("agreement[{i}].items"),
                    "at least one item is required",
                ));
            }
            for it in &a.items {
                if self.item(it).is_none() {
                    return Err(invalid(
                        format!("agreement[{i}].items"),
                        format!("unknown item {:?}", it.as_str()),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The county with this code, if it is a member.
    pub fn county(&self, code: &CountyCode) -> Option<&County> {
        self.index
            .counties
            .get(code.as_str())
            .map(|&i| &self.counties[i])
    }

    /// The item with this code, if it is in the catalogue.
    pub fn item(&self, code: &ItemCode) -> Option<&Item> {
        self.item_str(code.as_str())
    }

    /// The item with this code given as a plain string (e.g. from a message),
    /// if it is in the catalogue.
    pub fn item_str(&self, code: &str) -> Option<&Item> {
        self.index.items.get(code).map(|&i| &self.items[i])
    }

    /// Whether `receiving` may take in `item` for `home`: true iff the two
    /// counties differ and some agreement lists both of them and the item.
    /// Looks only at the agreements of the county with fewer of them.
    pub fn covers(&self, receiving: &CountyCode, home: &CountyCode, item: &ItemCode) -> bool {
        if receiving == home {
            return false;
        }
        let (of_r, of_h) = (
            self.index.agreements_of(receiving),
            self.index.agreements_of(home),
        );
        let (fewer, other) = if of_r.len() <= of_h.len() {
            (of_r, of_h)
        } else {
            (of_h, of_r)
        };
        fewer
            .iter()
            .any(|i| other.binary_search(i).is_ok() && self.agreements[*i].items.contains(item))
    }

    /// The counties sharing at least one agreement with `county`, sorted and
    /// without duplicates; `county` itself is not included.
    pub fn partners(&self, county: &CountyCode) -> Vec<&CountyCode> {
        let mut out: Vec<&CountyCode> = self
            .index
            .agreements_of(county)
            .iter()
            .flat_map(|&i| &self.agreements[i].counties)
            .filter(|c| *c != county)
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> DirectoryError {
    DirectoryError::Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
trust_domain = "shaanxi.tongban"

[[county]]
code = "610702"
name = "汉台区"
endpoint = "https://127.0.0.1:7001"

[[county]]
code = "610113"
name = "雁塔区"
endpoint = "https://127.0.0.1:7002"

[[county]]
code = "611002"
name = "商州区"
endpoint = "https://shangzhou.example.gov.cn:7003/"

[[item]]
code = "GT-0001"
name = "个体工商户登记"
category = "商事登记"
promised_days = 5
delivery = ["mail-applicant", "mail-window", "collect-home"]
[[item.material]]
kind = "id-card"
name = "经营者身份证明"
paper = false
[[item.material]]
kind = "application-form"
name = "个体工商户登记申请书"
paper = true

[[item]]
code = "HZ-0101"
name = "户口迁移"
category = "户政"
promised_days = 10
delivery = ["mail-applicant"]
[[item.material]]
kind = "household-register"
name = "户口簿"
[[item.material]]
kind = "marriage-certificate"
name = "结婚证"
waivable = true

[[item]]
code = "SP-0001"
name = "食品经营许可"
category = "商事登记"
promised_days = 15
delivery = ["mail-window", "collect-home"]
intake = "video-consultation"

[[agreement]]
counties = ["610702", "610113"]
items = ["GT-0001", "HZ-0101"]

[[agreement]]
counties = ["611002", "610113"]
items = ["SP-0001"]

[[calendar]]
year = 2026
holidays = ["2026-10-01..2026-10-07"]
workdays = ["2026-10-10"]
"#;

    fn code(s: &str) -> CountyCode {
        s.parse().unwrap()
    }

    fn item(s: &str) -> ItemCode {
        s.parse().unwrap()
    }

    /// Parses SAMPLE with `from` replaced by `to` and returns the error.
    fn broken(from: &str, to: &str) -> DirectoryError {
        assert!(SAMPLE.contains(from), "{from}");
        Directory::from_toml_str(&SAMPLE.replacen(from, to, 1)).unwrap_err()
    }

    fn invalid_msg(from: &str, to: &str) -> String {
        let err = broken(from, to);
        assert!(matches!(err, DirectoryError::Invalid { .. }), "{err:?}");
        err.to_string()
    }

    #[test]
    fn parses_realistic_directory() {
        let d = Directory::from_toml_str(SAMPLE).unwrap();
        assert_eq!(d.trust_domain, "shaanxi.tongban");
        assert_eq!(d.counties.len(), 3);
        assert_eq!(d.county(&code("610113")).unwrap().name, "雁塔区");
        assert!(d.county(&code("610722")).is_none());

        let gt = d.item(&item("GT-0001")).unwrap();
        assert_eq!(gt.category, "商事登记");
        assert_eq!(gt.promised_days, 5);
        assert!(gt.allows(DeliveryMode::CollectHome));
        assert!(gt.material("application-form").unwrap().paper);
        assert!(!gt.material("id-card").unwrap().paper);
        assert!(gt.material("licence").is_none());
        let hz = d.item_str("HZ-0101").unwrap();
        assert!(
            !hz.material("household-register").unwrap().paper,
            "paper defaults to false"
        );
        assert!(!hz.allows(DeliveryMode::MailWindow));
        assert!(hz.material("marriage-certificate").unwrap().waivable);
        assert!(
            !hz.material("household-register").unwrap().waivable,
            "waivable defaults to false"
        );
        assert!(!hz.approve_before_commitment, "defaults to false");
        assert_eq!(hz.intake, IntakeMode::Counter, "defaults to counter");
        assert_eq!(
            d.item_str("SP-0001").unwrap().intake,
            IntakeMode::VideoConsultation
        );
        assert!(d.item_str("GT-9999").is_none());

        assert!(d.covers(&code("610702"), &code("610113"), &item("GT-0001")));
        assert!(d.covers(&code("610113"), &code("610702"), &item("HZ-0101")));
        assert!(!d.covers(&code("610702"), &code("610702"), &item("GT-0001")));
        assert!(!d.covers(&code("610702"), &code("611002"), &item("GT-0001")));
        assert!(!d.covers(&code("610702"), &code("610113"), &item("SP-0001")));
        assert!(d.covers(&code("611002"), &code("610113"), &item("SP-0001")));

        assert_eq!(
            d.partners(&code("610113")),
            [&code("610702"), &code("611002")]
        );
        assert_eq!(d.partners(&code("610702")), [&code("610113")]);
        assert!(d.partners(&code("610722")).is_empty());

        assert!(d.calendar.covers(2026));
        assert!(
            d.calendar
                .is_working_day(time::macros::date!(2026 - 10 - 10))
        );

        // What we write we can read back.
        let again = Directory::from_toml_str(&toml::to_string(&d).unwrap()).unwrap();
        assert_eq!(again, d);
    }

    /// A directory of `n` counties (`610101`, `610102`, …) with these
    /// agreements (county positions, item codes) over items GT-0001..3.
    fn generated(n: usize, agreements: &[(Vec<usize>, Vec<&str>)]) -> Directory {
        let code = |i: usize| format!("61{:04}", 101 + i + i / 99);
        let mut text = String::from("trust_domain = \"t\"\n");
        for i in 0..n {
            text.push_str(&format!(
                "[[county]]\ncode = \"{}\"\nname = \"县{i}\"\nendpoint = \"https://h:1\"\n",
                code(i)
            ));
        }
        for item in ["GT-0001", "GT-0002", "GT-0003"] {
            text.push_str(&format!(
                "[[item]]\ncode = \"{item}\"\nname = \"n\"\ncategory = \"c\"\npromised_days = 1\ndelivery = [\"collect-home\"]\n"
            ));
        }
        for (counties, items) in agreements {
            let counties: Vec<String> = counties
                .iter()
                .map(|&i| format!("\"{}\"", code(i)))
                .collect();
            let items: Vec<String> = items.iter().map(|i| format!("\"{i}\"")).collect();
            text.push_str(&format!(
                "[[agreement]]\ncounties = [{}]\nitems = [{}]\n",
                counties.join(", "),
                items.join(", ")
            ));
        }
        Directory::from_toml_str(&text).unwrap()
    }

    #[test]
    fn indexed_lookups_answer_as_a_scan_of_every_agreement_would() {
        // Overlapping agreements, a county listed twice in one, a pair in
        // two agreements with different items, counties in none.
        let d = generated(
            12,
            &[
                (vec![0, 1, 2], vec!["GT-0001"]),
                (vec![1, 2, 2, 3], vec!["GT-0002", "GT-0003"]),
                (vec![0, 4], vec!["GT-0003"]),
                (vec![5, 6, 7, 8, 9, 0], vec!["GT-0002"]),
                (vec![2, 1], vec!["GT-0001", "GT-0003"]),
            ],
        );
        let codes: Vec<&CountyCode> = d.counties.iter().map(|c| &c.code).collect();
        let items: Vec<&ItemCode> = d.items.iter().map(|i| &i.code).collect();
        let mut covered = 0;
        for r in &codes {
            for h in &codes {
                for item in &items {
                    let scan = r != h
                        && d.agreements.iter().any(|a| {
                            a.counties.contains(r)
                                && a.counties.contains(h)
                                && a.items.contains(item)
                        });
                    assert_eq!(d.covers(r, h, item), scan, "{r} {h} {item}");
                    covered += usize::from(scan);
                }
            }
            let mut partners: Vec<&CountyCode> = d
                .agreements
                .iter()
                .filter(|a| a.counties.contains(r))
                .flat_map(|a| &a.counties)
                .filter(|c| c != r)
                .collect();
            partners.sort();
            partners.dedup();
            assert_eq!(d.partners(r), partners, "{r}");
            assert_eq!(d.county(r).map(|c| &c.code), Some(*r));
        }
        assert_eq!(covered, 50, "the agreements above cover so many triples");
        let stranger = code("610722");
        assert!(d.county(&stranger).is_none());
        assert!(d.partners(&stranger).is_empty());
        assert!(!d.covers(&stranger, codes[0], items[0]));
        assert!(!d.covers(codes[0], &stranger, items[0]));
        assert!(d.item_str("GT-0003").is_some() && d.item_str("GT-0004").is_none());
    }

    #[test]
    fn a_star_of_2844_counties_is_indexed() {
        // One hub with an agreement with every other county: the bench's
        // star. Every spoke is the hub's partner and no two spokes are.
        let n = 2_844;
        let agreements: Vec<(Vec<usize>, Vec<&str>)> =
            (1..n).map(|i| (vec![0, i], vec!["GT-0001"])).collect();
        let d = generated(n, &agreements);
        let hub = &d.counties[0].code;
        let (first, last) = (&d.counties[1].code, &d.counties[n - 1].code);
        assert_eq!(d.partners(hub).len(), n - 1);
        assert_eq!(d.partners(last), [hub]);
        let gt = item("GT-0001");
        assert!(d.covers(hub, last, &gt) && d.covers(first, hub, &gt));
        assert!(!d.covers(first, last, &gt), "spokes share no agreement");
        assert!(!d.covers(hub, last, &item("GT-0002")));
        assert_eq!(d.county(last).unwrap().name, format!("县{}", n - 1));
    }

    #[test]
    fn delivery_mode_strings() {
        for m in DeliveryMode::ALL {
            assert_eq!(m.as_str().parse::<DeliveryMode>().unwrap(), m);
            assert_eq!(m.to_string(), m.as_str());
        }
        assert_eq!(
            "post".parse::<DeliveryMode>().unwrap_err().to_string(),
            "unknown delivery mode \"post\"; expected one of mail-applicant, mail-window, collect-home"
        );
    }

    #[test]
    fn parse_errors() {
        let err = broken("promised_days = 5", "promised_days = 5\ncolour = \"red\"");
        let DirectoryError::Parse(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("colour"), "{msg}");
        assert!(msg.contains("line"), "{msg}");
        assert!(matches!(
            broken("\"610113\"\nname", "\"610100\"\nname"),
            DirectoryError::Parse(_)
        ));
        assert!(matches!(
            broken("\"mail-applicant\", ", "\"post\", "),
            DirectoryError::Parse(_)
        ));
        assert!(matches!(
            broken("trust_domain = ", "trust_domain = = "),
            DirectoryError::Parse(_)
        ));
    }

    #[test]
    fn calendar_errors_name_the_table_and_its_line() {
        let err = broken("\"2026-10-10\"", "\"2026-10-03\"");
        let DirectoryError::Parse(msg) = err else {
            panic!("{err:?}")
        };
        assert!(
            msg.contains("calendar[0]: 2026-10-03 is both a holiday and a make-up working day"),
            "{msg}"
        );
        assert!(msg.contains("line 64"), "{msg}");
        let none = SAMPLE.split("[[calendar]]").next().unwrap();
        let d = Directory::from_toml_str(none).unwrap();
        assert_eq!(d.calendar.years().count(), 0, "the calendar is optional");
    }

    #[test]
    fn trust_domain_rules() {
        assert_eq!(
            invalid_msg("\"shaanxi.tongban\"", "\"\""),
            "trust_domain: is empty"
        );
        assert_eq!(
            invalid_msg("\"shaanxi.tongban\"", "\"Shaanxi\""),
            "trust_domain: \"Shaanxi\" contains 'S'; only a-z, 0-9, '.', '-' and '_' are allowed (SPIFFE)"
        );
    }

    #[test]
    fn county_rules() {
        let err = Directory::from_toml_str("trust_domain = \"t\"").unwrap_err();
        assert_eq!(err.to_string(), "county: at least one county is required");
        assert_eq!(
            invalid_msg("\"610113\"\nname", "\"610702\"\nname"),
            "county[1].code: duplicate county code 610702 (also county[0])"
        );
        assert_eq!(
            invalid_msg("\"雁塔区\"", "\" \""),
            "county[1].name: is empty"
        );
        assert_eq!(
            invalid_msg("https://shangzhou.example.gov.cn:7003/", "http://x"),
            "county[2].endpoint: \"http://x\" is not an https url"
        );
        assert_eq!(
            invalid_msg("https://127.0.0.1:7001", "https://"),
            "county[0].endpoint: \"https://\" has no host"
        );
        assert_eq!(
            invalid_msg("https://127.0.0.1:7001", "https://:7001"),
            "county[0].endpoint: \"https://:7001\" has no host"
        );
    }

    #[test]
    fn item_rules() {
        assert_eq!(
            invalid_msg("\"HZ-0101\"\nname", "\"GT-0001\"\nname"),
            "item[1].code: duplicate item code \"GT-0001\" (also item[0])"
        );
        assert_eq!(
            invalid_msg("\"户口迁移\"", "\"\""),
            "item[1].name: is empty"
        );
        assert_eq!(
            invalid_msg("delivery = [\"mail-applicant\"]", "delivery = []"),
            "item[1].delivery: at least one delivery mode is required"
        );
        assert_eq!(
            invalid_msg(
                "delivery = [\"mail-applicant\"]",
                "delivery = [\"mail-applicant\", \"mail-applicant\"]"
            ),
            "item[1].delivery: mail-applicant is listed twice"
        );
        assert_eq!(
            invalid_msg("promised_days = 10", "promised_days = 0"),
            "item[1].promised_days: must be at least 1 working day"
        );
        assert_eq!(
            invalid_msg("\"id-card\"", "\"ID Card\""),
            "item[0].material[0].kind: \"ID Card\" must be one or more of a-z, 0-9 and '-'"
        );
        assert_eq!(
            invalid_msg("\"household-register\"", "\"\""),
            "item[1].material[0].kind: \"\" must be one or more of a-z, 0-9 and '-'"
        );
        assert_eq!(
            invalid_msg("\"application-form\"", "\"id-card\""),
            "item[0].material[1].kind: duplicate material kind \"id-card\""
        );
        assert_eq!(
            invalid_msg("\"id-card\"", "\"result\""),
            "item[0].material[0].kind: \"result\" is reserved for the result document of an approval"
        );
    }

    #[test]
    fn a_misspelt_waiver_key_is_refused_at_load() {
        let err = broken("waivable = true", "waiveable = true");
        let DirectoryError::Parse(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("unknown field `waiveable`"), "{msg}");
        assert!(msg.contains("waivable"), "names the expected keys: {msg}");
        // On the item rather than a material.
        let err = broken("promised_days = 10", "promised_days = 10\nwaivable = true");
        let DirectoryError::Parse(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("unknown field `waivable`"), "{msg}");
        assert!(matches!(
            broken("waivable = true", "waivable = \"yes\""),
            DirectoryError::Parse(_)
        ));
    }

    #[test]
    fn an_unknown_intake_mode_is_refused_at_load() {
        let err = broken("intake = \"video-consultation\"", "intake = \"phone\"");
        let DirectoryError::Parse(msg) = err else {
            panic!("{err:?}")
        };
        assert!(msg.contains("unknown variant `phone`"), "{msg}");
        assert!(
            msg.contains("`counter`") && msg.contains("`video-consultation`"),
            "names the modes: {msg}"
        );
    }

    #[test]
    fn agreement_rules() {
        assert_eq!(
            invalid_msg("[\"611002\", \"610113\"]", "[\"611002\", \"611002\"]"),
            "agreement[1].counties: needs at least two distinct counties, got 1"
        );
        assert_eq!(
            invalid_msg("[\"611002\", \"610113\"]", "[\"611002\"]"),
            "agreement[1].counties: needs at least two distinct counties, got 1"
        );
        assert_eq!(
            invalid_msg("[\"611002\", \"610113\"]", "[\"611002\", \"610722\"]"),
            "agreement[1].counties: unknown county 610722"
        );
        assert_eq!(
            invalid_msg(
                "items = [\"GT-0001\", \"HZ-0101\"]",
                "items = [\"GT-9999\"]"
            ),
            "agreement[0].items: unknown item \"GT-9999\""
        );
        assert_eq!(
            invalid_msg("items = [\"SP-0001\"]", "items = []"),
            "agreement[1].items: at least one item is required"
        );
    }
}

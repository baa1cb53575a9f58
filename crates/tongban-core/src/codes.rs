//! Identifier newtypes checked at the boundary: county codes (GB/T 2260),
//! resident IDs (GB 11643), unified social credit codes (GB 32100), waybills
//! (UPU S10 or domestic numeric), phone numbers, item codes and case numbers.
//!
//! Each type can only be built by parsing, so a value of the type is valid by
//! construction. This module owns the masking of personal data (resident IDs,
//! phones): those two types print masked in `Debug`, have no `Display`, and
//! their errors carry only the masked input, so a typo never puts a full
//! number into a log. It does not check codes against the federation
//! directory; see [`crate::directory`] for that.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use time::{Date, Month};

/// Why a code could not be parsed.
///
/// `value` fields hold the input as typed, except for resident IDs and phone
/// numbers, where they hold the masked form (see [`mask_id`], [`mask_phone`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeError {
    /// The input was empty.
    #[error("{what} is empty")]
    Empty {
        /// The kind of code, e.g. "resident id".
        what: &'static str,
    },
    /// The input does not have the one length this kind of code has.
    #[error("{what} {value}: has {got} characters, expected {expected}")]
    Length {
        /// The kind of code.
        what: &'static str,
        /// The input (masked for personal data).
        value: String,
        /// The required number of characters.
        expected: usize,
        /// The number of characters found.
        got: usize,
    },
    /// The input's length is outside the range this kind of code allows.
    #[error("{what} {value}: has {got} characters, expected {min} to {max}")]
    LengthRange {
        /// The kind of code.
        what: &'static str,
        /// The input (masked for personal data).
        value: String,
        /// The fewest characters allowed.
        min: usize,
        /// The most characters allowed.
        max: usize,
        /// The number of characters found.
        got: usize,
    },
    /// A character is not allowed at its position.
    #[error("{what} {value}: character {position} is {found:?}, expected {expected}")]
    Character {
        /// The kind of code.
        what: &'static str,
        /// The input (masked for personal data).
        value: String,
        /// 1-based position of the offending character.
        position: usize,
        /// The offending character.
        found: char,
        /// What is allowed there, e.g. "a digit".
        expected: &'static str,
    },
    /// The check character does not match the rest of the code: usually one
    /// mistyped or swapped character.
    #[error("{what} {value}: check character is {found}, expected {expected}")]
    CheckCharacter {
        /// The kind of code.
        what: &'static str,
        /// The input (masked for personal data).
        value: String,
        /// The check character computed from the rest of the code.
        expected: char,
        /// The check character given.
        found: char,
    },
    /// The birth date in a resident ID is not a calendar date in 1900 or later.
    #[error("resident id birth date {value} is not a real date in 1900 or later")]
    BirthDate {
        /// The eight date digits (YYYYMMDD) only, never the whole ID.
        value: String,
    },
    /// A county code or resident ID does not start with a province prefix
    /// of GB/T 2260.
    #[error("{what} {value}: {prefix} is not a province prefix")]
    Province {
        /// The kind of code.
        what: &'static str,
        /// The input (masked for personal data).
        value: String,
        /// Its first two digits.
        prefix: String,
    },
    /// The birth date in a resident ID is after the day it was checked on.
    #[error("resident id birth date {value} is after today ({today})")]
    FutureBirthDate {
        /// The eight date digits (YYYYMMDD) only, never the whole ID.
        value: String,
        /// The day of the check.
        today: Date,
    },
    /// A division code ends in `00`, which names a prefecture, not a county.
    #[error("county code {value}: ends in 00, which is a prefecture, not a county")]
    NotCounty {
        /// The code as given.
        value: String,
    },
    /// The input is not in the shape this kind of code has.
    #[error("{what} {value}: {reason}")]
    Format {
        /// The kind of code.
        what: &'static str,
        /// The input (masked for personal data).
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Masks a resident ID for display: keeps the first 3 and last 4 characters
/// and replaces the rest with `*` (`110***********002X`).
///
/// Works on any string, valid or not, so error paths can use it too. A string
/// of 10 characters or fewer is replaced by stars entirely, since keeping 7
/// characters of it would hide almost nothing.
pub fn mask_id(s: &str) -> String {
    mask(s)
}

/// Masks a phone number for display: keeps the first 3 and last 4 characters
/// (`138****5678`), the same way as [`mask_id`].
pub fn mask_phone(s: &str) -> String {
    mask(s)
}

/// Keep 3 + 4 characters only if at least 4 are hidden.
fn mask(s: &str) -> String {
    const HEAD: usize = 3;
    const TAIL: usize = 4;
    let n = s.chars().count();
    if n < HEAD + TAIL + 4 {
        return "*".repeat(n);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| if i < HEAD || i >= n - TAIL { c } else { '*' })
        .collect()
}

/// Implements the string plumbing shared by every code type: `as_str`,
/// `FromStr`, `TryFrom<String>` and `From<T> for String` (the last two back
/// the serde `try_from`/`into` attributes, so deserialising validates).
macro_rules! string_code {
    ($ty:ident) => {
        impl $ty {
            /// The code in its normalised form.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $ty {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $ty {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                Self::parse(&s)
            }
        }

        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Adds a `Display` that prints the code as is; not used for personal data.
macro_rules! display_code {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

/// Checks that `s` has exactly `expected` characters.
fn exact_len(
    what: &'static str,
    s: &str,
    shown: &str,
    expected: usize,
) -> Result<Vec<char>, CodeError> {
    if s.is_empty() {
        return Err(CodeError::Empty { what });
    }
    let chars: Vec<char> = s.chars().collect();
    if chars.len() != expected {
        return Err(CodeError::Length {
            what,
            value: shown.to_owned(),
            expected,
            got: chars.len(),
        });
    }
    Ok(chars)
}

/// Checks that every character in `chars[range]` is an ASCII digit.
fn digits(
    what: &'static str,
    shown: &str,
    chars: &[char],
    range: std::ops::Range<usize>,
) -> Result<(), CodeError> {
    for i in range {
        if !chars[i].is_ascii_digit() {
            return Err(CodeError::Character {
                what,
                value: shown.to_owned(),
                position: i + 1,
                found: chars[i],
                expected: "a digit",
            });
        }
    }
    Ok(())
}

/// Checks that the first two characters (ASCII digits, checked by the
/// caller) are a province prefix of GB/T 2260.
fn province(what: &'static str, shown: &str, chars: &[char]) -> Result<(), CodeError> {
    let prefix = digit(chars[0]) * 10 + digit(chars[1]);
    let known = matches!(
        prefix,
        11..=15 | 21..=23 | 31..=37 | 41..=46 | 50..=54 | 61..=65 | 71 | 81 | 82
    );
    if !known {
        return Err(CodeError::Province {
            what,
            value: shown.to_owned(),
            prefix: format!("{prefix:02}"),
        });
    }
    Ok(())
}

/// Value of an ASCII digit; callers check `is_ascii_digit` first.
fn digit(c: char) -> u32 {
    c as u32 - '0' as u32
}

// ---------------------------------------------------------------------------

/// A county-level division code of GB/T 2260, e.g. `610702` (汉台区).
///
/// Six ASCII digits, starting with a real province prefix and not ending in
/// `00` (which would be a prefecture). Whether the county belongs to the
/// federation is the directory's business.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CountyCode(String);

string_code!(CountyCode);
display_code!(CountyCode);

impl CountyCode {
    const WHAT: &'static str = "county code";

    /// Parses and validates a county code.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let chars = exact_len(Self::WHAT, s, s, 6)?;
        digits(Self::WHAT, s, &chars, 0..6)?;
        province(Self::WHAT, s, &chars)?;
        if s.ends_with("00") {
            return Err(CodeError::NotCounty {
                value: s.to_owned(),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------

/// A resident identity card number of GB 11643 (18 characters, ISO 7064
/// MOD 11-2 check character, birth date in characters 7-14, a province of
/// GB/T 2260 in characters 1-2).
///
/// New input is parsed with [`ResidentId::parse_on`], which also refuses a
/// birth date after the given day; [`ResidentId::parse`] leaves that out,
/// for text with no "today" to compare with (stored records, files).
///
/// `Debug` prints the masked form and there is no `Display`, so the full
/// number only leaves through an explicit [`ResidentId::as_str`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ResidentId(String);

string_code!(ResidentId);

impl fmt::Debug for ResidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResidentId({})", self.masked())
    }
}

impl ResidentId {
    const WHAT: &'static str = "resident id";
    const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
    const CHECK: [char; 11] = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'];

    /// Parses and validates a resident ID typed or received on `today`: as
    /// [`ResidentId::parse`], and the birth date is not after `today`.
    pub fn parse_on(s: &str, today: Date) -> Result<Self, CodeError> {
        let id = Self::parse(s)?;
        if id.birth_date() > today {
            return Err(CodeError::FutureBirthDate {
                value: id.0[6..14].to_owned(),
                today,
            });
        }
        Ok(id)
    }

    /// Parses and validates a resident ID: digits, a province prefix, a real
    /// birth date in 1900 or later and the check character; a lowercase `x`
    /// check character is accepted and stored as `X`. Whether the birth date
    /// is in the future needs a date: see [`ResidentId::parse_on`].
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let shown = mask_id(s);
        let chars = exact_len(Self::WHAT, s, &shown, 18)?;
        digits(Self::WHAT, &shown, &chars, 0..17)?;
        let found = chars[17].to_ascii_uppercase();
        if !(found.is_ascii_digit() || found == 'X') {
            return Err(CodeError::Character {
                what: Self::WHAT,
                value: shown,
                position: 18,
                found: chars[17],
                expected: "a digit or X",
            });
        }
        province(Self::WHAT, &shown, &chars)?;
        // Past this point the input is all ASCII, so byte slicing is safe.
        let normalised = s.to_ascii_uppercase();
        birth_date(&normalised[6..14])?;
        let sum: u32 = chars[..17]
            .iter()
            .zip(Self::WEIGHTS)
            .map(|(&c, w)| digit(c) * w)
            .sum();
        let expected = Self::CHECK[(sum % 11) as usize];
        if found != expected {
            return Err(CodeError::CheckCharacter {
                what: Self::WHAT,
                value: mask_id(&normalised),
                expected,
                found,
            });
        }
        Ok(Self(normalised))
    }

    /// The holder's birth date (characters 7-14).
    pub fn birth_date(&self) -> Date {
        // Validated by `parse`, the only constructor.
        birth_date(&self.0[6..14]).expect("resident id birth date validated at parse")
    }

    /// The masked form, e.g. `110***********002X`.
    pub fn masked(&self) -> String {
        mask_id(&self.0)
    }
}

/// Parses eight ASCII digits `YYYYMMDD` as a calendar date in 1900 or later.
fn birth_date(digits: &str) -> Result<Date, CodeError> {
    let bad = || CodeError::BirthDate {
        value: digits.to_owned(),
    };
    let year: i32 = digits[..4].parse().map_err(|_| bad())?;
    let month: u8 = digits[4..6].parse().map_err(|_| bad())?;
    let day: u8 = digits[6..8].parse().map_err(|_| bad())?;
    if year < 1900 {
        return Err(bad());
    }
    let month = Month::try_from(month).map_err(|_| bad())?;
    Date::from_calendar_date(year, month, day).map_err(|_| bad())
}

// ---------------------------------------------------------------------------

/// A unified social credit code of GB 32100, identifying a company or other
/// organisation (18 characters, MOD 31 check character).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CreditCode(String);

string_code!(CreditCode);
display_code!(CreditCode);

impl CreditCode {
    const WHAT: &'static str = "unified social credit code";
    /// The code's alphabet; a character's value is its index. I, O, S, V and
    /// Z are left out because they are easily misread.
    const ALPHABET: &'static str = "0123456789ABCDEFGHJKLMNPQRTUWXY";

    /// Parses and validates a credit code; lowercase input is accepted and
    /// stored in uppercase.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let chars = exact_len(Self::WHAT, s, s, 18)?;
        let mut values = [0u32; 18];
        for (i, &c) in chars.iter().enumerate() {
            let upper = c.to_ascii_uppercase();
            values[i] = Self::ALPHABET
                .find(upper)
                .ok_or_else(|| CodeError::Character {
                    what: Self::WHAT,
                    value: s.to_owned(),
                    position: i + 1,
                    found: c,
                    expected: "a digit or a capital letter other than I, O, S, V, Z",
                })? as u32;
        }
        let normalised = s.to_ascii_uppercase();
        // Weight i is 3^i mod 31 (i from 0).
        let mut weight = 1;
        let mut sum = 0;
        for v in &values[..17] {
            sum += v * weight;
            weight = weight * 3 % 31;
        }
        let check = ((31 - sum % 31) % 31) as usize;
        let expected = char::from(Self::ALPHABET.as_bytes()[check]);
        let found = char::from(normalised.as_bytes()[17]);
        if found != expected {
            return Err(CodeError::CheckCharacter {
                what: Self::WHAT,
                value: normalised,
                expected,
                found,
            });
        }
        Ok(Self(normalised))
    }
}

// ---------------------------------------------------------------------------

/// A postal waybill number: UPU S10 (`EA473124829CN`: 2 letters, 8 digits, a
/// check digit, a 2-letter country) or a 13-digit domestic number, which has
/// no check digit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Waybill(String);

string_code!(Waybill);
display_code!(Waybill);

impl Waybill {
    const WHAT: &'static str = "waybill";
    const WEIGHTS: [u32; 8] = [8, 6, 4, 2, 3, 5, 9, 7];

    /// Parses and validates a waybill; letters are stored in uppercase.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        let chars: Vec<char> = exact_len(Self::WHAT, s, s, 13)?
            .into_iter()
            .map(|c| c.to_ascii_uppercase())
            .collect();
        // Both forms are 13 long; a leading digit means the domestic one.
        if chars[0].is_ascii_digit() {
            digits(Self::WHAT, s, &chars, 0..13)?;
            return Ok(Self(s.to_owned()));
        }
        for i in [0, 1, 11, 12] {
            if !chars[i].is_ascii_uppercase() {
                return Err(CodeError::Character {
                    what: Self::WHAT,
                    value: s.to_owned(),
                    position: i + 1,
                    found: chars[i],
                    expected: "a letter",
                });
            }
        }
        digits(Self::WHAT, s, &chars, 2..11)?;
        let expected = Self::check_digit(chars[2..10].iter().map(|&c| digit(c)));
        if chars[10] != expected {
            return Err(CodeError::CheckCharacter {
                what: Self::WHAT,
                value: s.to_ascii_uppercase(),
                expected,
                found: chars[10],
            });
        }
        Ok(Self(s.to_ascii_uppercase()))
    }

    /// The UPU S10 number of a service indicator (`EA`, `RR`, …), a serial
    /// (its last eight digits are used) and China's country code, with its
    /// check digit.
    pub fn s10(service: &str, serial: u64) -> Result<Self, CodeError> {
        let digits = format!("{:08}", serial % 100_000_000);
        let check = Self::check_digit(digits.chars().map(digit));
        Self::parse(&format!("{service}{digits}{check}CN"))
    }

    /// The S10 check digit of eight serial digits.
    fn check_digit(serial: impl Iterator<Item = u32>) -> char {
        let sum: u32 = serial.zip(Self::WEIGHTS).map(|(d, w)| d * w).sum();
        match 11 - sum % 11 {
            10 => '0',
            11 => '5',
            // d is 1..=9 here, so from_digit always succeeds.
            d => char::from_digit(d, 10).unwrap_or('?'),
        }
    }

    /// Whether this is a UPU S10 number (as opposed to a domestic numeric one).
    pub fn is_s10(&self) -> bool {
        !self.0.starts_with(|c: char| c.is_ascii_digit())
    }
}

// ---------------------------------------------------------------------------

/// A contact phone number: a mainland mobile number (11 digits starting with
/// 1) or a landline (digits with at most one `-`, 7 to 20 characters).
///
/// Like [`ResidentId`], `Debug` prints it masked and there is no `Display`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

string_code!(Phone);

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.masked())
    }
}

impl Phone {
    const WHAT: &'static str = "phone number";

    /// Parses and validates a phone number.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.is_empty() {
            return Err(CodeError::Empty { what: Self::WHAT });
        }
        let shown = mask_phone(s);
        let mut dashes = 0;
        for (i, c) in s.chars().enumerate() {
            match c {
                '0'..='9' => {}
                '-' => dashes += 1,
                _ => {
                    return Err(CodeError::Character {
                        what: Self::WHAT,
                        value: shown,
                        position: i + 1,
                        found: c,
                        expected: "a digit or '-'",
                    });
                }
            }
        }
        let format = |reason: &str| CodeError::Format {
            what: Self::WHAT,
            value: shown.clone(),
            reason: reason.to_owned(),
        };
        // Landline numbers never start with 1 (area codes start with 0, local
        // numbers with 2-9), so a leading 1 is a mobile number of the wrong
        // length rather than a landline.
        if s.starts_with('1') {
            if dashes > 0 || s.len() != 11 {
                return Err(format("a mobile number has exactly 11 digits and no '-'"));
            }
            return Ok(Self(s.to_owned()));
        }
        if dashes > 1 {
            return Err(format("a landline number has at most one '-'"));
        }
        if s.starts_with('-') || s.ends_with('-') {
            return Err(format("'-' must separate area code and number"));
        }
        // All ASCII here, so bytes are characters.
        if !(7..=20).contains(&s.len()) {
            return Err(CodeError::LengthRange {
                what: Self::WHAT,
                value: shown,
                min: 7,
                max: 20,
                got: s.len(),
            });
        }
        Ok(Self(s.to_owned()))
    }

    /// Whether this is a mobile (not a landline) number.
    pub fn is_mobile(&self) -> bool {
        self.0.starts_with('1')
    }

    /// The masked form, e.g. `138****5678`.
    pub fn masked(&self) -> String {
        mask_phone(&self.0)
    }
}

// ---------------------------------------------------------------------------

/// A government service item's implementation code, e.g. `GT-0001`: 1 to 32
/// characters of `A-Z a-z 0-9 -`, kept as given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ItemCode(String);

string_code!(ItemCode);
display_code!(ItemCode);

impl ItemCode {
    const WHAT: &'static str = "item code";

    /// Parses and validates an item code.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.is_empty() {
            return Err(CodeError::Empty { what: Self::WHAT });
        }
        if let Some((i, c)) = s
            .chars()
            .enumerate()
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err(CodeError::Character {
                what: Self::WHAT,
                value: s.to_owned(),
                position: i + 1,
                found: c,
                expected: "a letter, digit or '-'",
            });
        }
        if s.len() > 32 {
            return Err(CodeError::LengthRange {
                what: Self::WHAT,
                value: s.to_owned(),
                min: 1,
                max: 32,
                got: s.len(),
            });
        }
        Ok(Self(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------

/// A case number, `<county>-<yyyymmdd>-<n>` (e.g. `610702-20261125-17`): the
/// receiving county, the date of intake and a per-county sequence number from 1.
///
/// Ordered by county, then date, then sequence number (so `-9` sorts before
/// `-10`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CaseNo {
    county: CountyCode,
    date: Date,
    n: u64,
    text: String,
}

impl CaseNo {
    const WHAT: &'static str = "case number";

    /// Builds the case number for the `n`th case taken in at `county` on `date`.
    ///
    /// Fails if `n` is 0 or the date's year is outside 1900..=9999 (it would
    /// not fit the `yyyymmdd` form).
    pub fn new(county: &CountyCode, date: Date, n: u64) -> Result<Self, CodeError> {
        let text = format!(
            "{county}-{:04}{:02}{:02}-{n}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        let format = |reason: &str| CodeError::Format {
            what: Self::WHAT,
            value: text.clone(),
            reason: reason.to_owned(),
        };
        if n == 0 {
            return Err(format("sequence number starts at 1"));
        }
        if !(1900..=9999).contains(&date.year()) {
            return Err(format("date must be in the years 1900 to 9999"));
        }
        Ok(Self {
            county: county.clone(),
            date,
            n,
            text,
        })
    }

    /// Parses a case number.
    pub fn parse(s: &str) -> Result<Self, CodeError> {
        if s.is_empty() {
            return Err(CodeError::Empty { what: Self::WHAT });
        }
        let format = |reason: String| CodeError::Format {
            what: Self::WHAT,
            value: s.to_owned(),
            reason,
        };
        let parts: Vec<&str> = s.split('-').collect();
        let [county, date, n] = parts[..] else {
            return Err(format("expected <county>-<yyyymmdd>-<n>".to_owned()));
        };
        let county = CountyCode::parse(county).map_err(|e| format(e.to_string()))?;
        let bad_date = || format(format!("{date:?} is not a date in the form yyyymmdd"));
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_date());
        }
        let year: i32 = date[..4].parse().map_err(|_| bad_date())?;
        let month: u8 = date[4..6].parse().map_err(|_| bad_date())?;
        let day: u8 = date[6..].parse().map_err(|_| bad_date())?;
        let month = Month::try_from(month).map_err(|_| bad_date())?;
        let date = Date::from_calendar_date(year, month, day).map_err(|_| bad_date())?;
        let bad_n = || {
            format(format!(
                "{n:?} is not a sequence number from 1 without leading zeros"
            ))
        };
        if n.is_empty() || n.starts_with('0') || !n.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad_n());
        }
        let n: u64 = n.parse().map_err(|_| bad_n())?;
        Self::new(&county, date, n)
    }

    /// The case number as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The receiving county, which issued the number.
    pub fn county(&self) -> CountyCode {
        self.county.clone()
    }

    /// The date of intake.
    pub fn date(&self) -> Date {
        self.date
    }

    /// The sequence number within the county and day.
    pub fn seq(&self) -> u64 {
        self.n
    }
}

impl fmt::Display for CaseNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for CaseNo {
    type Err = CodeError;
    fn from_str(s: &str) -> Result<Self, CodeError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for CaseNo {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        Self::parse(&s)
    }
}

impl From<CaseNo> for String {
    fn from(v: CaseNo) -> String {
        v.text
    }
}

impl AsRef<str> for CaseNo {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn county_code_accepts_real_counties() {
        for c in ["610702", "610113", "611002", "110105", "820001", "650102"] {
            let code: CountyCode = c.parse().unwrap();
            assert_eq!(code.as_str(), c);
            assert_eq!(code.to_string(), c);
        }
    }

    #[test]
    fn county_code_errors() {
        assert_eq!(
            CountyCode::parse(""),
            Err(CodeError::Empty {
                what: "county code"
            })
        );
        assert_eq!(
            CountyCode::parse("61070").unwrap_err().to_string(),
            "county code 61070: has 5 characters, expected 6"
        );
        assert_eq!(
            CountyCode::parse("61070a").unwrap_err().to_string(),
            "county code 61070a: character 6 is 'a', expected a digit"
        );
        assert_eq!(
            CountyCode::parse("６１０７０２").unwrap_err(),
            CodeError::Character {
                what: "county code",
                value: "６１０７０２".into(),
                position: 1,
                found: '６',
                expected: "a digit",
            }
        );
        assert_eq!(
            CountyCode::parse("990702").unwrap_err().to_string(),
            "county code 990702: 99 is not a province prefix"
        );
        assert!(matches!(
            CountyCode::parse("160101"),
            Err(CodeError::Province { .. })
        ));
        assert_eq!(
            CountyCode::parse("610700").unwrap_err().to_string(),
            "county code 610700: ends in 00, which is a prefecture, not a county"
        );
    }

    #[test]
    fn county_code_serde_validates() {
        #[derive(Deserialize, Serialize)]
        struct W {
            c: CountyCode,
        }
        let w: W = toml::from_str("c = \"610702\"").unwrap();
        assert_eq!(w.c.as_str(), "610702");
        assert_eq!(toml::to_string(&w).unwrap().trim(), "c = \"610702\"");
        let err = toml::from_str::<W>("c = \"610700\"").err().unwrap();
        assert!(err.to_string().contains("prefecture"), "{err}");
    }

    #[test]
    fn masking() {
        assert_eq!(mask_id("11010519491231002X"), "110***********002X");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("12345"), "*****");
        assert_eq!(mask_id("1234567890"), "**********");
        assert_eq!(mask_id(""), "");
        assert_eq!(mask_id("身份证号码一二三四五六七"), "身份证*****四五六七");
    }

    #[test]
    fn resident_id_valid() {
        let id = ResidentId::parse("11010519491231002X").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date!(1949 - 12 - 31));
        assert_eq!(id.masked(), "110***********002X");
        assert_eq!(format!("{id:?}"), "ResidentId(110***********002X)");
        let lower: ResidentId = "11010519491231002x".parse().unwrap();
        assert_eq!(lower, id);
        let s: String = id.into();
        assert_eq!(s, "11010519491231002X");
    }

    #[test]
    fn resident_id_errors_are_masked() {
        assert_eq!(
            ResidentId::parse(""),
            Err(CodeError::Empty {
                what: "resident id"
            })
        );
        assert_eq!(
            ResidentId::parse("110105194912310021")
                .unwrap_err()
                .to_string(),
            "resident id 110***********0021: check character is 1, expected X"
        );
        assert_eq!(
            ResidentId::parse("11010519491231002")
                .unwrap_err()
                .to_string(),
            "resident id 110**********1002: has 17 characters, expected 18"
        );
        assert_eq!(
            ResidentId::parse("1101051949123100A2")
                .unwrap_err()
                .to_string(),
            "resident id 110***********00A2: character 17 is 'A', expected a digit"
        );
        assert!(matches!(
            ResidentId::parse("11010519491231002Y"),
            Err(CodeError::Character {
                position: 18,
                found: 'Y',
                ..
            })
        ));
        assert_eq!(
            ResidentId::parse("110105194902300021")
                .unwrap_err()
                .to_string(),
            "resident id birth date 19490230 is not a real date in 1900 or later"
        );
        assert_eq!(
            ResidentId::parse("110105189912310021").unwrap_err(),
            CodeError::BirthDate {
                value: "18991231".into()
            }
        );
        assert!(matches!(
            ResidentId::parse("110105194913010021"),
            Err(CodeError::BirthDate { .. })
        ));
    }

    #[test]
    fn resident_id_province_and_future_birth_dates() {
        assert_eq!(
            ResidentId::parse("000105194912310024")
                .unwrap_err()
                .to_string(),
            "resident id 000***********0024: 00 is not a province prefix"
        );
        assert!(matches!(
            ResidentId::parse("160105194912310021"),
            Err(CodeError::Province { what: "resident id", ref prefix, .. }) if prefix == "16"
        ));
        // Valid check characters, so only the province or the date can fail.
        for (id, ok) in [
            ("810000200001010014", true),
            ("720000200001010012", false),
            ("910000200001010018", false),
        ] {
            assert_eq!(ResidentId::parse(id).is_ok(), ok, "{id}");
        }
        let today = date!(2026 - 12 - 01);
        let vector = ResidentId::parse_on("11010519491231002x", today).unwrap();
        assert_eq!(vector.as_str(), "11010519491231002X");
        // Born 2099-01-01: valid in shape, refused against today.
        let future = "110105209901010012";
        assert!(ResidentId::parse(future).is_ok());
        assert_eq!(
            ResidentId::parse_on(future, today).unwrap_err().to_string(),
            "resident id birth date 20990101 is after today (2026-12-01)"
        );
        // Born today is fine.
        assert!(ResidentId::parse_on("110105202612010014", today).is_ok());
        assert!(ResidentId::parse_on("11010520261202001X", today).is_err());
    }

    #[test]
    fn credit_code() {
        let c = CreditCode::parse("91350100M000100Y43").unwrap();
        assert_eq!(c.to_string(), "91350100M000100Y43");
        assert_eq!(CreditCode::parse("91350100m000100y43").unwrap(), c);
        assert_eq!(
            CreditCode::parse("91350100M000100Y44")
                .unwrap_err()
                .to_string(),
            "unified social credit code 91350100M000100Y44: check character is 4, expected 3"
        );
        assert!(matches!(
            CreditCode::parse("91350100I000100Y43"),
            Err(CodeError::Character {
                position: 9,
                found: 'I',
                ..
            })
        ));
        assert!(matches!(
            CreditCode::parse("9135"),
            Err(CodeError::Length { got: 4, .. })
        ));
        assert!(matches!(
            CreditCode::parse(""),
            Err(CodeError::Empty { .. })
        ));
    }

    #[test]
    fn waybill() {
        let w = Waybill::parse("ea473124829cn").unwrap();
        assert_eq!(w.as_str(), "EA473124829CN");
        assert!(w.is_s10());
        let d: Waybill = "1234567890123".parse().unwrap();
        assert!(!d.is_s10());
        assert_eq!(
            Waybill::parse("EA473124828CN").unwrap_err().to_string(),
            "waybill EA473124828CN: check character is 8, expected 9"
        );
        // Special cases of the check digit: a sum of 0 gives 11, written 5;
        // 6 x weight 2 = 12, 12 mod 11 = 1, gives 10, written 0.
        assert!(Waybill::parse("RR000000005CN").is_ok());
        assert!(Waybill::parse("RR000600000CN").is_ok());
        assert_eq!(
            Waybill::s10("EA", 47312482).unwrap().as_str(),
            "EA473124829CN"
        );
        assert_eq!(
            Waybill::s10("RR", 60_000).unwrap().as_str(),
            "RR000600000CN"
        );
        assert_eq!(Waybill::s10("RR", 0).unwrap().as_str(), "RR000000005CN");
        assert!(
            Waybill::s10("E1", 1).is_err(),
            "a bad service indicator is refused"
        );
        assert!(matches!(
            Waybill::parse("E1473124829CN"),
            Err(CodeError::Character {
                position: 2,
                expected: "a letter",
                ..
            })
        ));
        assert!(matches!(
            Waybill::parse("EA47312482XCN"),
            Err(CodeError::Character { position: 11, .. })
        ));
        assert!(matches!(
            Waybill::parse("123456789012A"),
            Err(CodeError::Character { position: 13, .. })
        ));
        assert!(matches!(
            Waybill::parse("EA47"),
            Err(CodeError::Length { .. })
        ));
        assert!(matches!(Waybill::parse(""), Err(CodeError::Empty { .. })));
    }

    #[test]
    fn phone() {
        let m = Phone::parse("13812345678").unwrap();
        assert!(m.is_mobile());
        assert_eq!(m.masked(), "138****5678");
        assert_eq!(format!("{m:?}"), "Phone(138****5678)");
        let l = Phone::parse("029-88881234").unwrap();
        assert!(!l.is_mobile());
        assert!(Phone::parse("8888123").is_ok());
        assert_eq!(
            Phone::parse("1381234567").unwrap_err().to_string(),
            "phone number **********: a mobile number has exactly 11 digits and no '-'"
        );
        assert_eq!(
            Phone::parse("138 1234 5678").unwrap_err().to_string(),
            "phone number 138******5678: character 4 is ' ', expected a digit or '-'"
        );
        assert!(matches!(
            Phone::parse("029-8888-1234"),
            Err(CodeError::Format { .. })
        ));
        assert!(matches!(
            Phone::parse("-02988881234"),
            Err(CodeError::Format { .. })
        ));
        assert!(matches!(
            Phone::parse("888812"),
            Err(CodeError::LengthRange {
                min: 7,
                max: 20,
                got: 6,
                ..
            })
        ));
        assert!(matches!(Phone::parse(""), Err(CodeError::Empty { .. })));
    }

    #[test]
    fn item_code() {
        let i: ItemCode = "GT-0001".parse().unwrap();
        assert_eq!(i.to_string(), "GT-0001");
        assert!(matches!(ItemCode::parse(""), Err(CodeError::Empty { .. })));
        assert_eq!(
            ItemCode::parse("GT_0001").unwrap_err().to_string(),
            "item code GT_0001: character 3 is '_', expected a letter, digit or '-'"
        );
        assert!(ItemCode::parse(&"A".repeat(32)).is_ok());
        assert!(matches!(
            ItemCode::parse(&"A".repeat(33)),
            Err(CodeError::LengthRange { got: 33, .. })
        ));
    }

    #[test]
    fn case_no() {
        let county = CountyCode::parse("610702").unwrap();
        let c = CaseNo::new(&county, date!(2026 - 11 - 25), 17).unwrap();
        assert_eq!(c.as_str(), "610702-20261125-17");
        assert_eq!(c.to_string(), "610702-20261125-17");
        assert_eq!(c.county(), county);
        assert_eq!(c.date(), date!(2026 - 11 - 25));
        assert_eq!(c.seq(), 17);
        assert_eq!(CaseNo::parse("610702-20261125-17").unwrap(), c);
        let nine = CaseNo::new(&county, date!(2026 - 11 - 25), 9).unwrap();
        assert!(nine < c, "ordered by sequence number, not text");
        let s = String::from(c);
        assert_eq!(s.parse::<CaseNo>().unwrap().seq(), 17);
    }

    #[test]
    fn case_no_errors() {
        let county = CountyCode::parse("610702").unwrap();
        assert_eq!(
            CaseNo::new(&county, date!(2026 - 11 - 25), 0)
                .unwrap_err()
                .to_string(),
            "case number 610702-20261125-0: sequence number starts at 1"
        );
        assert!(CaseNo::new(&county, date!(1899 - 12 - 31), 1).is_err());
        assert!(matches!(CaseNo::parse(""), Err(CodeError::Empty { .. })));
        for bad in [
            "610702-20261125",
            "610702-20261125-1-2",
            "610700-20261125-1",
            "610702-20261131-1",
            "610702-2026112-1",
            "610702-20261125-01",
            "610702-20261125-",
            "610702-20261125-x",
            "610702-20261125-99999999999999999999",
        ] {
            assert!(
                matches!(CaseNo::parse(bad), Err(CodeError::Format { .. })),
                "{bad}"
            );
        }
        assert_eq!(
            CaseNo::parse("610700-20261125-1").unwrap_err().to_string(),
            "case number 610700-20261125-1: county code 610700: ends in 00, which is a prefecture, not a county"
        );
    }
}

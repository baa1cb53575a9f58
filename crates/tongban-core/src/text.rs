//! Free text from people and partners: names, addresses, notes, reasons,
//! carriers, licence numbers.
//!
//! One check, [`free_text`] (or [`optional_text`] where a field may be
//! left empty), for every such field at every edge: surrounding whitespace
//! trimmed, a length limit in characters, and no control characters
//! anywhere in the input as given. A control character in stored text
//! would reach a clerk's terminal (an ESC sequence rewriting the screen), a
//! log line or a CSV export; refusing it at intake keeps it out of all of
//! them. The error names the field and the character's code point and
//! position, never the text itself, since the text may be personal data.
//!
//! This module only checks; it stores nothing and knows nothing of which
//! field is personal data.

/// Why a free-text field was refused. The message names the field, never
/// the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    /// The field is required and was empty (or only whitespace).
    #[error("{field} is required")]
    Empty {
        /// The field, e.g. "address".
        field: String,
    },
    /// The field is over its length limit.
    #[error("{field} is longer than {max} characters ({got})")]
    TooLong {
        /// The field.
        field: String,
        /// The most characters allowed.
        max: usize,
        /// The number of characters found (after trimming).
        got: usize,
    },
    /// The field holds a control character (Unicode general category Cc:
    /// U+0000 to U+001F and U+007F to U+009F, so also tab and newline).
    #[error("{field}: contains a control character (U+{:04X}) at position {position}", u32::from(*found))]
    Control {
        /// The field.
        field: String,
        /// The control character.
        found: char,
        /// Its 1-based character position in the input as given.
        position: usize,
    },
}

/// The first control character of `s` and its 1-based character position.
pub fn control_character(s: &str) -> Option<(usize, char)> {
    s.chars()
        .enumerate()
        .find(|(_, c)| c.is_control())
        .map(|(i, c)| (i + 1, c))
}

/// Checks a required free-text field: no control characters, not empty
/// once trimmed, at most `max_chars` characters. Returns the trimmed text.
pub fn free_text(field: &str, s: &str, max_chars: usize) -> Result<String, TextError> {
    let text = optional_text(field, s, max_chars)?;
    if text.is_empty() {
        return Err(TextError::Empty {
            field: field.to_owned(),
        });
    }
    Ok(text)
}

/// Like [`free_text`], for a field that may be left empty.
pub fn optional_text(field: &str, s: &str, max_chars: usize) -> Result<String, TextError> {
    // Checked before trimming: a trailing newline is refused too, not
    // silently dropped, so what was typed and what is stored agree.
    if let Some((position, found)) = control_character(s) {
        return Err(TextError::Control {
            field: field.to_owned(),
            found,
            position,
        });
    }
    let text = s.trim();
    let got = text.chars().count();
    if got > max_chars {
        return Err(TextError::TooLong {
            field: field.to_owned(),
            max: max_chars,
            got,
        });
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_trimmed_and_kept() {
        assert_eq!(free_text("name", "  张三 ", 200).unwrap(), "张三");
        assert_eq!(optional_text("note", "", 10).unwrap(), "");
        assert_eq!(optional_text("note", "   ", 10).unwrap(), "");
        // Not control characters: ideographic space, zero-width joiner.
        assert!(free_text("name", "张\u{3000}三\u{200d}", 10).is_ok());
    }

    #[test]
    fn control_characters_are_refused_with_field_code_and_position() {
        assert_eq!(
            free_text("address", "北大街1号\u{1b}[2J", 200)
                .unwrap_err()
                .to_string(),
            "address: contains a control character (U+001B) at position 6"
        );
        assert_eq!(
            free_text("address", "北大街\n1号", 200).unwrap_err(),
            TextError::Control {
                field: "address".into(),
                found: '\n',
                position: 4,
            }
        );
        for bad in ["a\tb", "a\u{0}", "a\u{7f}", "a\u{85}", "a\u{9f}", "a\r\n"] {
            assert!(
                matches!(
                    optional_text("note", bad, 100),
                    Err(TextError::Control { position: 2, .. })
                ),
                "{bad:?}"
            );
        }
        // A trailing newline is refused, not trimmed away.
        assert!(matches!(
            free_text("name", "张三\n", 200),
            Err(TextError::Control { .. })
        ));
    }

    #[test]
    fn empty_and_long_text() {
        assert_eq!(
            free_text("carrier", " ", 64).unwrap_err().to_string(),
            "carrier is required"
        );
        assert!(free_text("name", &"张".repeat(200), 200).is_ok());
        assert_eq!(
            free_text("name", &"张".repeat(201), 200)
                .unwrap_err()
                .to_string(),
            "name is longer than 200 characters (201)"
        );
    }

    #[test]
    fn the_first_control_character_is_found() {
        assert_eq!(control_character("ok"), None);
        assert_eq!(control_character("a\u{7}b\u{1b}"), Some((2, '\u{7}')));
    }
}

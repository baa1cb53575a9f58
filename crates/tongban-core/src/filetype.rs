//! What kind of file a material's declared name says it is: the MIME type
//! the node reports beside a material it streams back, and which of them
//! a browser may be shown inline. The name is the applicant's word, not a
//! check of the bytes, so only a few passive formats are ever shown inline
//! ([`inline_safe`]); the rest are downloads.

/// Extensions (lowercase, without the dot) and their MIME types: the
/// formats applicants' documents come in at a 跨域通办 window.
const TYPES: [(&str, &str); 17] = [
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("jpg", "image/jpeg"),
    ("jpeg", "image/jpeg"),
    ("gif", "image/gif"),
    ("webp", "image/webp"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("svg", "image/svg+xml"),
    ("ofd", "application/ofd"),
    ("txt", "text/plain"),
    ("htm", "text/html"),
    ("html", "text/html"),
    ("doc", "application/msword"),
    (
        "docx",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
    ("xls", "application/vnd.ms-excel"),
    ("zip", "application/zip"),
];

/// Formats a browser renders without running anything the file carries:
/// safe to show inline from the console's origin. Not SVG or HTML, which
/// can carry script.
const INLINE: [&str; 5] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
];

/// The MIME type `filename`'s extension names, if it is one of the known
/// formats.
pub fn content_type(filename: &str) -> Option<&'static str> {
    let (_, ext) = filename.rsplit_once('.')?;
    let ext = ext.to_ascii_lowercase();
    TYPES.iter().find(|(e, _)| *e == ext).map(|(_, t)| *t)
}

/// Whether `content_type` is one a browser may be shown inline.
pub fn inline_safe(content_type: &str) -> bool {
    INLINE.contains(&content_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_extensions_name_their_type_and_only_passive_ones_are_inline() {
        assert_eq!(content_type("户口簿.PDF"), Some("application/pdf"));
        assert_eq!(content_type("photo.jpeg"), Some("image/jpeg"));
        assert_eq!(content_type("a.b.png"), Some("image/png"));
        assert_eq!(content_type("README"), None);
        assert_eq!(content_type("x.exe"), None);
        assert!(inline_safe("application/pdf"));
        assert!(inline_safe("image/webp"));
        assert!(!inline_safe("image/svg+xml"));
        assert!(!inline_safe("text/html"));
        assert!(!inline_safe(""));
    }
}

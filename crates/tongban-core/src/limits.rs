//! Size limits shared by the window, the node and the CLI, so that a file
//! the window accepts is never refused at home.

/// Default largest size of one material file, in bytes (64 MiB): enough for
/// a scanned multi-page document at archival resolution.
pub const DEFAULT_MAX_MATERIAL_BYTES: u64 = 64 << 20;

/// Default largest total size of all materials of one case, in bytes
/// (256 MiB), bounding what one handoff can put on a node's disk.
pub const DEFAULT_MAX_CASE_BYTES: u64 = 256 << 20;

/// A size in binary units, as people read them: `512 B`, `1.5 KiB`, `64 MiB`.
pub fn binary_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut unit = 0;
    let mut whole = bytes;
    while whole >= 1024 && unit + 1 < UNITS.len() {
        whole /= 1024;
        unit += 1;
    }
    if unit == 0 {
        return format!("{bytes} B");
    }
    let value = bytes as f64 / (1u64 << (10 * unit)) as f64;
    let text = format!("{value:.1}");
    let text = text.strip_suffix(".0").unwrap_or(&text);
    format!("{text} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_holds_several_full_size_materials() {
        assert_eq!(DEFAULT_MAX_MATERIAL_BYTES, 67_108_864);
        assert_eq!(DEFAULT_MAX_CASE_BYTES / DEFAULT_MAX_MATERIAL_BYTES, 4);
        assert_eq!(binary_size(DEFAULT_MAX_MATERIAL_BYTES), "64 MiB");
        assert_eq!(binary_size(1536), "1.5 KiB");
        assert_eq!(binary_size(1000), "1000 B");
    }
}

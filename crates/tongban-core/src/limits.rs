//! Size limits shared by the window, the node and the CLI, so that a file
//! the window accepts is never refused at home.

/// Default largest size of one material file, in bytes (64 MiB): enough for
/// a scanned multi-page document at archival resolution.
pub const DEFAULT_MAX_MATERIAL_BYTES: u64 = 64 << 20;

/// Default largest total size of all materials of one case, in bytes
/// (256 MiB), bounding what one handoff can put on a node's disk.
pub const DEFAULT_MAX_CASE_BYTES: u64 = 256 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_case_holds_several_full_size_materials() {
        assert_eq!(DEFAULT_MAX_MATERIAL_BYTES, 67_108_864);
        assert_eq!(DEFAULT_MAX_CASE_BYTES / DEFAULT_MAX_MATERIAL_BYTES, 4);
    }
}

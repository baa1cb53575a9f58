//! Materials as the store serves them: appending a small one to the
//! material log, and reading any one back checked.
//!
//! Receiving uploads into files is [`crate::blobs`]'s; the log's format is
//! [`crate::material_log`]'s.

use super::Store;
use crate::StoreError;
use crate::records::{LogSpan, MaterialRef};

impl Store {
    /// Appends a small material to the material log and says where it is
    /// (for its `MaterialRef`). Durable with the next commit, which syncs
    /// the log before it writes anything.
    pub fn append_material(&self, content: &[u8]) -> Result<LogSpan, StoreError> {
        self.materials.append(content)
    }

    /// A small material's content, read back checked against its digest
    /// (None: it is a file).
    pub fn small_material(&self, m: &MaterialRef) -> Result<Option<Vec<u8>>, StoreError> {
        m.log
            .map(|span| self.materials.read(span, &m.sha256))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Batch, test_case as case};
    use super::*;
    use crate::records::Side;
    use tongban_core::CaseState;

    #[tokio::test]
    async fn small_materials_are_durable_before_the_commit_that_names_them_and_read_back_checked() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("materials.log");
        let a = b"id card scan".to_vec();
        let b = vec![9u8; 16 * 1024];
        let material = |store: &Store, content: &[u8]| MaterialRef {
            kind: "k".into(),
            filename: "f".into(),
            size: content.len() as u64,
            sha256: crate::records::hex(&sha2::Sha256::digest(content)),
            log: Some(store.append_material(content).unwrap()),
        };
        let (ma, mb) = {
            let store = Store::open(dir.path()).unwrap();
            let ma = material(&store, &a);
            let mb = material(&store, &b);
            assert_eq!(
                store
                    .materials
                    .synced
                    .load(std::sync::atomic::Ordering::Acquire),
                0
            );
            let mut c = case("a1", Side::Window, CaseState::Queued);
            c.materials = vec![ma.clone(), mb.clone()];
            let mut batch = Batch::default();
            batch.put_case(c);
            store.commit(batch).await.unwrap();
            assert_eq!(
                store
                    .materials
                    .synced
                    .load(std::sync::atomic::Ordering::Acquire),
                (a.len() + b.len()) as u64,
                "the commit synced the log first"
            );
            assert_eq!(store.small_material(&ma).unwrap().unwrap(), a);
            let mut absent = ma.clone();
            absent.log = None;
            assert_eq!(store.small_material(&absent).unwrap(), None, "a file");
            (ma, mb)
        };
        let store = Store::open(dir.path()).unwrap();
        let held = store.case("a1").unwrap().unwrap();
        assert_eq!(
            held.materials,
            vec![ma.clone(), mb.clone()],
            "spans kept in the record"
        );
        assert_eq!(
            store.small_material(&mb).unwrap().unwrap(),
            b,
            "after a reopen"
        );
        // Bytes changed on disk are caught on read, not handed out.
        drop(store);
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[a.len() + 5] ^= 1;
        std::fs::write(&log, bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store.small_material(&mb).unwrap_err();
        assert!(err.to_string().contains("reads back as"), "{err}");
        assert_eq!(store.small_material(&ma).unwrap().unwrap(), a);
        // A damaged span: past the end of the log, or absurdly long.
        let mut past = ma.clone();
        past.log = Some(LogSpan {
            offset: 1 << 40,
            len: 10,
        });
        let err = store.small_material(&past).unwrap_err();
        assert!(err.to_string().contains("materials.log"), "{err}");
        let mut huge = ma.clone();
        huge.log = Some(LogSpan {
            offset: 0,
            len: u64::MAX,
        });
        let err = store.small_material(&huge).unwrap_err();
        assert!(
            err.to_string().contains("more than a logged material"),
            "{err}"
        );
    }
}

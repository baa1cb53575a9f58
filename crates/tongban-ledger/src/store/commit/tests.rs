//! The write path: what a commit writes, refuses and remembers.
use super::super::{NewEntry, Store};
use super::*;
use crate::records::Side;
use crate::store::keys;
use crate::testing::sample_case as test_case;
use tongban_core::CaseState;

#[tokio::test]
async fn a_batch_that_fails_to_build_writes_nothing_and_its_error_comes_back() {
    #[derive(Debug, PartialEq)]
    enum Refused {
        No(u64),
        Store(String),
    }
    impl From<StoreError> for Refused {
        fn from(e: StoreError) -> Self {
            Self::Store(e.to_string())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let before = store.head().unwrap();
    let err = store
        .commit_with(|next_seq| {
            let mut batch = Batch::default();
            batch
                .put_case(test_case("a1", Side::Window, CaseState::Queued))
                .append(NewEntry {
                    application_id: "a1".into(),
                    kind: "case.applied".into(),
                    ..Default::default()
                });
            if next_seq == 1 {
                return Err(Refused::No(next_seq));
            }
            Ok(batch)
        })
        .await
        .unwrap_err();
    assert_eq!(err, Refused::No(1), "the closure's own error");
    assert_eq!(store.head().unwrap(), before);
    assert!(store.case("a1").unwrap().is_none());
    assert!(store.case_entries("a1").unwrap().is_empty());
}

#[tokio::test]
async fn staged_blobs_stay_with_the_commit_that_keeps_them_and_go_otherwise() {
    use sha2::Digest;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let stage = async |seed: u8| {
        let content = vec![seed; crate::INLINE_MAX as usize + 1];
        let sha: [u8; 32] = sha2::Sha256::digest(&content).into();
        let mut w = store
            .blobs()
            .writer("m".into(), content.len() as u64, sha)
            .unwrap();
        w.write(content.into()).await.unwrap();
        let mut staged = crate::StagedBlobs::default();
        let blob = w.finish(&mut staged).await.unwrap();
        assert!(!staged.is_empty());
        (staged, store.blobs().path(&blob.sha256_hex))
    };
    let (dropped, dropped_path) = stage(1).await;
    assert!(dropped_path.is_file());
    drop(dropped);
    assert!(!dropped_path.is_file(), "an upload dropped leaves nothing");

    let (refused, refused_path) = stage(2).await;
    let err = store
        .commit_with(|_| {
            let mut batch = Batch::default();
            batch.keep_blobs(refused);
            Err::<Batch, _>(StoreError::Content("refused".into()))
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("refused"));
    assert!(!refused_path.is_file(), "gone with the failed commit");

    let (kept, kept_path) = stage(3).await;
    let mut batch = Batch::default();
    batch.keep_blobs(kept);
    store.commit(batch).await.unwrap();
    assert!(kept_path.is_file(), "kept by its commit");
}

#[tokio::test]
async fn the_durable_head_follows_completed_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.durable_head().0, 0);
    let mut batch = Batch::default();
    batch.append(NewEntry {
        kind: "node.test".into(),
        ..Default::default()
    });
    let c = store.commit(batch).await.unwrap();
    assert_eq!(store.durable_head(), (c.head_seq, c.head_hash));
    assert_eq!(store.durable_head(), store.head().unwrap());
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.durable_head(),
        (c.head_seq, c.head_hash),
        "after a reopen"
    );
}

#[tokio::test]
async fn a_remembered_request_is_written_with_its_change_and_its_reply_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut batch = Batch::default();
    batch
        .append(NewEntry {
            kind: "node.test".into(),
            ..Default::default()
        })
        .reply(|stored| {
            let entry = stored[0].decode()?;
            Ok(format!("{} {}", entry.seq, entry.at).into_bytes())
        })
        .remember("spiffe://a/clerk/x", "r1", "abcd".into());
    let c = store.commit(batch).await.unwrap();
    let reply = c.reply.clone().unwrap();
    assert!(String::from_utf8(reply.clone()).unwrap().starts_with("1 "));
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let record = store.request("spiffe://a/clerk/x", "r1").unwrap().unwrap();
    assert_eq!(record.reply, reply, "durable, byte for byte");
    assert_eq!(record.content_sha256, "abcd");
    assert!(
        store.request("spiffe://a/clerk/y", "r1").unwrap().is_none(),
        "per caller"
    );
    let at = store.entries(1, 1).unwrap()[0].decode().unwrap().at;
    assert!(
        String::from_utf8(reply).unwrap().ends_with(&at),
        "the entry's own time"
    );
}

#[tokio::test]
async fn an_entry_is_one_sled_write_with_its_payload_and_older_split_entries_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let append = |kind: &str| {
        let mut batch = Batch::default();
        batch.append(NewEntry {
            application_id: "a1".into(),
            kind: kind.into(),
            payload: format!("payload of {kind}").into_bytes(),
            ..Default::default()
        });
        batch
    };
    let before = store.write_counts();
    store.commit(append("first")).await.unwrap();
    let one = store.write_counts().since(&before);
    // The head read; the entry with its payload, its case index key and
    // the head written.
    assert_eq!((one.commits, one.reads, one.writes), (1, 1, 3), "{one:?}");

    // An entry as stored before entry and payload shared a value: the
    // bare entry in `ledger`, the payload in `payloads`.
    {
        let trees = store.trees().unwrap();
        let key = 1u64.to_be_bytes();
        let value = trees.ledger.get(key).unwrap().unwrap();
        let (entry, payload) = split_entry_value(&value).unwrap();
        let keys::StoredPayload::Here(payload) = payload else {
            panic!("written whole")
        };
        let (entry, payload) = (entry.to_vec(), payload.to_vec());
        trees.ledger.insert(key, entry).unwrap();
        trees.payloads.insert(key, payload).unwrap();
    }
    store.commit(append("second")).await.unwrap();
    let entries = store.entries(1, 2).unwrap();
    let payloads: Vec<&[u8]> = entries.iter().map(|e| e.payload.as_slice()).collect();
    assert_eq!(payloads, [&b"payload of first"[..], b"payload of second"]);
    assert_eq!(entries[0].decode().unwrap().kind, "first");
    assert_eq!(store.case_entries("a1").unwrap().len(), 2);
    assert_eq!(
        store.verify().unwrap(),
        Ok(2),
        "one chain across both forms"
    );
}

#[tokio::test]
async fn a_record_put_over_the_one_its_caller_read_keeps_the_indexes_without_reading_it() {
    use crate::Replaced;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let queued = test_case("a1", Side::Window, CaseState::Queued);
    let mut batch = Batch::default();
    batch.put_case_replacing(queued.clone(), Replaced::of(None));
    store.commit(batch).await.unwrap();
    let in_state = |state| {
        store
            .cases_in(Side::Window, &[state], true, 10)
            .unwrap()
            .into_iter()
            .map(|c| c.application_id)
            .collect::<Vec<_>>()
    };
    assert_eq!(in_state(CaseState::Queued), ["a1"]);

    let read = store.case("a1").unwrap().unwrap();
    let mut handed = read.clone();
    handed.state = CaseState::HandedOff;
    let mut batch = Batch::default();
    batch.put_case_replacing(handed.clone(), Replaced::of(Some(&read)));
    let before = store.write_counts();
    store.commit(batch).await.unwrap();
    let counts = store.write_counts().since(&before);
    assert!(
        in_state(CaseState::Queued).is_empty(),
        "the old state key went"
    );
    assert_eq!(in_state(CaseState::HandedOff), ["a1"]);
    if !cfg!(debug_assertions) {
        // The head read alone: the record replaced is not read again.
        assert_eq!(counts.reads, 1, "{counts:?}");
    }

    // A caller whose read is stale (here: the queued record again) is
    // refused in a debug build, and nothing is written.
    if cfg!(debug_assertions) {
        let mut again = handed.clone();
        again.state = CaseState::Approved;
        let mut batch = Batch::default();
        batch.put_case_replacing(again, Replaced::of(Some(&queued)));
        let err = store.commit(batch).await.unwrap_err();
        assert!(err.to_string().contains("replaced since"), "{err}");
        assert_eq!(
            store.case("a1").unwrap().unwrap().state,
            CaseState::HandedOff
        );
        assert_eq!(in_state(CaseState::HandedOff), ["a1"]);
    }
}

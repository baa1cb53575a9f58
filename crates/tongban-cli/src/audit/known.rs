//! What an auditor process has already verified of each node's ledger: the
//! chain hash of every entry from 1 up to a head that hashed to a checkpoint
//! the node signed, and which entries name each application. A later trace
//! then fetches and checks only the entries after that head: the new range
//! must link to the kept head hash, each case entry before it must hash to
//! the kept hash at its seq, and partner checkpoints before it are compared
//! with the kept hashes. So a trace proves what a full one proves (the case's
//! entries lie in the node's signed chain) at the cost of the case and the
//! entries since the last trace, not of the whole ledger (docs/audit.md §3.1).
//!
//! It lives in memory only (the console keeps one for its lifetime); the
//! first trace of a node, or the console's warm-up, is O(ledger).

use std::collections::HashMap;

use tongban_ledger::chain::EntryHash;

/// What was verified of one node's ledger: entries 1..=head.
#[derive(Debug, Default)]
pub(crate) struct Prefix {
    /// The node's county, as its checkpoint signature proved.
    pub(crate) county: String,
    /// `hashes[i]` is the chain hash of entry `i + 1`.
    hashes: Vec<EntryHash>,
    /// The entries naming each application: (seq, kind), in seq order.
    by_application: HashMap<String, Vec<(u64, String)>>,
    /// When the checkpoint at the head was signed (RFC 3339).
    pub(crate) signed_at: String,
}

impl Prefix {
    /// The last verified seq (0 when nothing is).
    pub(crate) fn head(&self) -> u64 {
        self.hashes.len() as u64
    }

    /// The chain hash of entry `seq`, if it was verified.
    pub(crate) fn hash(&self, seq: u64) -> Option<&EntryHash> {
        seq.checked_sub(1)
            .and_then(|i| self.hashes.get(usize::try_from(i).ok()?))
    }

    /// The verified entries naming `application_id`: (seq, kind).
    pub(crate) fn entries_of(&self, application_id: &str) -> &[(u64, String)] {
        self.by_application
            .get(application_id)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Adds entries `head + 1 ..` (already checked to chain on from the head
    /// and end at a checkpoint signed at `signed_at`).
    pub(crate) fn extend(&mut self, checked: Vec<Checked>, signed_at: &str) {
        for c in checked {
            debug_assert_eq!(c.seq, self.head() + 1);
            self.hashes.push(c.hash);
            if !c.application_id.is_empty() {
                self.by_application
                    .entry(c.application_id)
                    .or_default()
                    .push((c.seq, c.kind));
            }
        }
        self.signed_at = signed_at.to_owned();
    }
}

/// One entry as the chain check passed it.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) seq: u64,
    pub(crate) hash: EntryHash,
    pub(crate) application_id: String,
    pub(crate) kind: String,
}

/// The verified prefixes by node URL.
#[derive(Debug, Default)]
pub(crate) struct Known {
    nodes: HashMap<String, Prefix>,
}

impl Known {
    /// What was verified of the node at `url`, if anything.
    pub(crate) fn get(&self, url: &str) -> Option<&Prefix> {
        self.nodes.get(url).filter(|p| p.head() > 0)
    }

    /// An empty prefix of `url` for `county`, replacing what was kept.
    pub(crate) fn start_over(&mut self, url: &str, county: &str) -> &mut Prefix {
        let p = self.nodes.entry(url.to_owned()).or_default();
        *p = Prefix {
            county: county.to_owned(),
            ..Prefix::default()
        };
        p
    }

    /// The prefix of `url` to extend, created empty for `county`.
    pub(crate) fn entry(&mut self, url: &str, county: &str) -> &mut Prefix {
        let p = self.nodes.entry(url.to_owned()).or_default();
        if p.county != county {
            // A URL now answering for another county starts over.
            *p = Prefix {
                county: county.to_owned(),
                ..Prefix::default()
            };
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checked(seq: u64, app: &str) -> Checked {
        Checked {
            seq,
            hash: [seq as u8; 32],
            application_id: app.into(),
            kind: "case.applied".into(),
        }
    }

    #[test]
    fn a_prefix_grows_by_seq_and_indexes_applications() {
        let mut known = Known::default();
        assert!(known.get("u").is_none());
        let p = known.entry("u", "610702");
        p.extend(vec![checked(1, "a"), checked(2, ""), checked(3, "a")], "t1");
        assert_eq!(p.head(), 3);
        assert_eq!(p.hash(2), Some(&[2u8; 32]));
        assert_eq!(p.hash(0), None);
        assert_eq!(p.hash(4), None);
        let seqs: Vec<u64> = p.entries_of("a").iter().map(|(s, _)| *s).collect();
        assert_eq!(seqs, vec![1, 3]);
        assert!(p.entries_of("b").is_empty());
        assert_eq!(known.get("u").unwrap().signed_at, "t1");
        // Another county at the same URL starts over.
        assert_eq!(known.entry("u", "610113").head(), 0);
    }
}

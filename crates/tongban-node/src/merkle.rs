//! The Merkle tree of a batch of receipts, as RFC 6962 §2.1 defines it
//! (leaf = SHA-256(0x00 ‖ data), node = SHA-256(0x01 ‖ left ‖ right), a
//! tree of n > 1 leaves split at the largest power of two below n, which
//! promotes an odd last node unchanged), with inclusion paths ordered from
//! the leaf up and checked as RFC 9162 §2.1.3.2 does, so a second
//! implementation can recompute every root from the spec alone.
//!
//! Not here: what is signed over a root, and what a receipt must name
//! (`receipt.rs`).

use sha2::{Digest, Sha256};

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// The hash of a leaf: SHA-256(0x00 ‖ data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// The hash of an inner node: SHA-256(0x01 ‖ left ‖ right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The largest power of two smaller than `n` (n > 1).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k << 1 < n {
        k <<= 1;
    }
    k
}

/// The root over `leaves` (leaf hashes); `None` for an empty batch.
pub fn root(leaves: &[Hash]) -> Option<Hash> {
    match leaves.len() {
        0 => None,
        1 => Some(leaves[0]),
        n => {
            let k = split(n);
            Some(node_hash(&root(&leaves[..k])?, &root(&leaves[k..])?))
        }
    }
}

/// The root over `leaves` and every leaf's inclusion path (as [`path`]
/// gives it), each inner node hashed once: a path of its own per leaf
/// would hash the sibling subtrees again for every leaf (about 4,000
/// hashes for a batch of 64 instead of 63). `None` for an empty batch.
pub fn root_and_paths(leaves: &[Hash]) -> Option<(Hash, Vec<Vec<Hash>>)> {
    match leaves.len() {
        0 => None,
        1 => Some((leaves[0], vec![Vec::new()])),
        n => {
            let k = split(n);
            let (left, mut paths) = root_and_paths(&leaves[..k])?;
            let (right, right_paths) = root_and_paths(&leaves[k..])?;
            // Below this node each path is complete; this level adds the
            // other half's root.
            for p in &mut paths {
                p.push(right);
            }
            paths.extend(right_paths.into_iter().map(|mut p| {
                p.push(left);
                p
            }));
            Some((node_hash(&left, &right), paths))
        }
    }
}

/// The inclusion path of leaf `index` (RFC 6962 PATH), from the leaf's
/// sibling up to the child of the root; empty for a tree of one leaf.
pub fn path(leaves: &[Hash], index: usize) -> Vec<Hash> {
    let mut out = Vec::new();
    path_into(leaves, index, &mut out);
    out
}

fn path_into(leaves: &[Hash], index: usize, out: &mut Vec<Hash>) {
    let n = leaves.len();
    if n <= 1 || index >= n {
        return;
    }
    let k = split(n);
    if index < k {
        path_into(&leaves[..k], index, out);
        out.extend(root(&leaves[k..]));
    } else {
        path_into(&leaves[k..], index - k, out);
        out.extend(root(&leaves[..k]));
    }
}

/// The root that `leaf` at `index` of a tree of `size` leaves reaches
/// through `path` (RFC 9162 §2.1.3.2); `None` if the path cannot belong to
/// such a tree (index out of range, too short or too long).
pub fn root_from_path(leaf: &Hash, index: u64, size: u64, path: &[Hash]) -> Option<Hash> {
    if index >= size {
        return None;
    }
    let (mut fn_, mut sn) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if sn == 0 {
            return None;
        }
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r);
            if fn_ & 1 == 0 {
                while fn_ & 1 == 0 && fn_ != 0 {
                    fn_ >>= 1;
                    sn >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    (sn == 0).then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&[b'a' + i as u8])).collect()
    }

    /// SHA-256 written out, independently of `leaf_hash`/`node_hash`.
    fn sha(parts: &[&[u8]]) -> Hash {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        h.finalize().into()
    }

    #[test]
    fn roots_by_hand_for_one_two_three_and_five_leaves() {
        let [a, b, c, d, e] = [b"a", b"b", b"c", b"d", b"e"].map(|x| sha(&[&[0], x]));
        let n = |l: &Hash, r: &Hash| sha(&[&[1], l, r]);
        assert_eq!(root(&leaves(1)), Some(a));
        assert_eq!(root(&leaves(2)), Some(n(&a, &b)));
        // Three: the odd third leaf is promoted, not duplicated.
        assert_eq!(root(&leaves(3)), Some(n(&n(&a, &b), &c)));
        // Five: the first four, then the fifth promoted to the top.
        let four = n(&n(&a, &b), &n(&c, &d));
        assert_eq!(root(&leaves(5)), Some(n(&four, &e)));
        assert_eq!(root(&[]), None);
        // A known vector: the leaf hash of the empty string (RFC 6962 test data).
        assert_eq!(
            hex(&leaf_hash(b"")),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    fn hex(h: &Hash) -> String {
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn paths_by_hand_for_five_leaves() {
        let l = leaves(5);
        let ab = node_hash(&l[0], &l[1]);
        let cd = node_hash(&l[2], &l[3]);
        let four = node_hash(&ab, &cd);
        assert_eq!(path(&l, 0), vec![l[1], cd, l[4]]);
        assert_eq!(path(&l, 3), vec![l[2], ab, l[4]]);
        assert_eq!(path(&l, 4), vec![four]);
        assert_eq!(path(&leaves(1), 0), Vec::<Hash>::new());
        assert_eq!(path(&leaves(3), 2), vec![node_hash(&l[0], &l[1])]);
    }

    #[test]
    fn all_paths_at_once_are_the_paths_one_by_one() {
        assert_eq!(root_and_paths(&[]), None);
        for n in 1..=17 {
            let l = leaves(n);
            let (r, paths) = root_and_paths(&l).expect("not empty");
            assert_eq!(Some(r), root(&l), "root of {n}");
            let one_by_one: Vec<Vec<Hash>> = (0..n).map(|i| path(&l, i)).collect();
            assert_eq!(paths, one_by_one, "paths of {n}");
        }
    }

    #[test]
    fn every_path_reaches_its_root_for_sizes_one_to_seventeen() {
        for n in 1..=17 {
            let l = leaves(n);
            let r = root(&l).expect("not empty");
            for (i, leaf) in l.iter().enumerate() {
                let p = path(&l, i);
                assert_eq!(
                    root_from_path(leaf, i as u64, n as u64, &p),
                    Some(r),
                    "leaf {i} of {n}"
                );
            }
        }
    }

    #[test]
    fn a_path_that_does_not_reach_the_root_is_refused() {
        let l = leaves(5);
        let r = root(&l).expect("not empty");
        let p = path(&l, 2);
        // Another leaf, another index, another size, a short or long path.
        assert_ne!(root_from_path(&l[3], 2, 5, &p), Some(r));
        assert_ne!(root_from_path(&l[2], 3, 5, &p), Some(r));
        assert_eq!(root_from_path(&l[2], 2, 4, &p), None);
        assert_eq!(root_from_path(&l[2], 2, 5, &p[..2]), None);
        let mut long = p.clone();
        long.push(l[0]);
        assert_eq!(root_from_path(&l[2], 2, 5, &long), None);
        assert_eq!(root_from_path(&l[2], 5, 5, &p), None);
        let mut bent = p;
        bent[0][0] ^= 1;
        assert_ne!(root_from_path(&l[2], 2, 5, &bent), Some(r));
    }
}

//! Constants of the wire protocol that both ends must agree on
//! (docs/protocol.md describes them for other vendors).

/// Domain separator of receipt signatures.
pub const RECEIPT_DOMAIN: &str = "tongban-receipt-v1";
/// Signature domain of a batch of receipts: the tree size and Merkle root
/// of a stream batch's receipts (protocol.md §8.5).
pub const RECEIPT_BATCH_DOMAIN: &str = "tongban-receipt-batch-v1";
/// Domain separator of checkpoint signatures.
pub const CHECKPOINT_DOMAIN: &str = "tongban-checkpoint-v1";
/// Size of the material chunks this node sends. Receivers accept any size
/// up to the gRPC message limit.
pub const CHUNK_SIZE: usize = 64 * 1024;
/// Envelope and receipt format version this node writes and accepts.
pub const FORMAT_VERSION: u32 = 1;

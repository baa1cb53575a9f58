//! Generated code for the tongban wire protocol, and nothing else.
//!
//! The `.proto` files under `proto/` are the contract with other vendors'
//! nodes; this crate only compiles them (protox, no system protoc). Parsing
//! proto strings into domain types happens at the edge, in `tongban-node`.

#![allow(missing_docs, unreachable_pub, clippy::all)]

/// Messages shared by every service.
pub mod common {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tongban.common.v1");
    }
}

/// The node-to-node federation service.
pub mod federation {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tongban.federation.v1");
    }
}

/// The receiving window's service.
pub mod window {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tongban.window.v1");
    }
}

/// The home authority's review service.
pub mod review {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tongban.review.v1");
    }
}

/// The mail service.
pub mod mail {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tongban.mail.v1");
    }
}

/// The auditor's service.
pub mod audit {
    /// Version 1.
    pub mod v1 {
        tonic::include_proto!("tongban.audit.v1");
    }
}

/// Encoded `FileDescriptorSet` of every tongban proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tongban_descriptor.bin"));

//! Generated protobuf and gRPC types for bulkhead.
//!
//! `v1` holds the agent- and operator-facing services (`AgentService`, `OperatorService`) and the
//! hub-to-spoke service (`SpokeService`). `FILE_DESCRIPTOR_SET` feeds gRPC server reflection.

pub mod v1 {
    tonic::include_proto!("bulkhead.v1");
}

/// The encoded descriptor set of every bulkhead proto file, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("bulkhead_descriptor");

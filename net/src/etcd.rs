//! etcd 3.4's v3 gRPC API (`proto/etcd/`): the generated messages, clients
//! and servers, under etcd's package names, and their conversions to and
//! from `detcd-core`'s types ([`convert`]).
//!
//! The protobuf definitions keep etcd's package, service, method, message
//! and field names and field numbers, so etcdctl 3.4 and clientv3 talk to
//! these services unchanged. `bytes` fields are `bytes::Bytes`.

pub mod convert;

/// `etcdserverpb`: the KV, Watch, Lease, Cluster, Maintenance and Auth
/// services and their messages.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod etcdserverpb {
    tonic::include_proto!("etcdserverpb");
}

/// `mvccpb`: `KeyValue` and `Event`.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}

/// `authpb`: `User`, `Permission`, `Role`.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod authpb {
    tonic::include_proto!("authpb");
}

/// `v3lockpb`: the Lock service.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}

/// `v3electionpb`: the Election service.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}

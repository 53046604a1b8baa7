//! Generates the gRPC code with madsim-tonic-build: real tonic code in
//! OUT_DIR and the simulated one in OUT_DIR/sim; `tonic::include_proto!`
//! (madsim-tonic) picks the one the build needs.
//!
//! - proto/raftpeer.proto: the peer RPC (package `detcdpeer`);
//! - proto/etcd/: etcd 3.4's v3 API (packages `etcdserverpb`, `mvccpb`,
//!   `authpb`, `v3lockpb`, `v3electionpb`), one Rust file per package. The
//!   packages refer to each other as `super::<package>`, so `src/etcd.rs`
//!   includes them as sibling modules.
//!
//! Every `bytes` field is generated as `bytes::Bytes`, as core uses.

const ETCD_PROTOS: &[&str] = &[
    "proto/etcd/mvccpb/kv.proto",
    "proto/etcd/authpb/auth.proto",
    "proto/etcd/etcdserverpb/rpc.proto",
    "proto/etcd/v3lockpb/v3lock.proto",
    "proto/etcd/v3electionpb/v3election.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // protoc is not installed on the machines; use the vendored binary
    // unless the environment names one.
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
    tonic_build::configure().bytes(["."]).compile_protos(&["proto/raftpeer.proto"], &["proto"])?;
    tonic_build::configure().bytes(["."]).compile_protos(ETCD_PROTOS, &["proto"])?;
    Ok(())
}

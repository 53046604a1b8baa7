//! detcd-server: the node.
//!
//! To come (see docs/ARCHITECTURE.md): configuration from flags, `ETCD_*`
//! environment variables and YAML; the WAL and snapshot files; openraft on
//! the pluggable runtime; the gRPC and HTTP services; the `detcd` and
//! `detcdctl` binaries; an `embed` API to start a node in-process.

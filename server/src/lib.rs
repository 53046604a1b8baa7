//! detcd-server: the node.
//!
//! Today: [`storage`], the durable storage primitives (the `Disk` seam with
//! a real and a fault-injecting simulated disk, and the write-ahead log).
//!
//! To come (see docs/ARCHITECTURE.md): configuration from flags, `ETCD_*`
//! environment variables and YAML; snapshot files; openraft on the
//! pluggable runtime; the gRPC and HTTP services; the `detcd` and
//! `detcdctl` binaries; an `embed` API to start a node in-process.

pub mod clock;
pub mod cluster;
pub mod node;
pub mod raft;
pub mod storage;

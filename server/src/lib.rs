//! detcd-server: the node.
//!
//! Today: [`storage`], the durable storage primitives (the `Disk` seam with
//! a real and a fault-injecting simulated disk, and the write-ahead log).
//!
//! [`config`]: the `detcd` binary's configuration from etcd's flags,
//! `ETCD_*` environment variables and YAML config file.
//!
//! To come (see docs/ARCHITECTURE.md): the gRPC and HTTP services;
//! `detcdctl`; an `embed` API to start a node in-process.

pub mod api;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod node;
pub mod raft;
pub mod storage;

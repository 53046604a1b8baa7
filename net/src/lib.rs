//! detcd-net: wire formats.
//!
//! - [`etcd`]: etcd 3.4's v3 gRPC API (packages `etcdserverpb`, `mvccpb`,
//!   `authpb`, `v3lockpb`, `v3electionpb`: generated messages, clients and
//!   servers) and [`etcd::convert`], the conversions to and from
//!   `detcd-core`'s types and etcd's statuses for core's errors.
//! - [`peer`]: the gRPC service members use for openraft's messages.
//!
//! Both go through tonic as madsim's drop-in, so the same code runs on real
//! sockets and in the simulator. To come (see docs/ARCHITECTURE.md): the
//! async client library and the HTTP codecs. It depends on `detcd-core`
//! only: openraft's types are encoded by the server crate and travel here
//! as opaque bytes.

pub mod etcd;
pub mod peer;

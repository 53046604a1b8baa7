//! detcd-net: wire formats.
//!
//! Today: [`peer`], the gRPC service members use for openraft's messages
//! (tonic through madsim's drop-in, so the same code runs on real sockets
//! and in the simulator).
//!
//! To come (see docs/ARCHITECTURE.md): the etcd v3 protobuf definitions,
//! the async client library, and the HTTP codecs. It depends on
//! `detcd-core` only: openraft's types are encoded by the server crate and
//! travel here as opaque bytes.

pub mod etcd;
pub mod peer;

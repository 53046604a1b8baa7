//! detcd-net: wire formats.
//!
//! To come (see docs/ARCHITECTURE.md): the etcd v3 protobuf definitions
//! (tonic/prost through madsim-tonic), the peer RPC that openraft uses, the
//! async client library, and the HTTP codecs. Empty until the server work
//! begins; it depends on `detcd-core` only.

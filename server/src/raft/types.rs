//! openraft's type configuration for detcd, and the values it carries.
//!
//! Everything openraft stores or sends is one of these types, serialized
//! with serde (postcard on disk and on the wire).

use super::runtime::DetcdRuntime;
use detcd_core::request::{Command, Response};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A member's ID, as etcd derives it (see `cluster.rs`).
pub type MemberId = u64;

/// What the cluster knows about a member besides its ID: carried in
/// openraft's membership config, so it is replicated and survives restarts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MemberNode {
    pub name: String,
    pub peer_urls: Vec<String>,
    pub client_urls: Vec<String>,
}

impl fmt::Display for MemberNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.name, self.peer_urls.join(","))
    }
}

/// The result of applying one log entry: what `State::apply` answered (the
/// watch events go to the node's watch hub, not back through openraft).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    /// The store revision after the entry.
    pub revision: i64,
    pub result: Result<Response, detcd_core::Error>,
}

openraft::declare_raft_types!(
    /// detcd's openraft configuration.
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = MemberId,
        Node = MemberNode,
        AsyncRuntime = DetcdRuntime,
);

//! etcd's `Cluster` service: MemberList from openraft's membership;
//! membership changes are not served yet.
//!
//! Decisions, following etcd 3.4 where the static cluster allows:
//!
//! - MemberList answers from this member's view, without a read index (as
//!   etcd 3.4, whose request has no `linearizable` flag): every member of
//!   openraft's current (effective) membership, voters and learners, in ID
//!   order (etcd sorts by ID too). The header has no revision, as etcd's.
//! - Names and peer URLs come from `--initial-cluster` through the
//!   replicated membership. Client URLs: this member's own are always
//!   listed (`--advertise-client-urls`); another member's are listed only
//!   if the membership carries them, which today it usually does not (etcd
//!   members publish theirs through raft once started; detcd has no such
//!   step yet), so they are mostly empty. etcdctl still prints such a
//!   member as `started`, since it has a name.
//! - MemberAdd, MemberRemove, MemberUpdate and MemberPromote answer
//!   Unimplemented: detcd clusters are static for now.

use super::ClientApi;
use crate::raft::types::MemberId;
use detcd_net::etcd::etcdserverpb::{self as pb, cluster_server::Cluster};
use openraft_rt::WatchReceiver;
use std::collections::BTreeSet;
use tonic::{Request, Response, Status};

#[tonic::async_trait]
impl Cluster for ClientApi {
    async fn member_add(&self, _: Request<pb::MemberAddRequest>) -> Result<Response<pb::MemberAddResponse>, Status> {
        Err(membership_changes_unsupported("member add"))
    }

    async fn member_remove(
        &self,
        _: Request<pb::MemberRemoveRequest>,
    ) -> Result<Response<pb::MemberRemoveResponse>, Status> {
        Err(membership_changes_unsupported("member remove"))
    }

    async fn member_update(
        &self,
        _: Request<pb::MemberUpdateRequest>,
    ) -> Result<Response<pb::MemberUpdateResponse>, Status> {
        Err(membership_changes_unsupported("member update"))
    }

    async fn member_list(&self, _: Request<pb::MemberListRequest>) -> Result<Response<pb::MemberListResponse>, Status> {
        Ok(Response::new(pb::MemberListResponse { header: Some(self.header().at(0)), members: self.members() }))
    }

    async fn member_promote(
        &self,
        _: Request<pb::MemberPromoteRequest>,
    ) -> Result<Response<pb::MemberPromoteResponse>, Status> {
        Err(membership_changes_unsupported("member promote"))
    }
}

impl ClientApi {
    /// Every member of the current membership, in ID order.
    pub(super) fn members(&self) -> Vec<pb::Member> {
        let membership = self.node.raft().metrics().borrow_watched().membership_config.clone();
        let voters: BTreeSet<MemberId> = membership.voter_ids().collect();
        membership
            .nodes()
            .map(|(id, node)| {
                let client_urls =
                    if *id == self.node.id() { self.node.client_urls().to_vec() } else { node.client_urls.clone() };
                pb::Member {
                    id: *id,
                    name: node.name.clone(),
                    peer_ur_ls: node.peer_urls.clone(),
                    client_ur_ls: client_urls,
                    is_learner: !voters.contains(id),
                }
            })
            .collect()
    }

    /// Whether this member is a learner in the current membership.
    pub(super) fn is_learner(&self) -> bool {
        let membership = self.node.raft().metrics().borrow_watched().membership_config.clone();
        let me = self.node.id();
        membership.nodes().any(|(id, _)| *id == me) && !membership.voter_ids().any(|id| id == me)
    }
}

fn membership_changes_unsupported(what: &str) -> Status {
    Status::unimplemented(format!(
        "detcd: {what} is not supported yet: the cluster's members are fixed by --initial-cluster"
    ))
}

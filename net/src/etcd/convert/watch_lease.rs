//! Watch creation and watch responses, leases, and HashKV.

use super::{revision_of, Header};
use crate::etcd::etcdserverpb::{self as pb, watch_create_request::FilterType};
use detcd_core::lease::LeaseStatus;
use detcd_core::request::{LeaseGrantRequest, LeaseGrantResponse, LeaseRevokeRequest, LeaseRevokeResponse};
use detcd_core::watch::{WatchOutput, WatchRequest};
use detcd_core::HashKv;

/// The watcher a create request asks for. The stream-level `watch_id` is
/// the caller's business; unknown filter values are ignored, as etcd does.
impl From<pb::WatchCreateRequest> for WatchRequest {
    fn from(r: pb::WatchCreateRequest) -> Self {
        let has = |f: FilterType| r.filters.contains(&(f as i32));
        WatchRequest {
            no_put: has(FilterType::Noput),
            no_delete: has(FilterType::Nodelete),
            key: r.key,
            range_end: r.range_end,
            start_revision: r.start_revision,
            prev_kv: r.prev_kv,
            progress_notify: r.progress_notify,
            fragment: r.fragment,
        }
    }
}

impl From<WatchRequest> for pb::WatchCreateRequest {
    fn from(r: WatchRequest) -> Self {
        let mut filters = Vec::new();
        if r.no_put {
            filters.push(FilterType::Noput as i32);
        }
        if r.no_delete {
            filters.push(FilterType::Nodelete as i32);
        }
        pb::WatchCreateRequest {
            key: r.key,
            range_end: r.range_end,
            start_revision: r.start_revision,
            progress_notify: r.progress_notify,
            filters,
            prev_kv: r.prev_kv,
            watch_id: 0,
            fragment: r.fragment,
        }
    }
}

/// What the hub produced for one watcher, as etcd sends it on the stream
/// under the stream's `watch_id`:
///
/// - events: header at the output's revision, `fragment` on every part of
///   a split response but the last;
/// - compacted: `canceled` with `compact_revision` and a header at
///   revision 0 (etcd's watchable store leaves it unset);
/// - progress: no events, header at the progress revision.
pub fn watch_response(h: &Header, watch_id: i64, out: WatchOutput) -> pb::WatchResponse {
    match out {
        WatchOutput::Events { revision, events, fragment, .. } => pb::WatchResponse {
            header: Some(h.at(revision)),
            watch_id,
            fragment,
            events: events.into_iter().map(Into::into).collect(),
            ..Default::default()
        },
        WatchOutput::Compacted { compact_revision, .. } => pb::WatchResponse {
            header: Some(h.at(0)),
            watch_id,
            canceled: true,
            compact_revision,
            ..Default::default()
        },
        WatchOutput::Progress { revision, .. } => {
            pb::WatchResponse { header: Some(h.at(revision)), watch_id, ..Default::default() }
        }
    }
}

impl From<pb::LeaseGrantRequest> for LeaseGrantRequest {
    fn from(r: pb::LeaseGrantRequest) -> Self {
        LeaseGrantRequest { ttl: r.ttl, id: r.id }
    }
}

impl From<LeaseGrantRequest> for pb::LeaseGrantRequest {
    fn from(r: LeaseGrantRequest) -> Self {
        pb::LeaseGrantRequest { ttl: r.ttl, id: r.id }
    }
}

/// A grant's response; `error` stays empty (etcd 3.4 never fills it:
/// failures are gRPC statuses).
pub fn lease_grant_response(h: &Header, r: LeaseGrantResponse) -> pb::LeaseGrantResponse {
    pb::LeaseGrantResponse { header: Some(h.at(r.revision)), id: r.id, ttl: r.ttl, error: String::new() }
}

impl From<pb::LeaseGrantResponse> for LeaseGrantResponse {
    fn from(r: pb::LeaseGrantResponse) -> Self {
        LeaseGrantResponse { revision: revision_of(&r.header), id: r.id, ttl: r.ttl }
    }
}

impl From<pb::LeaseRevokeRequest> for LeaseRevokeRequest {
    fn from(r: pb::LeaseRevokeRequest) -> Self {
        LeaseRevokeRequest { id: r.id }
    }
}

impl From<LeaseRevokeRequest> for pb::LeaseRevokeRequest {
    fn from(r: LeaseRevokeRequest) -> Self {
        pb::LeaseRevokeRequest { id: r.id }
    }
}

pub fn lease_revoke_response(h: &Header, r: LeaseRevokeResponse) -> pb::LeaseRevokeResponse {
    pb::LeaseRevokeResponse { header: Some(h.at(r.revision)) }
}

impl From<pb::LeaseRevokeResponse> for LeaseRevokeResponse {
    fn from(r: pb::LeaseRevokeResponse) -> Self {
        LeaseRevokeResponse { revision: revision_of(&r.header) }
    }
}

/// A keep-alive's answer for lease `id`: the TTL it was renewed to, 0 when
/// the lease is unknown or expired (etcd answers so rather than failing the
/// stream; clients then report the lease gone). `revision` is the store's
/// revision before the renewal, as etcd fills the header.
pub fn lease_keep_alive_response(h: &Header, revision: i64, id: i64, ttl: i64) -> pb::LeaseKeepAliveResponse {
    pb::LeaseKeepAliveResponse { header: Some(h.at(revision)), id, ttl }
}

/// TimeToLive's answer for lease `id`: its status, with the attached keys
/// only when `keys` was asked for; an unknown lease is TTL -1 with nothing
/// else (etcd's gRPC layer turns not-found into this, not into an error).
pub fn lease_time_to_live_response(
    h: &Header,
    revision: i64,
    id: i64,
    lease: Option<LeaseStatus>,
    keys: bool,
) -> pb::LeaseTimeToLiveResponse {
    let header = Some(h.at(revision));
    match lease {
        Some(l) => pb::LeaseTimeToLiveResponse {
            header,
            id,
            ttl: l.ttl,
            granted_ttl: l.granted_ttl,
            keys: if keys { l.keys } else { Vec::new() },
        },
        None => pb::LeaseTimeToLiveResponse { header, id, ttl: -1, granted_ttl: 0, keys: Vec::new() },
    }
}

/// LeaseLeases' answer: the IDs in the order given.
pub fn lease_leases_response(h: &Header, revision: i64, ids: impl IntoIterator<Item = i64>) -> pb::LeaseLeasesResponse {
    pb::LeaseLeasesResponse {
        header: Some(h.at(revision)),
        leases: ids.into_iter().map(|id| pb::LeaseStatus { id }).collect(),
    }
}

/// HashKV's answer; the header is at the revision the hash covers.
pub fn hash_kv_response(h: &Header, r: HashKv) -> pb::HashKvResponse {
    pb::HashKvResponse { header: Some(h.at(r.revision)), hash: r.hash, compact_revision: r.compact_revision }
}

impl From<pb::HashKvResponse> for HashKv {
    fn from(r: pb::HashKvResponse) -> Self {
        HashKv { hash: r.hash, compact_revision: r.compact_revision, revision: revision_of(&r.header) }
    }
}

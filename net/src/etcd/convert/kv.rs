//! Key-values, events, and the Range, Put, DeleteRange and Compact calls.

use super::{ConvertError, Header};
use crate::etcd::etcdserverpb::{self as pb, range_request};
use crate::etcd::mvccpb::{self, event::EventType};
use detcd_core::request::{
    CompactionRequest, CompactionResponse, DeleteRangeRequest, DeleteRangeResponse, PutRequest, PutResponse,
    RangeRequest, RangeResponse, SortOrder, SortTarget,
};
use detcd_core::{Error, Event, EventKind, KeyValue};

impl From<KeyValue> for mvccpb::KeyValue {
    fn from(kv: KeyValue) -> Self {
        mvccpb::KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

impl From<mvccpb::KeyValue> for KeyValue {
    fn from(kv: mvccpb::KeyValue) -> Self {
        KeyValue {
            key: kv.key,
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value,
            lease: kv.lease,
        }
    }
}

fn kvs_to_pb(kvs: Vec<KeyValue>) -> Vec<mvccpb::KeyValue> {
    kvs.into_iter().map(Into::into).collect()
}

fn kvs_from_pb(kvs: Vec<mvccpb::KeyValue>) -> Vec<KeyValue> {
    kvs.into_iter().map(Into::into).collect()
}

/// A watch event; a put is type 0 (`PUT`), so it is absent on the wire.
impl From<Event> for mvccpb::Event {
    fn from(ev: Event) -> Self {
        let r#type = match ev.kind {
            EventKind::Put => EventType::Put,
            EventKind::Delete => EventType::Delete,
        };
        mvccpb::Event { r#type: r#type as i32, kv: Some(ev.kv.into()), prev_kv: ev.prev_kv.map(Into::into) }
    }
}

impl TryFrom<mvccpb::Event> for Event {
    type Error = ConvertError;

    fn try_from(ev: mvccpb::Event) -> Result<Self, ConvertError> {
        let kind = match EventType::try_from(ev.r#type) {
            Ok(EventType::Put) => EventKind::Put,
            Ok(EventType::Delete) => EventKind::Delete,
            Err(_) => return Err(ConvertError::UnknownEnum { field: "Event.type", value: ev.r#type }),
        };
        let kv = ev.kv.ok_or(ConvertError::Missing("Event.kv"))?.into();
        Ok(Event { kind, kv, prev_kv: ev.prev_kv.map(Into::into) })
    }
}

fn sort_order(v: i32) -> Result<SortOrder, Error> {
    match range_request::SortOrder::try_from(v) {
        Ok(range_request::SortOrder::None) => Ok(SortOrder::None),
        Ok(range_request::SortOrder::Ascend) => Ok(SortOrder::Ascend),
        Ok(range_request::SortOrder::Descend) => Ok(SortOrder::Descend),
        Err(_) => Err(Error::InvalidSortOption),
    }
}

fn sort_target(v: i32) -> Result<SortTarget, Error> {
    match range_request::SortTarget::try_from(v) {
        Ok(range_request::SortTarget::Key) => Ok(SortTarget::Key),
        Ok(range_request::SortTarget::Version) => Ok(SortTarget::Version),
        Ok(range_request::SortTarget::Create) => Ok(SortTarget::Create),
        Ok(range_request::SortTarget::Mod) => Ok(SortTarget::Mod),
        Ok(range_request::SortTarget::Value) => Ok(SortTarget::Value),
        Err(_) => Err(Error::InvalidSortOption),
    }
}

fn sort_order_to_pb(o: SortOrder) -> range_request::SortOrder {
    match o {
        SortOrder::None => range_request::SortOrder::None,
        SortOrder::Ascend => range_request::SortOrder::Ascend,
        SortOrder::Descend => range_request::SortOrder::Descend,
    }
}

fn sort_target_to_pb(t: SortTarget) -> range_request::SortTarget {
    match t {
        SortTarget::Key => range_request::SortTarget::Key,
        SortTarget::Version => range_request::SortTarget::Version,
        SortTarget::Create => range_request::SortTarget::Create,
        SortTarget::Mod => range_request::SortTarget::Mod,
        SortTarget::Value => range_request::SortTarget::Value,
    }
}

/// etcd's `checkRangeRequest` order: an empty key is `EmptyKey` before an
/// unknown sort order or target is `InvalidSortOption`.
impl TryFrom<pb::RangeRequest> for RangeRequest {
    type Error = ConvertError;

    fn try_from(r: pb::RangeRequest) -> Result<Self, ConvertError> {
        if r.key.is_empty() {
            return Err(Error::EmptyKey.into());
        }
        Ok(RangeRequest {
            sort_order: sort_order(r.sort_order)?,
            sort_target: sort_target(r.sort_target)?,
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            serializable: r.serializable,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        })
    }
}

impl From<RangeRequest> for pb::RangeRequest {
    fn from(r: RangeRequest) -> Self {
        pb::RangeRequest {
            key: r.key,
            range_end: r.range_end,
            limit: r.limit,
            revision: r.revision,
            sort_order: sort_order_to_pb(r.sort_order) as i32,
            sort_target: sort_target_to_pb(r.sort_target) as i32,
            serializable: r.serializable,
            keys_only: r.keys_only,
            count_only: r.count_only,
            min_mod_revision: r.min_mod_revision,
            max_mod_revision: r.max_mod_revision,
            min_create_revision: r.min_create_revision,
            max_create_revision: r.max_create_revision,
        }
    }
}

pub fn range_response(h: &Header, r: RangeResponse) -> pb::RangeResponse {
    pb::RangeResponse { header: Some(h.at(r.revision)), kvs: kvs_to_pb(r.kvs), more: r.more, count: r.count }
}

impl From<pb::RangeResponse> for RangeResponse {
    fn from(r: pb::RangeResponse) -> Self {
        RangeResponse { revision: super::revision_of(&r.header), kvs: kvs_from_pb(r.kvs), more: r.more, count: r.count }
    }
}

impl From<pb::PutRequest> for PutRequest {
    fn from(r: pb::PutRequest) -> Self {
        PutRequest {
            key: r.key,
            value: r.value,
            lease: r.lease,
            prev_kv: r.prev_kv,
            ignore_value: r.ignore_value,
            ignore_lease: r.ignore_lease,
        }
    }
}

impl From<PutRequest> for pb::PutRequest {
    fn from(r: PutRequest) -> Self {
        pb::PutRequest {
            key: r.key,
            value: r.value,
            lease: r.lease,
            prev_kv: r.prev_kv,
            ignore_value: r.ignore_value,
            ignore_lease: r.ignore_lease,
        }
    }
}

pub fn put_response(h: &Header, r: PutResponse) -> pb::PutResponse {
    pb::PutResponse { header: Some(h.at(r.revision)), prev_kv: r.prev_kv.map(Into::into) }
}

impl From<pb::PutResponse> for PutResponse {
    fn from(r: pb::PutResponse) -> Self {
        PutResponse { revision: super::revision_of(&r.header), prev_kv: r.prev_kv.map(Into::into) }
    }
}

impl From<pb::DeleteRangeRequest> for DeleteRangeRequest {
    fn from(r: pb::DeleteRangeRequest) -> Self {
        DeleteRangeRequest { key: r.key, range_end: r.range_end, prev_kv: r.prev_kv }
    }
}

impl From<DeleteRangeRequest> for pb::DeleteRangeRequest {
    fn from(r: DeleteRangeRequest) -> Self {
        pb::DeleteRangeRequest { key: r.key, range_end: r.range_end, prev_kv: r.prev_kv }
    }
}

pub fn delete_range_response(h: &Header, r: DeleteRangeResponse) -> pb::DeleteRangeResponse {
    pb::DeleteRangeResponse { header: Some(h.at(r.revision)), deleted: r.deleted, prev_kvs: kvs_to_pb(r.prev_kvs) }
}

impl From<pb::DeleteRangeResponse> for DeleteRangeResponse {
    fn from(r: pb::DeleteRangeResponse) -> Self {
        DeleteRangeResponse {
            revision: super::revision_of(&r.header),
            deleted: r.deleted,
            prev_kvs: kvs_from_pb(r.prev_kvs),
        }
    }
}

impl From<pb::CompactionRequest> for CompactionRequest {
    fn from(r: pb::CompactionRequest) -> Self {
        CompactionRequest { revision: r.revision, physical: r.physical }
    }
}

impl From<CompactionRequest> for pb::CompactionRequest {
    fn from(r: CompactionRequest) -> Self {
        pb::CompactionRequest { revision: r.revision, physical: r.physical }
    }
}

pub fn compaction_response(h: &Header, r: CompactionResponse) -> pb::CompactionResponse {
    pb::CompactionResponse { header: Some(h.at(r.revision)) }
}

impl From<pb::CompactionResponse> for CompactionResponse {
    fn from(r: pb::CompactionResponse) -> Self {
        CompactionResponse { revision: super::revision_of(&r.header) }
    }
}

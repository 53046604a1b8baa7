//! Range reads with etcd's full request: limit, historical revision, sort,
//! revision filters, keys-only and count-only.

use super::store::Store;
use crate::error::{Error, Result};
use crate::kv::{KeyRange, KeyValue};
use crate::request::{RangeRequest, RangeResponse, SortOrder, SortTarget};
use std::cmp::Ordering;

/// Answers `req` from `store` as seen at revision `view`: the current
/// revision, or inside a txn the txn's own (so it sees its own writes). The
/// response reports `view` as its revision, as etcd's header does.
pub fn range(store: &Store, req: &RangeRequest, view: i64) -> Result<RangeResponse> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    let rev = store.resolve_revision(req.revision, view)?;
    let range = KeyRange::new(&req.key, &req.range_end);
    let has_filters = req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0;
    // Like etcd: sorting or filtering needs every match; otherwise one more
    // than the limit tells whether there is more.
    let fetch = if req.sort_order != SortOrder::None || has_filters || req.limit <= 0 {
        usize::MAX
    } else {
        usize::try_from(req.limit).unwrap_or(usize::MAX).saturating_add(1)
    };
    let mut count: i64 = 0;
    let mut kvs = Vec::new();
    store.scan(range, rev, |kv| {
        count += 1;
        if !req.count_only && kvs.len() < fetch {
            kvs.push(kv.clone());
        }
        true
    });
    if has_filters {
        kvs.retain(|kv| passes_filters(req, kv));
    }
    let order = match (req.sort_order, req.sort_target) {
        // The scan is in ascending key order already; for any other target
        // etcd sorts ascending even when no order was asked for.
        (SortOrder::None, SortTarget::Key) => SortOrder::None,
        (SortOrder::None, _) => SortOrder::Ascend,
        (order, _) => order,
    };
    if order != SortOrder::None {
        kvs.sort_by(|a, b| {
            let ord = compare_by(req.sort_target, a, b);
            if order == SortOrder::Descend {
                ord.reverse()
            } else {
                ord
            }
        });
    }
    let mut more = false;
    if req.limit > 0 && kvs.len() as i64 > req.limit {
        kvs.truncate(req.limit as usize);
        more = true;
    }
    if req.keys_only {
        for kv in &mut kvs {
            kv.value = bytes::Bytes::new();
        }
    }
    Ok(RangeResponse { revision: view, kvs, more, count })
}

fn passes_filters(req: &RangeRequest, kv: &KeyValue) -> bool {
    (req.max_mod_revision == 0 || kv.mod_revision <= req.max_mod_revision)
        && (req.min_mod_revision == 0 || kv.mod_revision >= req.min_mod_revision)
        && (req.max_create_revision == 0 || kv.create_revision <= req.max_create_revision)
        && (req.min_create_revision == 0 || kv.create_revision >= req.min_create_revision)
}

fn compare_by(target: SortTarget, a: &KeyValue, b: &KeyValue) -> Ordering {
    match target {
        SortTarget::Key => a.key.cmp(&b.key),
        SortTarget::Version => a.version.cmp(&b.version),
        SortTarget::Create => a.create_revision.cmp(&b.create_revision),
        SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
        SortTarget::Value => a.value.cmp(&b.value),
    }
}

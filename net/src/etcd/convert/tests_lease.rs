//! The Lease service's answers built from the lessor's views.

use super::*;
use bytes::Bytes;
use detcd_core::lease::LeaseStatus;

const H: Header = Header { cluster_id: 1, member_id: 2, raft_term: 3 };

#[test]
fn keep_alive_response_carries_id_ttl_and_revision() {
    let r = lease_keep_alive_response(&H, 7, 0x1234, 10);
    assert_eq!((r.header, r.id, r.ttl), (Some(H.at(7)), 0x1234, 10));
    // Unknown or expired: TTL 0, still a response.
    assert_eq!(lease_keep_alive_response(&H, 7, 5, 0).ttl, 0);
}

#[test]
fn time_to_live_response_keys_only_when_asked() {
    let status = LeaseStatus { id: 9, granted_ttl: 10, ttl: 8, keys: vec![Bytes::from("a"), Bytes::from("b")] };
    let r = lease_time_to_live_response(&H, 4, 9, Some(status.clone()), true);
    assert_eq!((r.header, r.id, r.ttl, r.granted_ttl), (Some(H.at(4)), 9, 8, 10));
    assert_eq!(r.keys, vec![Bytes::from("a"), Bytes::from("b")]);
    let r = lease_time_to_live_response(&H, 4, 9, Some(status), false);
    assert!(r.keys.is_empty());
    assert_eq!(r.ttl, 8);
}

#[test]
fn time_to_live_of_an_unknown_lease_is_minus_one() {
    let r = lease_time_to_live_response(&H, 4, 0x1234, None, true);
    assert_eq!((r.header, r.id, r.ttl, r.granted_ttl, r.keys.len()), (Some(H.at(4)), 0x1234, -1, 0, 0));
}

#[test]
fn leases_response_lists_ids_in_order() {
    let r = lease_leases_response(&H, 2, [3, 1, 2]);
    assert_eq!(r.header, Some(H.at(2)));
    assert_eq!(r.leases.iter().map(|l| l.id).collect::<Vec<_>>(), vec![3, 1, 2]);
    assert!(lease_leases_response(&H, 2, []).leases.is_empty());
}

//! Leases with an injected clock: grant, keep-alive, expiry on the leader
//! only, revoke deleting attached keys, and a leader change mid-TTL.

mod common;

use common::*;
use detcd_core::lease::MAX_LEASE_TTL;
use detcd_core::request::*;
use detcd_core::{Error, EventKind, Millis};

#[test]
fn grant_applies_minimum_ttl_and_rejects_duplicates() {
    let mut n = Node::new();
    let r = n.grant(100, 1).unwrap();
    assert_eq!((r.id, r.ttl), (100, 2), "TTL below the minimum is raised");
    assert_eq!(n.grant(100, 10), Err(Error::LeaseExist));
    assert_eq!(n.grant(0, MAX_LEASE_TTL + 1), Err(Error::LeaseTtlTooLarge));
    let generated = n.grant(0, 10).unwrap();
    assert!(generated.id > 0 && generated.id != 100);
    assert_eq!(n.state.lessor().ids().len(), 2);
}

#[test]
fn generated_ids_are_the_same_on_every_member() {
    let grant_all = || {
        let mut n = Node::new();
        (0..5).map(|_| n.grant(0, 10).unwrap().id).collect::<Vec<_>>()
    };
    let ids = grant_all();
    assert_eq!(ids, grant_all());
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique.len(), 5);
}

#[test]
fn revoke_deletes_attached_keys_in_one_revision() {
    let mut n = Node::new();
    let id = n.grant(0x3269_5410_dcc0_ca06, 10).unwrap().id;
    for k in ["foo", "bar", "baz"] {
        n.put_req(PutRequest { key: b(k), value: b("v"), lease: id, ..Default::default() }).unwrap();
    }
    n.put("plain", "v");
    // Detached by overwriting without the lease.
    n.put("baz", "kept");
    let before = n.state.revision();
    let applied = n.apply(Command::LeaseRevoke(LeaseRevokeRequest { id }));
    assert_eq!(applied.revision, before + 1);
    let deleted: Vec<_> = applied.events.iter().map(|e| (e.kind, e.kv.key.clone(), e.kv.mod_revision)).collect();
    assert_eq!(deleted, vec![(EventKind::Delete, b("bar"), before + 1), (EventKind::Delete, b("foo"), before + 1)]);
    assert!(n.get("foo").is_none() && n.get("bar").is_none());
    assert_eq!(n.get("baz").unwrap().value, b("kept"));
    assert_eq!(n.revoke(id), Err(Error::LeaseNotFound));
}

#[test]
fn only_the_primary_lessor_expires_leases() {
    let mut n = Node::new();
    n.now = Millis(1_000);
    let id = n.grant(1, 10).unwrap().id;
    assert!(n.state.lessor().expired(Millis(1_000_000), 10).is_empty(), "followers never expire leases");
    assert_eq!(n.state.lessor_mut().renew(id, Millis(2_000)), Err(Error::NotPrimary));

    n.state.lessor_mut().promote(Millis(5_000), 0);
    let l = n.state.lessor();
    assert!(l.expired(Millis(14_999), 10).is_empty());
    assert_eq!(l.expired(Millis(15_000), 10), vec![id]);
    let ttl = l.time_to_live(id, Millis(6_500)).unwrap();
    assert_eq!((ttl.granted_ttl, ttl.ttl), (10, 8), "remaining seconds are floored");

    // A keep-alive pushes the deadline a full TTL from now.
    assert_eq!(n.state.lessor_mut().renew(id, Millis(14_000)), Ok((10, false)));
    assert!(n.state.lessor().expired(Millis(23_999), 10).is_empty());
    assert_eq!(n.state.lessor().expired(Millis(24_000), 10), vec![id]);
    // An expired lease cannot be renewed.
    assert_eq!(n.state.lessor_mut().renew(id, Millis(24_000)), Err(Error::LeaseNotFound));
}

#[test]
fn leases_granted_on_the_leader_get_deadlines_and_expire_in_order() {
    let mut n = Node::new();
    n.state.lessor_mut().promote(Millis(0), 0);
    n.now = Millis(0);
    let a = n.grant(1, 5).unwrap().id;
    n.now = Millis(1_000);
    let b_ = n.grant(2, 3).unwrap().id;
    assert_eq!(n.state.lessor().expired(Millis(4_000), 10), vec![b_]);
    assert_eq!(n.state.lessor().expired(Millis(6_000), 10), vec![b_, a]);
    assert_eq!(n.state.lessor().expired(Millis(6_000), 1), vec![b_], "expiry is bounded per call");
}

#[test]
fn leader_change_mid_ttl_never_expires_a_lease_early() {
    // Old leader grants a 10 s lease at t=0 and the leader dies at t=4 s.
    let mut old = Node::new();
    old.state.lessor_mut().promote(Millis(0), 0);
    let id = old.grant(9, 10).unwrap().id;
    let mut new = Node::new();
    new.index = 0;
    new.apply(Command::LeaseGrant(LeaseGrantRequest { ttl: 10, id }));

    // The new leader's clock is unrelated (skewed far ahead); it takes over
    // at its t=100 s with an election-timeout extension of 1 s.
    new.state.lessor_mut().promote(Millis(100_000), 1_000);
    let l = new.state.lessor();
    assert!(l.expired(Millis(110_999), 10).is_empty(), "a full TTL plus the extension from the handover");
    assert_eq!(l.expired(Millis(111_000), 10), vec![id]);

    // With a checkpoint of the remaining TTL replicated before the handover,
    // the new leader uses the remainder instead of the full TTL.
    new.apply(Command::LeaseCheckpoint(vec![LeaseCheckpoint { id, remaining_ttl: 6 }]));
    new.state.lessor_mut().demote();
    assert!(new.state.lessor().expired(Millis(u64::MAX), 10).is_empty(), "a demoted lessor forgets deadlines");
    new.state.lessor_mut().promote(Millis(200_000), 1_000);
    assert!(new.state.lessor().expired(Millis(206_999), 10).is_empty());
    assert_eq!(new.state.lessor().expired(Millis(207_000), 10), vec![id]);
    // The leader's checkpoint list reports what it would replicate.
    let cps = new.state.lessor().checkpoints(Millis(203_000), 1, 10);
    assert_eq!(cps, vec![LeaseCheckpoint { id, remaining_ttl: 4 }]);
    // A keep-alive after a checkpoint asks the leader to reset it.
    assert_eq!(new.state.lessor_mut().renew(id, Millis(203_000)), Ok((10, true)));
}

#[test]
fn time_to_live_lists_attached_keys() {
    let mut n = Node::new();
    let id = n.grant(5, 30).unwrap().id;
    n.put_req(PutRequest { key: b("k2"), value: b("v"), lease: id, ..Default::default() }).unwrap();
    n.put_req(PutRequest { key: b("k1"), value: b("v"), lease: id, ..Default::default() }).unwrap();
    n.delete("k2", "");
    let s = n.state.lessor().time_to_live(id, Millis(0)).unwrap();
    assert_eq!(s.keys, vec![b("k1")]);
    assert_eq!(s.ttl, 30, "a follower reports the granted TTL");
    assert_eq!(n.state.lessor().time_to_live(77, Millis(0)), Err(Error::LeaseNotFound));
}

//! The state machine as the node sees it: waiting for an index to be
//! applied, watch events from applies, and a snapshot install that jumps
//! the store without losing watch events.

mod raft_common;

use std::task::Poll;

use detcd_core::watch::{WatchOutput, WatchRequest};
use detcd_core::EventKind;
use detcd_server::raft::types::TypeConfig;
use detcd_server::storage::SimDisk;
use openraft::storage::RaftStateMachine;
use openraft::type_config::TypeConfigExt;
use openraft::RaftSnapshotBuilder;
use raft_common::*;

#[test]
fn wait_applied_returns_once_the_index_is_applied() {
    TypeConfig::run(async {
        let disk = SimDisk::new();
        let (_, mut sm) = open(&disk);
        let shared = sm.shared();
        shared.wait_applied(0).await; // nothing to wait for
        let waiter = shared.wait_applied(3);
        futures::pin_mut!(waiter);
        assert_eq!(futures::poll!(waiter.as_mut()), Poll::Pending);
        apply(&mut sm, vec![membership(1, 0, &[1]), put(1, 1), blank(2, 2)]).await.unwrap();
        assert_eq!(futures::poll!(waiter.as_mut()), Poll::Pending, "index 2 is not 3");
        apply(&mut sm, vec![put(2, 3)]).await.unwrap();
        assert_eq!(futures::poll!(waiter.as_mut()), Poll::Ready(()));
        assert_eq!(shared.applied_index(), 3);
        assert_eq!(get(&shared, "k3"), Some(b("v3")), "applied before the waiter is released");
    });
}

fn event_keys(out: &[WatchOutput]) -> Vec<(EventKind, String, i64)> {
    out.iter()
        .flat_map(|o| match o {
            WatchOutput::Events { events, .. } => events.clone(),
            _ => vec![],
        })
        .map(|e| (e.kind, String::from_utf8_lossy(&e.kv.key).into_owned(), e.kv.mod_revision))
        .collect()
}

#[test]
fn applies_feed_the_hub_and_an_installed_snapshot_is_caught_up_by_sync() {
    TypeConfig::run(async {
        // The follower applied up to 2 and has a watcher on a prefix.
        let (_, mut follower) = open(&SimDisk::new());
        let shared = follower.shared();
        apply(&mut follower, vec![membership(1, 0, &[1, 2]), put(1, 1), put(1, 2)]).await.unwrap();
        let watcher = {
            let state = shared.state();
            let req = WatchRequest { key: b("k"), range_end: b("l"), ..Default::default() };
            shared.hub().watch(req, state.store())
        };
        apply(&mut follower, vec![put(1, 3)]).await.unwrap();
        assert_eq!(event_keys(&shared.hub().poll(4)), vec![(EventKind::Put, "k3".into(), 4)]);

        // The leader went on to 6 and ships a snapshot instead of entries.
        let (_, mut leader) = open(&SimDisk::new());
        let entries = vec![membership(1, 0, &[1, 2]), put(1, 1), put(1, 2), put(1, 3), put(2, 4), put(2, 5)];
        apply(&mut leader, entries).await.unwrap();
        let snapshot = leader.get_snapshot_builder().await.build_snapshot().await.unwrap();
        follower.install_snapshot(&snapshot.meta, snapshot.snapshot).await.unwrap();

        assert_eq!(follower.applied_state().await.unwrap().0, Some(log_id(2, 5)));
        assert_eq!((shared.applied_index(), get(&shared, "k5")), (5, Some(b("v5"))));
        let current = follower.get_current_snapshot().await.unwrap().unwrap();
        assert_eq!(current.meta, snapshot.meta, "the installed snapshot is the current one");
        assert_eq!(shared.hub().is_synced(watcher), Some(false), "the jump is replayed, not skipped");
        assert!(shared.hub().poll(6).is_empty());
        let out = {
            let state = shared.state();
            let mut hub = shared.hub();
            hub.sync(state.store());
            hub.poll(state.revision())
        };
        assert_eq!(event_keys(&out), vec![(EventKind::Put, "k4".into(), 5), (EventKind::Put, "k5".into(), 6)]);
        assert_eq!(shared.hub().is_synced(watcher), Some(true));

        // Applying goes on from the snapshot, live to the watcher again.
        apply(&mut follower, vec![put(2, 6)]).await.unwrap();
        assert_eq!(event_keys(&shared.hub().poll(7)), vec![(EventKind::Put, "k6".into(), 7)]);
    });
}

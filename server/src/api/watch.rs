//! etcd's `Watch` service: one bidirectional stream carries many watchers.
//!
//! Each stream runs one task that owns its watchers: it handles create,
//! cancel and progress requests, and after every apply (or a short tick, for
//! catch-up) takes the buffered output of its own watchers from the member's
//! watch hub (`WatchHub::take`) and sends it, waiting for the client. A slow
//! client therefore holds up only its own stream; its watchers' buffers fill
//! and the hub moves them to the unsynced group, to catch up from history
//! later, as etcd's watchable store does.

use super::ClientApi;
use detcd_core::watch::{WatchOutput, WatcherId};
use detcd_net::etcd::convert::{self, Header};
use detcd_net::etcd::etcdserverpb::{self as pb, watch_request::RequestUnion, watch_server::Watch};
use futures::{Stream, StreamExt};
use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

/// How often a stream looks for output without an apply to wake it (the
/// hub's catch-up of unsynced watchers progresses on this tick too).
const TICK: Duration = Duration::from_millis(100);
/// etcd's interval of progress notifications to idle watchers that asked.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(600);
/// Responses queued for the client before the stream task waits for it.
const STREAM_BUFFER: usize = 64;

#[tonic::async_trait]
impl Watch for ClientApi {
    type WatchStream = WatchStream;

    async fn watch(&self, request: Request<Streaming<pb::WatchRequest>>) -> Result<Response<WatchStream>, Status> {
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        let stream = WatchStreamTask { api: self.clone(), tx, by_watch_id: BTreeMap::new(), next_watch_id: 0 };
        tokio::spawn(stream.run(request.into_inner()));
        let out = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) });
        Ok(Response::new(Box::pin(out)))
    }
}

struct WatchStreamTask {
    api: ClientApi,
    tx: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    /// The stream's watch IDs and the hub's watchers behind them.
    by_watch_id: BTreeMap<i64, WatcherId>,
    next_watch_id: i64,
}

impl WatchStreamTask {
    async fn run(mut self, mut requests: Streaming<pb::WatchRequest>) {
        let shared = self.api.node.shared().clone();
        let mut progress_due = tokio::time::Instant::now() + PROGRESS_INTERVAL;
        loop {
            let applied = shared.applied_index();
            tokio::select! {
                biased;
                req = requests.next() => match req {
                    Some(Ok(req)) => {
                        if self.handle(req).await.is_err() {
                            break;
                        }
                    }
                    // The client closed the stream or it broke.
                    _ => break,
                },
                _ = tokio::time::timeout(TICK, shared.wait_applied(applied + 1)) => {}
            }
            if tokio::time::Instant::now() >= progress_due {
                progress_due += PROGRESS_INTERVAL;
                if self.send_progress_notifications().await.is_err() {
                    break;
                }
            }
            if self.send_output().await.is_err() {
                break;
            }
        }
        let mut hub = shared.hub();
        for id in self.by_watch_id.values() {
            hub.cancel(*id);
        }
    }

    fn header(&self) -> Header {
        self.api.header()
    }

    async fn send(&self, resp: pb::WatchResponse) -> Result<(), ()> {
        self.tx.send(Ok(resp)).await.map_err(|_| ())
    }

    async fn handle(&mut self, req: pb::WatchRequest) -> Result<(), ()> {
        match req.request_union {
            Some(RequestUnion::CreateRequest(create)) => self.create(create).await,
            Some(RequestUnion::CancelRequest(cancel)) => {
                let watch_id = cancel.watch_id;
                if let Some(id) = self.by_watch_id.remove(&watch_id) {
                    self.api.node.shared().hub().cancel(id);
                    let revision = self.api.node.shared().state().revision();
                    let resp = pb::WatchResponse {
                        header: Some(self.header().at(revision)),
                        watch_id,
                        canceled: true,
                        ..Default::default()
                    };
                    self.send(resp).await?;
                }
                Ok(())
            }
            Some(RequestUnion::ProgressRequest(_)) => {
                // Not tied to one watcher: etcd answers with watch ID -1.
                let revision = self.api.node.shared().state().revision();
                self.send(pb::WatchResponse {
                    header: Some(self.header().at(revision)),
                    watch_id: -1,
                    ..Default::default()
                })
                .await
            }
            None => Ok(()),
        }
    }

    async fn create(&mut self, create: pb::WatchCreateRequest) -> Result<(), ()> {
        let requested = create.watch_id;
        let revision = self.api.node.shared().state().revision();
        if create.key.is_empty() {
            // etcd's watch server refuses an empty key the same way.
            let resp = pb::WatchResponse {
                header: Some(self.header().at(revision)),
                watch_id: -1,
                created: true,
                canceled: true,
                cancel_reason: detcd_core::Error::EmptyKey.message().to_string(),
                ..Default::default()
            };
            return self.send(resp).await;
        }
        if requested != 0 && self.by_watch_id.contains_key(&requested) {
            let resp = pb::WatchResponse {
                header: Some(self.header().at(revision)),
                watch_id: requested,
                created: true,
                canceled: true,
                cancel_reason: "mvcc: duplicate watch ID provided on the WatchStream".to_string(),
                ..Default::default()
            };
            return self.send(resp).await;
        }
        let watch_id = if requested != 0 { requested } else { self.fresh_watch_id() };
        let id = {
            let shared = self.api.node.shared();
            let state = shared.state();
            shared.hub().watch(create.into(), state.store())
        };
        self.by_watch_id.insert(watch_id, id);
        let created = pb::WatchResponse {
            header: Some(self.header().at(revision)),
            watch_id,
            created: true,
            ..Default::default()
        };
        self.send(created).await
    }

    /// The next automatic watch ID, skipping any a client picked itself.
    fn fresh_watch_id(&mut self) -> i64 {
        while self.by_watch_id.contains_key(&self.next_watch_id) {
            self.next_watch_id += 1;
        }
        let id = self.next_watch_id;
        self.next_watch_id += 1;
        id
    }

    /// Sends what the hub holds for this stream's watchers.
    async fn send_output(&mut self) -> Result<(), ()> {
        let outputs: Vec<(i64, WatchOutput)> = {
            let shared = self.api.node.shared();
            let state = shared.state();
            let mut hub = shared.hub();
            hub.sync(state.store());
            let revision = state.revision();
            self.by_watch_id
                .iter()
                .flat_map(|(wid, id)| hub.take(*id, revision).into_iter().map(|o| (*wid, o)))
                .collect()
        };
        let header = self.header();
        for (watch_id, out) in outputs {
            if matches!(out, WatchOutput::Compacted { .. }) {
                // The hub has ended this watcher.
                self.by_watch_id.remove(&watch_id);
            }
            self.send(convert::watch_response(&header, watch_id, out)).await?;
        }
        Ok(())
    }

    async fn send_progress_notifications(&mut self) -> Result<(), ()> {
        let outputs = {
            let shared = self.api.node.shared();
            let revision = shared.state().revision();
            shared.hub().progress(revision)
        };
        let header = self.header();
        for out in outputs {
            let WatchOutput::Progress { watcher, .. } = &out else { continue };
            let Some(watch_id) = self.by_watch_id.iter().find(|(_, id)| *id == watcher).map(|(w, _)| *w) else {
                continue;
            };
            self.send(convert::watch_response(&header, watch_id, out)).await?;
        }
        Ok(())
    }
}

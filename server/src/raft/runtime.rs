//! The runtime seam: openraft's `AsyncRuntime` implemented once, over the
//! crate name `tokio`, which is real tokio in a normal build and madsim's
//! simulated tokio under `RUSTFLAGS="--cfg madsim"`. Nothing here branches
//! on the build; the two worlds differ only in what `tokio` resolves to.
//!
//! Choices that keep a simulated run replayable from its seed:
//! - the `Watch` channel is ours (`watch.rs`), not tokio's;
//! - timeouts are a biased poll of the future, then a `Sleep`;
//! - openraft's thread-local RNG comes from openraft-rt's `DeterministicRng`
//!   wrapper (see `DetcdRuntime`), seeded per node.

use super::watch::NotifyWatch;
use openraft_rt::deterministic_rng::DeterministicRng;
use openraft_rt::mpsc::{SendError, TryRecvError};
use openraft_rt::{AsyncRuntime, Mpsc, MpscReceiver, MpscSender, MpscWeakSender, Oneshot, OneshotSender, OptionalSend};
use rand::SeedableRng;
use std::fmt;
use std::future::Future;
use std::io;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// The runtime openraft is configured with: the tokio seam with seeded,
/// per-task deterministic randomness.
pub type DetcdRuntime = DeterministicRng<TokioSeam>;

/// openraft's runtime over `tokio` (real or simulated).
#[derive(Default)]
pub struct TokioSeam {
    /// Only for openraft's `block_on` helper (its test suites); a node runs
    /// inside the caller's runtime.
    runtime: Option<tokio::runtime::Runtime>,
}

impl fmt::Debug for TokioSeam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokioSeam")
    }
}

impl AsyncRuntime for TokioSeam {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = SeamInstant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    /// Unused: `DeterministicRng` replaces it with a seeded generator.
    type ThreadLocalRng = rand::rngs::SmallRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    fn sleep_until(deadline: SeamInstant) -> Self::Sleep {
        tokio::time::sleep_until(deadline.0)
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(duration: Duration, future: F) -> Timeout<F> {
        Timeout { future: Box::pin(future), sleep: Box::pin(tokio::time::sleep(duration)) }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(deadline: SeamInstant, future: F) -> Timeout<F> {
        Timeout { future: Box::pin(future), sleep: Box::pin(tokio::time::sleep_until(deadline.0)) }
    }

    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        rand::rngs::SmallRng::seed_from_u64(0)
    }

    type Mpsc = TokioMpsc;
    type Watch = NotifyWatch;
    type Oneshot = TokioOneshot;
    type Mutex<T: OptionalSend + 'static> = TokioMutex<T>;

    fn new(threads: usize) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .enable_all()
            .build()
            .expect("building a tokio runtime");
        TokioSeam { runtime: Some(runtime) }
    }

    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        self.runtime.as_ref().expect("TokioSeam::new builds the runtime").block_on(future)
    }

    /// Runs the closure inline when polled: madsim has no OS threads to
    /// block, and openraft itself never calls this (it only re-exports it),
    /// so one behaviour serves both worlds.
    async fn spawn_blocking<F, T>(f: F) -> Result<T, io::Error>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        Ok(f())
    }
}

/// `tokio::time::Instant` (madsim's clock when simulated), wrapped because
/// openraft's `Instant` trait and tokio's type are both foreign here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SeamInstant(tokio::time::Instant);

impl openraft_rt::Instant for SeamInstant {
    fn now() -> Self {
        SeamInstant(tokio::time::Instant::now())
    }
}

impl Add<Duration> for SeamInstant {
    type Output = SeamInstant;
    fn add(self, d: Duration) -> SeamInstant {
        SeamInstant(self.0 + d)
    }
}

impl AddAssign<Duration> for SeamInstant {
    fn add_assign(&mut self, d: Duration) {
        self.0 += d;
    }
}

impl Sub<Duration> for SeamInstant {
    type Output = SeamInstant;
    fn sub(self, d: Duration) -> SeamInstant {
        SeamInstant(self.0 - d)
    }
}

impl SubAssign<Duration> for SeamInstant {
    fn sub_assign(&mut self, d: Duration) {
        self.0 -= d;
    }
}

impl Sub<SeamInstant> for SeamInstant {
    type Output = Duration;
    fn sub(self, earlier: SeamInstant) -> Duration {
        self.0.saturating_duration_since(earlier.0)
    }
}

/// A deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline has elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Polls the future first (biased), then the deadline.
pub struct Timeout<F> {
    future: Pin<Box<F>>,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.future.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        self.sleep.as_mut().poll(cx).map(|()| Err(Elapsed))
    }
}

pub struct TokioMpsc;

pub struct MpscTx<T>(mpsc::Sender<T>);
pub struct MpscRx<T>(mpsc::Receiver<T>);
pub struct MpscWeakTx<T>(mpsc::WeakSender<T>);

impl<T> Clone for MpscTx<T> {
    fn clone(&self) -> Self {
        MpscTx(self.0.clone())
    }
}

impl<T> Clone for MpscWeakTx<T> {
    fn clone(&self) -> Self {
        MpscWeakTx(self.0.clone())
    }
}

impl Mpsc for TokioMpsc {
    type Sender<T: OptionalSend> = MpscTx<T>;
    type Receiver<T: OptionalSend> = MpscRx<T>;
    type WeakSender<T: OptionalSend> = MpscWeakTx<T>;

    fn channel<T: OptionalSend>(buffer: usize) -> (MpscTx<T>, MpscRx<T>) {
        let (tx, rx) = mpsc::channel(buffer);
        (MpscTx(tx), MpscRx(rx))
    }
}

impl<T: OptionalSend> MpscSender<TokioMpsc, T> for MpscTx<T> {
    async fn send(&self, msg: T) -> Result<(), SendError<T>> {
        self.0.send(msg).await.map_err(|e| SendError(e.0))
    }

    fn downgrade(&self) -> MpscWeakTx<T> {
        MpscWeakTx(self.0.downgrade())
    }
}

impl<T: OptionalSend> MpscReceiver<T> for MpscRx<T> {
    fn recv(&mut self) -> impl Future<Output = Option<T>> + OptionalSend {
        self.0.recv()
    }

    fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv().map_err(|e| match e {
            mpsc::error::TryRecvError::Empty => TryRecvError::Empty,
            mpsc::error::TryRecvError::Disconnected => TryRecvError::Disconnected,
        })
    }
}

impl<T: OptionalSend> MpscWeakSender<TokioMpsc, T> for MpscWeakTx<T> {
    fn upgrade(&self) -> Option<MpscTx<T>> {
        self.0.upgrade().map(MpscTx)
    }
}

pub struct TokioOneshot;

pub struct OneshotTx<T>(oneshot::Sender<T>);

impl Oneshot for TokioOneshot {
    type Sender<T: OptionalSend> = OneshotTx<T>;
    type Receiver<T: OptionalSend> = oneshot::Receiver<T>;
    type ReceiverError = oneshot::error::RecvError;

    fn channel<T: OptionalSend>() -> (OneshotTx<T>, oneshot::Receiver<T>) {
        let (tx, rx) = oneshot::channel();
        (OneshotTx(tx), rx)
    }
}

impl<T: OptionalSend> OneshotSender<T> for OneshotTx<T> {
    fn send(self, t: T) -> Result<(), T> {
        self.0.send(t)
    }
}

pub struct TokioMutex<T>(tokio::sync::Mutex<T>);

impl<T: OptionalSend + 'static> openraft_rt::Mutex<T> for TokioMutex<T> {
    type Guard<'a> = tokio::sync::MutexGuard<'a, T>;

    fn new(value: T) -> Self {
        TokioMutex(tokio::sync::Mutex::new(value))
    }

    fn lock(&self) -> impl Future<Output = Self::Guard<'_>> + OptionalSend {
        self.0.lock()
    }
}

//! [`Driving`]: a downstream connection's future run in one task with the upstream connections
//! its requests open ([`ConnectionAffinity`]) and a stop signal, each part polled with a waker of
//! its own, so a wake-up polls only the part woken.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::task::{Context, Poll, Waker};

use futures_util::task::AtomicWaker;

use super::affinity::ConnectionAffinity;

/// Which parts of a [`Driving`] future were woken: the downstream connection, the upstream ones,
/// the stop signal. Each part is polled with a waker of its own, so one part's wake-up does not
/// poll the others (hyper's connection futures are not cheap to poll for nothing).
const DOWNSTREAM: u8 = 1;
pub(super) const UPSTREAM: u8 = 2;
const STOP: u8 = 4;

pub(super) struct Wakeups {
    pending: AtomicU8,
    /// The task is polling now: wake-ups are seen by its loop, the task need not be woken.
    in_poll: AtomicBool,
    task: AtomicWaker,
}

impl Default for Wakeups {
    fn default() -> Self {
        Wakeups {
            pending: AtomicU8::new(DOWNSTREAM | UPSTREAM | STOP),
            in_poll: AtomicBool::new(false),
            task: AtomicWaker::new(),
        }
    }
}

/// The waker of one part of a [`Driving`] future.
struct PartWaker {
    wakeups: Arc<Wakeups>,
    part: u8,
}

impl std::task::Wake for PartWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakeups.pending.fetch_or(self.part, Ordering::SeqCst);
        if !self.wakeups.in_poll.load(Ordering::SeqCst) {
            self.wakeups.task.wake();
        }
    }
}

pub(super) fn part_waker(wakeups: &Arc<Wakeups>, part: u8) -> Waker {
    Waker::from(Arc::new(PartWaker { wakeups: wakeups.clone(), part }))
}

/// How many rounds one poll of [`Driving`] makes before it yields to the runtime (a part that
/// keeps waking itself, as a future out of its cooperative budget does, must not spin).
const DRIVING_ROUNDS: usize = 16;

impl ConnectionAffinity {
    /// Run `connection`, the downstream connection's future, together with the upstream
    /// connections its requests open (one task for both sides). When `stop` resolves,
    /// `on_stop` is called on the connection (a graceful shutdown) and driving goes on until
    /// the connection ends; its upstream connections are dropped (closed) with it.
    pub fn driving<F, S, G>(&self, connection: F, stop: S, on_stop: G) -> Driving<F, S, G>
    where
        F: Future,
        S: Future<Output = ()>,
        G: FnOnce(Pin<&mut F>),
    {
        let wakeups = &self.0.wakeups;
        Driving {
            connection,
            stop: Some(stop),
            on_stop: Some(on_stop),
            affinity: self.clone(),
            downstream_waker: part_waker(wakeups, DOWNSTREAM),
            upstream_waker: part_waker(wakeups, UPSTREAM),
            stop_waker: part_waker(wakeups, STOP),
        }
    }
}

pin_project_lite::pin_project! {
    /// A downstream connection's future run with its upstream connections and a stop signal
    /// (see [`ConnectionAffinity::driving`]).
    pub struct Driving<F, S, G> {
        #[pin]
        connection: F,
        #[pin]
        stop: Option<S>,
        on_stop: Option<G>,
        affinity: ConnectionAffinity,
        downstream_waker: Waker,
        upstream_waker: Waker,
        stop_waker: Waker,
    }
}

impl<F, S, G> Future for Driving<F, S, G>
where
    F: Future,
    S: Future<Output = ()>,
    G: FnOnce(Pin<&mut F>),
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let inner = &this.affinity.0;
        let wakeups = &inner.wakeups;
        wakeups.task.register(cx.waker());
        wakeups.in_poll.store(true, Ordering::SeqCst);
        for _ in 0..DRIVING_ROUNDS {
            let mut pending = wakeups.pending.swap(0, Ordering::SeqCst);
            if pending == 0 {
                // Leave, unless a wake-up came in while leaving.
                wakeups.in_poll.store(false, Ordering::SeqCst);
                pending = wakeups.pending.swap(0, Ordering::SeqCst);
                if pending == 0 {
                    return Poll::Pending;
                }
                wakeups.in_poll.store(true, Ordering::SeqCst);
            }
            // Upstream first: a response that arrived is then seen downstream in this round.
            if pending & UPSTREAM != 0 {
                inner.poll_driven(this.upstream_waker);
            }
            if pending & STOP != 0
                && let Some(stop) = this.stop.as_mut().as_pin_mut()
                && stop.poll(&mut Context::from_waker(this.stop_waker)).is_ready()
            {
                this.stop.set(None);
                if let Some(on_stop) = this.on_stop.take() {
                    on_stop(this.connection.as_mut());
                }
                pending |= DOWNSTREAM;
            }
            if pending & DOWNSTREAM != 0
                && let Poll::Ready(out) = this.connection.as_mut().poll(&mut Context::from_waker(this.downstream_waker))
            {
                wakeups.in_poll.store(false, Ordering::SeqCst);
                // One last turn for the upstream side: an upgrade hands its connection over when
                // that connection's future runs (the tunnel task takes it from there).
                inner.poll_driven(this.upstream_waker);
                return Poll::Ready(out);
            }
        }
        // Still woken after every round: yield, and come back.
        wakeups.in_poll.store(false, Ordering::SeqCst);
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The upstream side of a driven connection runs in the downstream connection's task (no
    /// spawn): here the "downstream" future finishes only when a "connection" handed to the
    /// driver has run, and the stop signal asks for a graceful shutdown without cutting it short.
    #[tokio::test]
    async fn driving_runs_handed_connections_and_stops_gracefully() {
        let affinity = ConnectionAffinity::default();
        let (ran_tx, ran_rx) = tokio::sync::oneshot::channel::<()>();
        let handed = affinity.clone();
        let downstream = async move {
            // A request opens an upstream connection: its future only runs if the driver runs it.
            handed.drive(Box::pin(async move {
                tokio::task::yield_now().await;
                let _ = ran_tx.send(());
            }));
            ran_rx.await.is_ok()
        };
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        let driving = affinity.driving(downstream, std::future::ready(()), move |_| flag.store(true, Ordering::SeqCst));
        let ran = tokio::time::timeout(Duration::from_secs(5), driving).await.expect("the driven connection ran");
        assert!(ran, "the handed connection ran to its end");
        assert!(stopped.load(Ordering::SeqCst), "the stop signal called the graceful shutdown");
    }

    /// A part that wakes itself at every poll (as a future out of its cooperative budget does)
    /// does not hold the thread: the driver yields between rounds.
    #[tokio::test]
    async fn a_busy_part_does_not_starve_other_tasks() {
        let affinity = ConnectionAffinity::default();
        let spinning = std::future::poll_fn(|cx: &mut Context<'_>| {
            cx.waker().wake_by_ref();
            Poll::<()>::Pending
        });
        let driving = affinity.driving(spinning, std::future::pending::<()>(), |_| {});
        let other = tokio::spawn(async {});
        let race = async {
            tokio::select! {
                _ = driving => false,
                done = other => done.is_ok(),
            }
        };
        assert!(tokio::time::timeout(Duration::from_secs(5), race).await.expect("not starved"));
    }
}

//! Notifications: Slack (Block Kit), a generic signed webhook (a versioned
//! JSON payload, `docs/webhook.schema.json`), and Microsoft Teams (an
//! Adaptive Card), for the agent's events and a periodic digest.
//!
//! [`Notifications`] implements the [`Notifier`] port. `notify` never waits:
//! it builds the payload and offers it to each interested sink's bounded
//! queue; a full queue drops it and counts the drop. One task per sink
//! ([`delivery`]) sends in order with retries, backoff and jitter,
//! `Retry-After`, a give-up deadline and a rate limit. URLs and secrets are
//! read once from files or environment variables and never printed
//! ([`sink::Secret`]).
//!
//! What it is not for: deciding anything. The agent decides what happened;
//! this module only tells people, and tolerates every receiver failure.
//!
//! - [`config`]: the `notifications:` section and its checks.
//! - [`payload`]: the webhook contract; [`message`], [`slack`], [`teams`]:
//!   the same as chat messages.
//! - [`signing`]: HMAC-SHA256 signatures and the receiver's verification.
//! - [`samples`]: one sample of each notification, for `tailor notify test`.
//!
//! See `docs/notifications.md`.

pub mod config;
pub mod delivery;
pub mod links;
pub mod message;
pub mod payload;
pub mod samples;
pub mod signing;
pub mod sink;
pub mod slack;
pub mod stats;
pub mod teams;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::ports::{AgentEvent, Digest, Notifier};
use config::{DeliveryConfig, NotificationsConfig, NotifyEvent};
use delivery::{Queued, SinkWorker};
use payload::{Context, Payload};
use sink::Sink;
use stats::{DropReason, NotifyMetrics, SinkCounts, SinkStats};

/// Why notifications could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A URL or secret could not be read or used; `key` is its config path.
    #[error("`{key}`: {problem}; fix: {fix}")]
    Setup {
        key: String,
        problem: String,
        fix: String,
    },
    #[error("HTTP client: {0}")]
    Client(String),
}

struct SinkHandle {
    name: String,
    events: std::collections::BTreeSet<NotifyEvent>,
    /// `None` once shut down.
    queue: Mutex<Option<mpsc::Sender<Queued>>>,
    stats: Arc<SinkStats>,
}

struct Inner {
    context: Context,
    sinks: Vec<SinkHandle>,
    metrics: NotifyMetrics,
    tasks: Mutex<Vec<(Arc<SinkStats>, JoinHandle<()>)>>,
}

/// The notifier: cheap to clone, every clone feeds the same queues.
#[derive(Clone)]
pub struct Notifications {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifications {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifications")
            .field("sinks", &self.sink_names())
            .finish()
    }
}

impl Notifications {
    /// Reads every sink's URL and secret and starts one delivery task per
    /// sink. Must be called inside a tokio runtime.
    pub fn from_config(
        config: &NotificationsConfig,
        cluster: Option<String>,
    ) -> Result<Self, NotifyError> {
        let sinks = config
            .sinks
            .iter()
            .enumerate()
            .map(|(i, s)| Sink::resolve(&format!("notifications.sinks[{i}]"), s))
            .collect::<Result<Vec<_>, _>>()?;
        let context = Context {
            cluster,
            links: config.links.clone(),
            digest_top: config.digest.top,
        };
        Notifications::start(sinks, &config.delivery, context)
    }

    /// Starts one delivery task per sink. Must be called inside a tokio
    /// runtime.
    pub fn start(
        sinks: Vec<Sink>,
        delivery: &DeliveryConfig,
        context: Context,
    ) -> Result<Self, NotifyError> {
        let client = reqwest::Client::builder()
            .timeout(delivery.timeout)
            .connect_timeout(delivery.timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tailor/", env!("CARGO_PKG_VERSION")))
            // A redirect would resend the body (and its signature) elsewhere.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| NotifyError::Client(e.to_string()))?;
        let metrics = NotifyMetrics::default();
        let mut handles = Vec::new();
        let mut tasks = Vec::new();
        for sink in sinks {
            let stats = metrics.sink(&sink.name);
            let (tx, rx) = mpsc::channel(delivery.queue_size.max(1));
            handles.push(SinkHandle {
                name: sink.name.clone(),
                events: sink.events.clone(),
                queue: Mutex::new(Some(tx)),
                stats: stats.clone(),
            });
            let worker = SinkWorker::new(sink, client.clone(), delivery.clone(), stats.clone());
            tasks.push((stats, tokio::spawn(worker.run(rx))));
        }
        Ok(Notifications {
            inner: Arc::new(Inner {
                context,
                sinks: handles,
                metrics,
                tasks: Mutex::new(tasks),
            }),
        })
    }

    pub fn sink_names(&self) -> Vec<&str> {
        self.inner.sinks.iter().map(|s| s.name.as_str()).collect()
    }

    /// Whether any sink receives `event`.
    pub fn wants(&self, event: NotifyEvent) -> bool {
        self.inner.sinks.iter().any(|s| s.events.contains(&event))
    }

    /// What every payload is built with.
    pub fn context(&self) -> &Context {
        &self.inner.context
    }

    /// Offers `payload` to every sink that receives its event. Never waits.
    pub fn send(&self, payload: Payload) {
        let payload = Arc::new(payload);
        for sink in &self.inner.sinks {
            if !sink.events.contains(&payload.event) {
                continue;
            }
            let queued = Queued {
                payload: payload.clone(),
                enqueued: Instant::now(),
            };
            let guard = sink.queue.lock().unwrap_or_else(PoisonError::into_inner);
            let reason = match guard.as_ref().map(|q| q.try_send(queued)) {
                Some(Ok(())) => {
                    sink.stats.queued();
                    continue;
                }
                Some(Err(TrySendError::Full(_))) => DropReason::QueueFull,
                Some(Err(TrySendError::Closed(_))) | None => DropReason::Shutdown,
            };
            drop(guard);
            sink.stats.dropped(reason, 1);
            tracing::warn!(
                sink = %sink.name,
                id = %payload.id,
                event = %payload.event,
                reason = reason.as_str(),
                "notification dropped"
            );
        }
    }

    /// Per sink: sent, retried, dropped by reason, pending, last error.
    pub fn counts(&self) -> Vec<SinkCounts> {
        self.inner.sinks.iter().map(|s| s.stats.counts()).collect()
    }

    /// Adds the `tailor_notifications_*` metrics to `registry`.
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        self.inner.metrics.register(registry);
    }

    /// Stops taking notifications and gives the queued ones up to `grace`
    /// to be delivered; what is left then is dropped (`shutdown`).
    pub async fn shutdown(&self, grace: Duration) {
        for sink in &self.inner.sinks {
            sink.queue
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
        }
        let tasks = std::mem::take(
            &mut *self
                .inner
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let deadline = Instant::now() + grace;
        for (stats, mut task) in tasks {
            if tokio::time::timeout_at(deadline, &mut task).await.is_err() {
                task.abort();
                let _ = task.await;
            }
            stats.abandon_pending();
        }
    }
}

/// A notification id: unique per process run and notification, random
/// across runs (receivers deduplicate on it).
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static RUN: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let run = *RUN.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(std::process::id())
    });
    format!("{run:016x}-{:08x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

impl Notifier for Notifications {
    fn notify(&self, event: &AgentEvent) {
        if self.wants(event.kind.into()) {
            self.send(Payload::from_event(event, &self.inner.context, new_id()));
        }
    }

    fn digest(&self, digest: &Digest) {
        if self.wants(NotifyEvent::Digest) {
            self.send(Payload::from_digest(digest, &self.inner.context, new_id()));
        }
    }
}

//! What delivery did, per sink: the `tailor_notifications_*` metrics, and
//! the same numbers for `tailor notify test` and the tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a notification was not delivered (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// The sink's queue was full: the loop never waits for a sink.
    QueueFull,
    /// Not delivered within `give_up_after`.
    Deadline,
    /// The receiver refused it for good (4xx other than 408 and 429).
    Rejected,
    /// The agent stopped before it could be delivered.
    Shutdown,
}

impl DropReason {
    pub const ALL: [DropReason; 4] = [
        DropReason::QueueFull,
        DropReason::Deadline,
        DropReason::Rejected,
        DropReason::Shutdown,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Deadline => "deadline",
            DropReason::Rejected => "rejected",
            DropReason::Shutdown => "shutdown",
        }
    }
}

type SinkLabel = [(&'static str, String); 1];
type DropLabels = [(&'static str, String); 2];

/// The metric families, shared by every sink.
#[derive(Clone, Debug, Default)]
pub struct NotifyMetrics {
    sent: Family<SinkLabel, Counter>,
    dropped: Family<DropLabels, Counter>,
    retries: Family<SinkLabel, Counter>,
    queued: Family<SinkLabel, Gauge>,
}

impl NotifyMetrics {
    /// Adds the families to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "tailor_notifications_sent",
            "Notifications a sink accepted (HTTP 2xx)",
            self.sent.clone(),
        );
        registry.register(
            "tailor_notifications_dropped",
            "Notifications given up: queue_full (the sink's queue was full), deadline (not delivered within give_up_after), rejected (a final 4xx), shutdown",
            self.dropped.clone(),
        );
        registry.register(
            "tailor_notifications_retries",
            "Attempts after the first (transport errors, 408, 429, 5xx)",
            self.retries.clone(),
        );
        registry.register(
            "tailor_notifications_queued",
            "Notifications waiting or being sent, per sink",
            self.queued.clone(),
        );
    }

    /// One sink's counters, every series created at 0.
    pub fn sink(&self, name: &str) -> Arc<SinkStats> {
        let label = [("sink", name.to_string())];
        self.sent.get_or_create(&label).inc_by(0);
        self.retries.get_or_create(&label).inc_by(0);
        self.queued.get_or_create(&label).set(0);
        for reason in DropReason::ALL {
            self.dropped
                .get_or_create(&[
                    ("sink", name.to_string()),
                    ("reason", reason.as_str().to_string()),
                ])
                .inc_by(0);
        }
        Arc::new(SinkStats {
            name: name.to_string(),
            metrics: self.clone(),
            pending: AtomicU64::new(0),
            last_error: Mutex::new(None),
        })
    }
}

/// One sink's numbers.
#[derive(Debug)]
pub struct SinkStats {
    name: String,
    metrics: NotifyMetrics,
    pending: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// A snapshot of one sink's numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SinkCounts {
    pub sink: String,
    pub sent: u64,
    pub retries: u64,
    pub dropped_queue_full: u64,
    pub dropped_deadline: u64,
    pub dropped_rejected: u64,
    pub dropped_shutdown: u64,
    /// Queued or being sent.
    pub pending: u64,
    /// The last failure (status and the receiver's answer, or the
    /// transport error), never the URL.
    pub last_error: Option<String>,
}

impl SinkCounts {
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_deadline
            + self.dropped_rejected
            + self.dropped_shutdown
    }
}

impl SinkStats {
    fn label(&self) -> SinkLabel {
        [("sink", self.name.clone())]
    }

    /// A notification entered the queue.
    pub fn queued(&self) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        self.metrics.queued.get_or_create(&self.label()).inc();
    }

    /// A notification left the queue: delivered (`Ok`) or dropped.
    pub fn finished(&self, outcome: Result<(), DropReason>) {
        self.pending.fetch_sub(1, Ordering::SeqCst);
        self.metrics.queued.get_or_create(&self.label()).dec();
        match outcome {
            Ok(()) => {
                self.metrics.sent.get_or_create(&self.label()).inc();
            }
            Err(reason) => self.dropped(reason, 1),
        }
    }

    /// Notifications dropped without ever being queued (`queue_full`), or
    /// left in the queue at shutdown.
    pub fn dropped(&self, reason: DropReason, n: u64) {
        self.metrics
            .dropped
            .get_or_create(&[
                ("sink", self.name.clone()),
                ("reason", reason.as_str().to_string()),
            ])
            .inc_by(n);
    }

    /// The queue's remainder at shutdown, dropped.
    pub fn abandon_pending(&self) {
        let n = self.pending.swap(0, Ordering::SeqCst);
        if n > 0 {
            self.metrics.queued.get_or_create(&self.label()).set(0);
            self.dropped(DropReason::Shutdown, n);
        }
    }

    pub fn retried(&self) {
        self.metrics.retries.get_or_create(&self.label()).inc();
    }

    pub fn set_last_error(&self, error: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn counts(&self) -> SinkCounts {
        let label = self.label();
        let dropped = |reason: DropReason| {
            self.metrics
                .dropped
                .get_or_create(&[
                    ("sink", self.name.clone()),
                    ("reason", reason.as_str().to_string()),
                ])
                .get()
        };
        SinkCounts {
            sink: self.name.clone(),
            sent: self.metrics.sent.get_or_create(&label).get(),
            retries: self.metrics.retries.get_or_create(&label).get(),
            dropped_queue_full: dropped(DropReason::QueueFull),
            dropped_deadline: dropped(DropReason::Deadline),
            dropped_rejected: dropped(DropReason::Rejected),
            dropped_shutdown: dropped(DropReason::Shutdown),
            pending: self.pending.load(Ordering::SeqCst),
            last_error: self.last_error(),
        }
    }
}

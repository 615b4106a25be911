//! What the daemon tells people besides the agent's own events: agent
//! trouble (the metrics backend failing for `trouble_after`, the Kubernetes
//! API refusing a call) and the periodic digest.
//!
//! The observed ports record what they see in [`TroubleSignals`]; after each
//! tick the loop asks [`Notices`] what to send. The decisions are pure over
//! those signals and the two clocks handed in.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::domain::{WorkloadKind, WorkloadRef};
use crate::ports::{AgentEvent, EventDetail, EventKind, Trouble, TroubleDetail};

/// A distinct RBAC error is repeated at most this often.
pub const FORBIDDEN_REPEAT: Duration = Duration::from_secs(3600);

/// What the daemon notifies on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct NoticeOptions {
    /// The metrics backend must fail this long before anyone is told.
    pub trouble_after: Duration,
    /// Time between two digests; `None`: no digest.
    pub digest_every: Option<Duration>,
    /// The workload trouble events are about when no workload is: tailor's
    /// own Deployment.
    pub agent: WorkloadRef,
}

impl Default for NoticeOptions {
    fn default() -> Self {
        NoticeOptions {
            trouble_after: Duration::from_secs(5 * 60),
            digest_every: None,
            agent: WorkloadRef {
                namespace: crate::config::DEFAULT_LEASE_NAMESPACE.to_string(),
                kind: WorkloadKind::Deployment,
                name: "tailor".to_string(),
            },
        }
    }
}

/// The metrics backend has failed since `since` (and every call since).
#[derive(Clone, Debug, PartialEq)]
pub struct BackendFailure {
    pub since: Instant,
    pub since_unix: i64,
    pub error: String,
}

/// What the observed ports saw since the last look.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TroubleSignals {
    /// `None` while the backend answers.
    pub backend: Option<BackendFailure>,
    /// Calls the Kubernetes API refused (RBAC), since the last look.
    pub forbidden: Vec<String>,
}

/// What was already said, so each trouble is told once.
#[derive(Debug)]
pub struct Notices {
    options: NoticeOptions,
    /// The failure announced as unreachable (its start, unix seconds).
    announced_backend: Option<i64>,
    forbidden_told: HashMap<String, Instant>,
    /// `unix / digest_every` of the last digest (or of the start).
    digest_period: Option<i64>,
}

impl Notices {
    pub fn new(options: NoticeOptions) -> Self {
        Notices {
            options,
            announced_backend: None,
            forbidden_told: HashMap::new(),
            digest_period: None,
        }
    }

    fn event(&self, at: i64, message: String, detail: TroubleDetail) -> AgentEvent {
        AgentEvent {
            at,
            workload: self.options.agent.clone(),
            change_id: None,
            kind: EventKind::Trouble,
            message,
            detail: Some(EventDetail::Trouble(detail)),
        }
    }

    /// The trouble events to send now.
    pub fn trouble(
        &mut self,
        now: Instant,
        unix: i64,
        signals: &TroubleSignals,
    ) -> Vec<AgentEvent> {
        let mut out = Vec::new();
        match &signals.backend {
            Some(failure)
                if self.announced_backend.is_none()
                    && now.duration_since(failure.since) >= self.options.trouble_after =>
            {
                self.announced_backend = Some(failure.since_unix);
                let minutes = now.duration_since(failure.since).as_secs() / 60;
                out.push(self.event(
                    unix,
                    format!(
                        "the metrics backend has not answered for {minutes} min; no change is started or confirmed meanwhile: {}",
                        failure.error
                    ),
                    TroubleDetail {
                        problem: Trouble::MetricsUnreachable,
                        since: failure.since_unix,
                        error: failure.error.clone(),
                    },
                ));
            }
            None => {
                if let Some(since) = self.announced_backend.take() {
                    out.push(self.event(
                        unix,
                        format!(
                            "the metrics backend answers again after {} min",
                            (unix - since).max(0) / 60
                        ),
                        TroubleDetail {
                            problem: Trouble::MetricsRecovered,
                            since,
                            error: String::new(),
                        },
                    ));
                }
            }
            Some(_) => {}
        }
        for error in &signals.forbidden {
            let told = self
                .forbidden_told
                .get(error)
                .is_some_and(|&at| now.duration_since(at) < FORBIDDEN_REPEAT);
            if told {
                continue;
            }
            self.forbidden_told.insert(error.clone(), now);
            out.push(self.event(
                unix,
                format!("the Kubernetes API refused a call; grant tailor's ClusterRole the verb it names: {error}"),
                TroubleDetail {
                    problem: Trouble::Forbidden,
                    since: unix,
                    error: error.clone(),
                },
            ));
        }
        out
    }

    /// Whether a digest is due at `unix`: digests go out when the unix time
    /// enters a new multiple of the interval (daily at 00:00 UTC for 24h),
    /// so a restart neither skips nor repeats one. The first call only
    /// starts counting.
    pub fn digest_due(&mut self, unix: i64) -> bool {
        let Some(every) = self.options.digest_every else {
            return false;
        };
        let every = i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1);
        let period = unix.div_euclid(every);
        match self.digest_period.replace(period) {
            None => false,
            Some(last) => period > last,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failing(since: Instant, since_unix: i64) -> TroubleSignals {
        TroubleSignals {
            backend: Some(BackendFailure {
                since,
                since_unix,
                error: "unavailable: connection refused".into(),
            }),
            forbidden: Vec::new(),
        }
    }

    fn problems(events: &[AgentEvent]) -> Vec<Trouble> {
        events
            .iter()
            .map(|e| match &e.detail {
                Some(EventDetail::Trouble(t)) => t.problem,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_backend_is_told_once_after_the_delay_then_its_recovery() {
        let mut notices = Notices::new(NoticeOptions::default());
        let start = Instant::now();
        let signals = failing(start, 1_000);
        let at = |m: u64| start + Duration::from_secs(m * 60);
        assert!(notices.trouble(at(4), 1_240, &signals).is_empty());
        let told = notices.trouble(at(5), 1_300, &signals);
        assert_eq!(problems(&told), [Trouble::MetricsUnreachable]);
        assert!(told[0].message.contains("5 min"), "{}", told[0].message);
        assert!(notices.trouble(at(30), 2_800, &signals).is_empty());
        let told = notices.trouble(at(31), 2_860, &TroubleSignals::default());
        assert_eq!(problems(&told), [Trouble::MetricsRecovered]);
        assert!(
            notices
                .trouble(at(32), 2_920, &TroubleSignals::default())
                .is_empty()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_short_outage_is_never_told() {
        let mut notices = Notices::new(NoticeOptions::default());
        let start = Instant::now();
        assert!(notices.trouble(start, 0, &failing(start, 0)).is_empty());
        assert!(
            notices
                .trouble(start, 60, &TroubleSignals::default())
                .is_empty()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_rbac_error_is_told_once_an_hour() {
        let mut notices = Notices::new(NoticeOptions::default());
        let start = Instant::now();
        let signals = TroubleSignals {
            backend: None,
            forbidden: vec!["RBAC: tailor may not patch deployments".into()],
        };
        assert_eq!(
            problems(&notices.trouble(start, 0, &signals)),
            [Trouble::Forbidden]
        );
        assert!(
            notices
                .trouble(start + Duration::from_secs(60), 60, &signals)
                .is_empty()
        );
        let later = start + FORBIDDEN_REPEAT;
        assert_eq!(
            problems(&notices.trouble(later, 3600, &signals)),
            [Trouble::Forbidden]
        );
    }

    #[test]
    fn digests_follow_the_wall_clock_and_not_the_start() {
        let mut notices = Notices::new(NoticeOptions {
            digest_every: Some(Duration::from_secs(86_400)),
            ..NoticeOptions::default()
        });
        let day = 86_400;
        assert!(!notices.digest_due(10 * day + 3600), "not at start");
        assert!(!notices.digest_due(10 * day + 7200));
        assert!(notices.digest_due(11 * day + 60));
        assert!(!notices.digest_due(11 * day + 120));
        assert!(
            notices.digest_due(13 * day),
            "a missed day gives one digest"
        );
        let mut off = Notices::new(NoticeOptions::default());
        assert!(!off.digest_due(0) && !off.digest_due(10 * day));
    }
}

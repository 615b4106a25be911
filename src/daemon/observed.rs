//! The ports as the daemon hands them to the agent: shared (`Rc`, so an
//! agent can be dropped on losing leadership and started again without
//! rebuilding the adapters) and observed (a successful workload list makes
//! `/readyz` pass; recommendations feed `/metrics` and the JSON API;
//! metrics-backend calls are timed). They add no decision.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

use crate::domain::WorkloadRef;
use crate::guard::{ResourceSample, SliSample};
use crate::plan::WorkloadView;
use crate::ports::{
    AgentEvent, Cluster, Digest, Notifier, PortError, Publication, ResourcePatch, RolloutStatus,
    SloSource, UsageSource,
};
use crate::recommend::Recommendation;
use crate::rollout::RolloutRecord;

use super::state::DaemonState;

/// A [`Cluster`] whose successful workload lists mark the daemon ready.
pub struct ObservedCluster<C> {
    pub inner: Rc<C>,
    pub state: Arc<DaemonState>,
}

impl<C> Clone for ObservedCluster<C> {
    fn clone(&self) -> Self {
        ObservedCluster {
            inner: self.inner.clone(),
            state: self.state.clone(),
        }
    }
}

impl<C> ObservedCluster<C> {
    /// Notes an RBAC refusal for the trouble notifications.
    fn seen<T>(&self, result: Result<T, PortError>) -> Result<T, PortError> {
        if let Err(PortError::Forbidden(e)) = &result {
            self.state.forbidden(e.clone());
        }
        result
    }
}

impl<C: Cluster> Cluster for ObservedCluster<C> {
    async fn workloads(&self) -> Result<Vec<WorkloadView>, PortError> {
        let result = self.inner.workloads().await;
        if result.is_ok() {
            self.state.set_workloads_listed();
        }
        self.seen(result)
    }

    async fn apply(&self, patch: &ResourcePatch) -> Result<(), PortError> {
        self.seen(self.inner.apply(patch).await)
    }

    async fn rollout_status(&self, workload: &WorkloadRef) -> Result<RolloutStatus, PortError> {
        self.seen(self.inner.rollout_status(workload).await)
    }

    async fn load_rollouts(&self) -> Result<Vec<RolloutRecord>, PortError> {
        self.seen(self.inner.load_rollouts().await)
    }

    async fn save_rollout(&self, record: &RolloutRecord) -> Result<(), PortError> {
        self.seen(self.inner.save_rollout(record).await)
    }

    async fn record_event(&self, event: &AgentEvent) -> Result<(), PortError> {
        self.seen(self.inner.record_event(event).await)
    }

    async fn publish(&self, publication: &Publication) -> Result<(), PortError> {
        self.inner.publish(publication).await
    }
}

/// Tells the daemon state whether a metrics-backend call worked.
fn backend<T>(state: &DaemonState, result: &Result<T, PortError>) {
    state.backend_result(result.as_ref().err().map(ToString::to_string));
}

/// A [`UsageSource`] that publishes what it returns and times each call.
pub struct ObservedUsage<U> {
    pub inner: Rc<U>,
    pub state: Arc<DaemonState>,
}

impl<U> Clone for ObservedUsage<U> {
    fn clone(&self) -> Self {
        ObservedUsage {
            inner: self.inner.clone(),
            state: self.state.clone(),
        }
    }
}

impl<U: UsageSource> UsageSource for ObservedUsage<U> {
    async fn recommendations(&self, now: i64) -> Result<Vec<Recommendation>, PortError> {
        let started = Instant::now();
        let result = self.inner.recommendations(now).await;
        self.state.observe_query(started.elapsed());
        backend(&self.state, &result);
        if let Ok(all) = &result {
            self.state.set_recommendations(all.clone());
        }
        result
    }

    async fn urgent(&self, since: i64, now: i64) -> Result<Vec<Recommendation>, PortError> {
        let started = Instant::now();
        let result = self.inner.urgent(since, now).await;
        self.state.observe_query(started.elapsed());
        backend(&self.state, &result);
        if let Ok(urgent) = &result {
            self.state.merge_recommendations(urgent);
        }
        result
    }
}

/// A [`SloSource`] whose calls are timed.
pub struct ObservedSlo<S> {
    pub inner: Rc<S>,
    pub state: Arc<DaemonState>,
}

impl<S> Clone for ObservedSlo<S> {
    fn clone(&self) -> Self {
        ObservedSlo {
            inner: self.inner.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S: SloSource> SloSource for ObservedSlo<S> {
    async fn slis(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> Result<Option<Vec<SliSample>>, PortError> {
        let started = Instant::now();
        let result = self.inner.slis(workload, from, to).await;
        self.state.observe_query(started.elapsed());
        backend(&self.state, &result);
        result
    }

    async fn resource_signals(
        &self,
        workload: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> Result<Vec<ResourceSample>, PortError> {
        let started = Instant::now();
        let result = self.inner.resource_signals(workload, from, to).await;
        self.state.observe_query(started.elapsed());
        backend(&self.state, &result);
        result
    }
}

/// A shared [`Notifier`].
pub struct SharedNotifier<N>(pub Rc<N>);

impl<N> Clone for SharedNotifier<N> {
    fn clone(&self) -> Self {
        SharedNotifier(self.0.clone())
    }
}

impl<N: Notifier> Notifier for SharedNotifier<N> {
    fn notify(&self, event: &AgentEvent) {
        self.0.notify(event);
    }

    fn digest(&self, digest: &Digest) {
        self.0.digest(digest);
    }
}

//! The in-cluster daemon behind `tailor run`: leader election on a Lease,
//! the agent ticked every minute by the leader only, the HTTP endpoints
//! every replica serves, and a clean shutdown on SIGTERM.
//!
//! [`run`] is generic over the ports, so the same loop runs over the real
//! adapters (`app::run_daemon` wires them) and over in-memory fakes in the
//! tests. It makes no decision about workloads: the agent does.
//!
//! Threads: the ports' futures are not `Send`, so the agent runs on the
//! task that awaits [`run`] (`block_on` in `app`). The lease renewal and the
//! HTTP server are `Send` and run as their own tasks, so a slow tick never
//! delays a renewal.
//!
//! Crash safety comes from the agent, not from here: every rollout
//! transition is persisted through the cluster port before the next step,
//! and [`crate::agent::Agent::start`] resumes from those records. So the
//! daemon may drop a tick in the middle (leadership lost) exactly as if the
//! process had died there. See `docs/daemon.md`.

pub mod leader;
pub mod notices;
pub mod observed;
pub mod revert;
pub mod server;
pub mod state;

#[cfg(test)]
mod fake_api;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::future::Future;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument;

use crate::agent::{Agent, AgentSettings, AgentStats};
use crate::ports::{Clock, Cluster, Notifier, SloSource, UsageSource};

pub use leader::{LeaderElector, LeaderState};
use observed::{ObservedCluster, ObservedSlo, ObservedUsage, SharedNotifier};
pub use state::{DaemonState, Leadership, QueryTotals, QueryTotalsFn};

/// The wall clock, in unix seconds.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// How the daemon runs (the agent's own settings are [`AgentSettings`]).
#[derive(Clone)]
pub struct RunOptions {
    /// Time between two agent ticks (`agent.tick`, 1 min).
    pub tick: Duration,
    /// Where `/healthz`, `/readyz`, `/metrics` and the JSON API listen.
    pub metrics_address: SocketAddr,
    /// One tick (if leader), then return; no HTTP server.
    pub once: bool,
    /// `/healthz` fails when the loop made no progress for this long.
    pub stall_after: Duration,
    /// The metrics backend's query totals (`PromClient::counts()`), read at
    /// every scrape of `/metrics`.
    pub query_totals: Option<QueryTotalsFn>,
    /// Trouble notifications and the digest.
    pub notices: notices::NoticeOptions,
    /// Adds more metrics to `/metrics` (the notifier's).
    pub register_metrics: Option<RegisterMetricsFn>,
}

/// Adds metrics to the daemon's registry.
pub type RegisterMetricsFn = Arc<dyn Fn(&mut prometheus_client::registry::Registry) + Send + Sync>;

impl RunOptions {
    pub fn new(tick: Duration, metrics_address: SocketAddr) -> Self {
        RunOptions {
            tick,
            metrics_address,
            once: false,
            stall_after: (tick * 5).max(Duration::from_secs(300)),
            query_totals: None,
            notices: notices::NoticeOptions::default(),
            register_metrics: None,
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("tick", &self.tick)
            .field("metrics_address", &self.metrics_address)
            .field("once", &self.once)
            .field("stall_after", &self.stall_after)
            .field("query_totals", &self.query_totals.is_some())
            .field("notices", &self.notices)
            .field("register_metrics", &self.register_metrics.is_some())
            .finish()
    }
}

/// What a run did, for the exit message and the tests.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RunSummary {
    /// Agent ticks run to the end (failed ones included).
    pub ticks: u64,
    pub tick_errors: u64,
    /// Times this replica became leader and started an agent.
    pub leader_terms: u64,
    /// The lease was given up on shutdown.
    pub lease_released: bool,
    /// What the agents did, summed over every term.
    pub stats: AgentStats,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot listen on {address}: {source}")]
    Bind {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Completes on SIGTERM (what Kubernetes sends) or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => tracing::info!("SIGINT: shutting down"),
        () = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}

/// Runs the daemon until `shutdown` completes (or after one tick with
/// `options.once`). `elector: None` runs without leader election: this
/// replica always leads (one replica only).
#[allow(clippy::too_many_arguments)]
pub async fn run<C, U, S, N>(
    cluster: C,
    usage: U,
    slo: S,
    notifier: N,
    settings: AgentSettings,
    elector: Option<LeaderElector>,
    options: RunOptions,
    shutdown: impl Future<Output = ()>,
) -> Result<RunSummary, DaemonError>
where
    C: Cluster,
    U: UsageSource,
    S: SloSource,
    N: Notifier,
{
    let mut state = DaemonState::new(options.stall_after, options.query_totals.clone());
    if let Some(register) = &options.register_metrics {
        register(state.registry_mut());
    }
    let state = Arc::new(state);
    let ports = Ports {
        cluster: ObservedCluster {
            inner: Rc::new(cluster),
            state: state.clone(),
        },
        usage: ObservedUsage {
            inner: Rc::new(usage),
            state: state.clone(),
        },
        slo: ObservedSlo {
            inner: Rc::new(slo),
            state: state.clone(),
        },
        notifier: SharedNotifier(Rc::new(notifier)),
    };
    let server = if options.once {
        None
    } else {
        let listener = tokio::net::TcpListener::bind(options.metrics_address)
            .await
            .map_err(|source| DaemonError::Bind {
                address: options.metrics_address,
                source,
            })?;
        let address = listener.local_addr().unwrap_or(options.metrics_address);
        tracing::info!(%address, "serving /healthz /readyz /metrics /api/v1/recommendations");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Some((stop, handle))
    };
    let summary = run_loop(ports, settings, elector, &options, state.clone(), shutdown).await;
    if let Some((stop, handle)) = server {
        let _ = stop.send(());
        match tokio::time::timeout(Duration::from_secs(5), handle).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "the HTTP server failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server task failed"),
            Err(_) => tracing::warn!("the HTTP server did not stop within 5s"),
        }
    }
    Ok(summary)
}

struct Ports<C, U, S, N> {
    cluster: ObservedCluster<C>,
    usage: ObservedUsage<U>,
    slo: ObservedSlo<S>,
    notifier: SharedNotifier<N>,
}

type DaemonAgent<C, U, S, N> =
    Agent<ObservedCluster<C>, ObservedUsage<U>, ObservedSlo<S>, SystemClock, SharedNotifier<N>>;

/// Renews the lease every `renew_every` on its own task, publishing the
/// leadership; returns the elector when `stop` fires (to release it).
async fn keep_lease(
    mut elector: LeaderElector,
    leadership: watch::Sender<Leadership>,
    state: Arc<DaemonState>,
    mut stop: watch::Receiver<bool>,
) -> LeaderElector {
    // Step down before anyone else may take over (client-go's renewDeadline).
    let renew_deadline = elector.lease_duration().mul_f64(2.0 / 3.0);
    let mut last_renewed: Option<Instant> = None;
    loop {
        let at = Instant::now();
        let leads = match elector.try_acquire_or_renew().await {
            Ok(LeaderState::Leader) => {
                last_renewed = Some(at);
                Leadership::Leader
            }
            Ok(LeaderState::Follower { holder }) => {
                tracing::debug!(holder = holder.as_deref().unwrap_or("?"), "following");
                Leadership::Follower
            }
            Err(e) => {
                state.loop_error();
                let still = last_renewed.is_some_and(|t| at.duration_since(t) < renew_deadline);
                tracing::warn!(error = %e, still_leader = still, "could not renew the lease");
                if still {
                    Leadership::Leader
                } else {
                    Leadership::Follower
                }
            }
        };
        leadership.send_if_modified(|l| {
            let changed = *l != leads;
            *l = leads;
            changed
        });
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return elector,
            () = tokio::time::sleep(elector.renew_every()) => {}
        }
    }
}

async fn run_loop<C, U, S, N>(
    ports: Ports<C, U, S, N>,
    settings: AgentSettings,
    elector: Option<LeaderElector>,
    options: &RunOptions,
    state: Arc<DaemonState>,
    shutdown: impl Future<Output = ()>,
) -> RunSummary
where
    C: Cluster,
    U: UsageSource,
    S: SloSource,
    N: Notifier,
{
    let mut summary = RunSummary::default();
    state.set_running(true);
    let (leadership_tx, mut leadership) = watch::channel(Leadership::Unknown);
    let (stop_lease, stop_lease_rx) = watch::channel(false);
    // Without election the sender stays here, so `changed()` waits forever.
    let (lease_task, _fixed_leadership) = match elector {
        Some(elector) => (
            Some(tokio::spawn(keep_lease(
                elector,
                leadership_tx,
                state.clone(),
                stop_lease_rx,
            ))),
            None,
        ),
        None => {
            leadership_tx.send_replace(Leadership::Leader);
            (None, Some(leadership_tx))
        }
    };
    tokio::pin!(shutdown);

    let mut agent: Option<DaemonAgent<C, U, S, N>> = None;
    let mut before = AgentStats::default();
    let mut seen_verdicts = HashSet::new();
    let mut lease_lost = false;
    let mut next_tick = Instant::now();
    let mut iteration = 0u64;
    let mut stopping = false;
    let mut notices = notices::Notices::new(options.notices.clone());

    // The first tick waits until leadership is known.
    tokio::select! {
        biased;
        () = &mut shutdown => stopping = true,
        known = leadership.wait_for(|l| *l != Leadership::Unknown) => lease_lost = known.is_err(),
    }

    while !stopping {
        let leads = !lease_lost && *leadership.borrow_and_update() == Leadership::Leader;
        state.set_leadership(if leads {
            Leadership::Leader
        } else {
            Leadership::Follower
        });
        state.progress();
        if !leads && agent.take().is_some() {
            tracing::warn!("lost leadership: agent stopped");
        }

        let now = Instant::now();
        if now >= next_tick {
            next_tick = (next_tick + options.tick).max(now);
            iteration += 1;
            let span = tracing::info_span!("tick", tick = iteration, leader = leads);
            async {
                if !leads {
                    // Followers only check they can read the cluster (readiness).
                    if let Err(e) = ports.cluster.workloads().await {
                        state.loop_error();
                        tracing::warn!(error = %e, "cannot list workloads");
                    }
                    return;
                }
                if agent.is_none() {
                    match Agent::start(
                        ports.cluster.clone(),
                        ports.usage.clone(),
                        ports.slo.clone(),
                        SystemClock,
                        ports.notifier.clone(),
                        settings.clone(),
                    )
                    .await
                    {
                        Ok(started) => {
                            tracing::info!(
                                records = started.records().len(),
                                "leader: agent started, persisted rollouts resumed"
                            );
                            seen_verdicts = state::seen_verdicts(started.records());
                            before = started.stats.clone();
                            summary.leader_terms += 1;
                            agent = Some(started);
                        }
                        Err(e) => {
                            state.loop_error();
                            tracing::warn!(error = %e, "cannot start the agent; retrying next tick");
                            return;
                        }
                    }
                }
                let Some(running) = agent.as_mut() else {
                    return;
                };
                let started = std::time::Instant::now();
                let outcome = tokio::select! {
                    outcome = running.tick() => Some(outcome),
                    // Dropping a tick midway is what a crash does, which the
                    // agent recovers from; two leaders acting is worse.
                    _ = leadership.wait_for(|l| *l != Leadership::Leader), if !lease_lost => None,
                };
                state.observe_tick(started.elapsed());
                match outcome {
                    Some(Ok(())) => summary.ticks += 1,
                    Some(Err(e)) => {
                        summary.ticks += 1;
                        summary.tick_errors += 1;
                        state.loop_error();
                        tracing::warn!(error = %e, "tick failed");
                    }
                    None => {
                        tracing::warn!("lost leadership during a tick: tick abandoned");
                        return;
                    }
                }
                let after = running.stats.clone();
                state.count_stats(&before, &after);
                state.count_verdicts(running.records(), &mut seen_verdicts);
                add_stats(&mut summary.stats, &before, &after);
                before = after;
            }
            .instrument(span)
            .await;
            if leads {
                tell(
                    &mut notices,
                    &ports.notifier,
                    &state,
                    agent.as_ref(),
                    &settings,
                );
            }
            if *leadership.borrow() != Leadership::Leader
                && let Some(dropped) = agent.take()
            {
                drop(dropped);
                before = AgentStats::default();
                tracing::warn!("lost leadership: agent stopped");
            }
            if options.once {
                break;
            }
        }

        tokio::select! {
            biased;
            () = &mut shutdown => stopping = true,
            changed = leadership.changed(), if !lease_lost => {
                if changed.is_err() {
                    tracing::error!("the lease task ended: acting as follower");
                    lease_lost = true;
                }
            }
            () = tokio::time::sleep_until(next_tick) => {}
        }
    }

    tracing::info!(ticks = summary.ticks, "stopping");
    drop(agent);
    if let Some(task) = lease_task {
        let _ = stop_lease.send(true);
        match task.await {
            Ok(mut elector) => match elector.release().await {
                Ok(released) => summary.lease_released = released,
                Err(e) => tracing::warn!(error = %e, "could not release the lease"),
            },
            Err(e) => tracing::warn!(error = %e, "the lease task failed"),
        }
    }
    state.set_running(false);
    summary
}

/// Sends the trouble notifications and the digest that are due.
fn tell<C, U, S, N: Notifier>(
    notices: &mut notices::Notices,
    notifier: &SharedNotifier<N>,
    state: &DaemonState,
    agent: Option<&DaemonAgent<C, U, S, N>>,
    settings: &AgentSettings,
) {
    let unix = SystemClock.now();
    for event in notices.trouble(Instant::now(), unix, &state.take_trouble()) {
        tracing::warn!(kind = ?event.kind, "{}", event.message);
        notifier.notify(&event);
    }
    let Some(agent) = agent else {
        return;
    };
    if notices.digest_due(unix) {
        let mode = settings.guardrails.mode;
        let awaiting = agent
            .last_proposals
            .iter()
            .any(|(_, m)| *m == crate::plan::Mode::Approve);
        if mode != crate::plan::Mode::Auto || awaiting {
            notifier.digest(&crate::ports::Digest {
                at: unix,
                mode,
                recommendations: state.recommendations(),
                proposals: agent.last_proposals.clone(),
            });
        }
    }
}

/// Adds to `total` what an agent did between `before` and `after`.
fn add_stats(total: &mut AgentStats, before: &AgentStats, after: &AgentStats) {
    let d = |a: u64, b: u64| b.saturating_sub(a);
    total.applied += d(before.applied, after.applied);
    total.confirmed += d(before.confirmed, after.confirmed);
    total.reverted += d(before.reverted, after.reverted);
    total.abandoned += d(before.abandoned, after.abandoned);
    total.fast_paths += d(before.fast_paths, after.fast_paths);
    total.proposals += d(before.proposals, after.proposals);
    total.port_errors += d(before.port_errors, after.port_errors);
    let seen = before
        .time_to_revert_s
        .len()
        .min(after.time_to_revert_s.len());
    total
        .time_to_revert_s
        .extend_from_slice(&after.time_to_revert_s[seen..]);
}

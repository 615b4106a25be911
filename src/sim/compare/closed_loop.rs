//! The evaluation window replayed with each recommender deciding as it
//! would in production, and the OOM kills that follow:
//!
//! - **KRR** runs once a day (a report applied by a nightly job); nothing
//!   reacts between runs.
//! - **VPA**'s recommender refreshes its estimate every hour and at once
//!   after an OOM kill; its updater evicts by its own rules
//!   ([`vpa::updater_evicts`]), and the new pod gets the target.
//! - **tailor**'s engine re-recommends daily and, on an OOM kill, at once
//!   (its fast path), and changes only what clears its significance
//!   threshold. The real agent, with its guardrails, step limits and SLO
//!   guard, runs in the simulator ([`agent`]).
//!
//! Changes apply at the start of the next step. A step whose working set
//! is over the memory limit is an OOM kill of that replica; kills less
//! than an hour apart are one episode (as the simulator counts them). The
//! usage itself does not react: a killed container is assumed to come back
//! to the same working set, which is what the traces show.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::usage::WorkloadUsage;
use super::{History, LoopSummary, OomKill, Recommender, vpa};
use crate::config::{Policy, PricingConfig};
use crate::domain::Resources;
use crate::recommend::policy::monthly_cost;
use crate::sim::cluster::World;
use crate::sim::models::{
    ModelSpec, ResponseModel, Trace, TraceReplay, WorkloadDefaults, WorkloadModel,
};
use crate::sim::run::{EPOCH, SimError, SimReport, run_world};
use crate::sim::scenario::{AgentSection, Expectations, FleetEntry, NodeShape, Scenario};
use crate::units::{Bytes, MilliCores};

const HOUR_S: i64 = 3600;
const DAY_S: i64 = 86_400;
/// OOM kills closer than this are one episode (`sim::cluster`).
pub const EPISODE_GAP_S: i64 = HOUR_S;

/// One workload's closed loop.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoopOutcome {
    pub changes: u64,
    pub oom_kills: u64,
    pub oom_episodes: u64,
    /// Cost averaged over the window, and with the last resources.
    pub mean_usd_per_month: f64,
    pub final_usd_per_month: f64,
}

/// Replays `eval` of `usage` (trained on the steps before `train_end`)
/// with `recommender` in charge.
pub fn run(
    usage: &WorkloadUsage,
    train_end: usize,
    eval: Range<usize>,
    recommender: &Recommender,
    pricing: &PricingConfig,
) -> LoopOutcome {
    let replicas = usage.replicas.len() as f64;
    let mut timeline: Vec<(usize, Resources)> = vec![(0, usage.provisioned)];
    let mut ooms: Vec<OomKill> = Vec::new();
    let mut out = LoopOutcome::default();
    let mut last_kill: Option<i64> = None;
    let mut pending_oom = false;
    // Containers (re)start with the usage, at each change and each kill.
    let mut pod_start = usage.start;
    let mut container_start = usage.start;
    let mut oom_since_start: Option<i64> = None;
    let mut next_daily = usage.t(train_end.max(1) - 1);
    let mut next_estimate = next_daily;
    let mut estimate: Option<vpa::Estimate> = None;
    let mut cost_sum = 0.0;
    let mut steps = 0u64;
    for i in eval.clone() {
        let begin = usage.t(i) - usage.step_s;
        let h = History {
            usage,
            from: 0,
            to: i.max(train_end),
            timeline: &timeline,
            ooms: &ooms,
        };
        let current = h.current();
        let proposal = match recommender {
            Recommender::Krr => (begin >= next_daily).then(|| {
                next_daily += DAY_S;
                super::krr::recommend(&h)
            }),
            Recommender::Tailor(engine) => (begin >= next_daily || pending_oom).then(|| {
                if begin >= next_daily {
                    next_daily += DAY_S;
                }
                engine.recommend(&h)
            }),
            Recommender::Vpa => {
                if begin >= next_estimate || pending_oom {
                    if begin >= next_estimate {
                        next_estimate += HOUR_S;
                    }
                    estimate = vpa::estimate(&h);
                }
                estimate
                    .filter(|e| {
                        vpa::updater_evicts(e, &current, begin - pod_start, oom_since_start)
                    })
                    .map(|e| vpa::resources(&e, &usage.provisioned))
            }
        };
        pending_oom = false;
        if let Some(next) = proposal.filter(|p| *p != current) {
            timeline.push((i, next));
            out.changes += 1;
            pod_start = begin;
            container_start = begin;
            oom_since_start = None;
        }

        let running = timeline.last().map_or(usage.provisioned, |(_, r)| *r);
        let limit = running.memory_limit.map(Bytes::as_f64);
        let t = usage.t(i);
        for (replica, r) in usage.replicas.iter().enumerate() {
            let memory = r.memory_bytes.get(i).map_or(f64::NAN, |&m| f64::from(m));
            if limit.is_some_and(|l| memory > l) {
                out.oom_kills += 1;
                if last_kill.is_none_or(|k| t - k > EPISODE_GAP_S) {
                    out.oom_episodes += 1;
                }
                last_kill = Some(t);
                pending_oom = true;
                oom_since_start = Some(t - container_start);
                container_start = t;
                ooms.push(OomKill {
                    t,
                    replica,
                    memory_limit: running.memory_limit.unwrap_or_default(),
                    memory_request: running.memory_request,
                });
            }
        }
        cost_sum += monthly_cost(&running, replicas, pricing);
        steps += 1;
    }
    let last = timeline.last().map_or(usage.provisioned, |(_, r)| *r);
    out.final_usd_per_month = monthly_cost(&last, replicas, pricing);
    out.mean_usd_per_month = if steps > 0 {
        cost_sum / steps as f64
    } else {
        out.final_usd_per_month
    };
    out
}

/// The real agent's closed loop, per workload.
#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentOutcome {
    pub report: SimReport,
    pub workloads: Vec<AgentWorkload>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct AgentWorkload {
    pub name: String,
    pub oom_episodes: u64,
    /// Changes the agent applied (fast paths included).
    pub changes: u64,
    pub final_usd_per_month: f64,
}

impl AgentOutcome {
    /// The agent's loop in the same terms as the other recommenders'.
    pub fn summary(&self, days: f64) -> LoopSummary {
        let outcomes: Vec<LoopOutcome> = self
            .workloads
            .iter()
            .map(|w| LoopOutcome {
                changes: w.changes,
                oom_episodes: w.oom_episodes,
                final_usd_per_month: w.final_usd_per_month,
                // The simulator prices the end state only.
                mean_usd_per_month: f64::NAN,
                ..LoopOutcome::default()
            })
            .collect();
        let mut s = LoopSummary::from_outcomes("tailor agent (simulator)", &outcomes, days);
        s.mean_usd_per_month = f64::NAN;
        s
    }
}

/// Runs `scenario` with the real agent and reads each workload's outcome.
pub fn agent(
    scenario: &Scenario,
    models: &BTreeMap<String, ModelSpec>,
    seed: u64,
) -> Result<AgentOutcome, SimError> {
    let (report, world) = run_world(scenario, models, seed, &|_, _| {})?;
    Ok(AgentOutcome {
        workloads: per_workload(&world, &scenario.pricing),
        report,
    })
}

fn per_workload(world: &World, pricing: &PricingConfig) -> Vec<AgentWorkload> {
    world
        .workloads
        .iter()
        .map(|w| AgentWorkload {
            name: w.workload.name.clone(),
            oom_episodes: w.outcome.oom_episodes,
            changes: world
                .rollouts
                .values()
                .filter(|r| r.change.workload == w.workload && r.applied_at.is_some())
                .count() as u64,
            final_usd_per_month: monthly_cost(&w.spec, f64::from(w.replicas), pricing),
        })
        .collect()
}

/// How a replayed VM's latency and errors respond to its resources:
/// `models/trace-replay.yaml`'s response model.
pub fn trace_response() -> ResponseModel {
    ResponseModel {
        base_latency_s: 0.08,
        tail_ratio: 2.0,
        base_error_ratio: 0.001,
        latency_sensitivity: 0.8,
        timeout_s: 2.0,
        restart_s: 30.0,
    }
}

/// A scenario replaying every trace (one single-replica workload each, at
/// its provisioned size) with the agent in auto mode re-recommending
/// daily: `history` of training, then `duration` with the agent. Nodes are
/// as large as the largest VM, so no recommendation is capped below a
/// VM's own usage. Single replicas are allowed: every VM is one.
pub fn trace_scenario(
    traces: &[(String, Arc<Trace>)],
    history: Duration,
    duration: Duration,
    policy: &Policy,
    pricing: &PricingConfig,
) -> (Scenario, BTreeMap<String, ModelSpec>) {
    let mut models = BTreeMap::new();
    let mut fleet = Vec::new();
    let (mut node_cpu, mut node_memory) = (MilliCores(8000), Bytes::gib(32));
    for (name, trace) in traces {
        let provisioned = super::usage::trace_provisioning(trace);
        node_cpu = node_cpu.max(provisioned.cpu_request.unwrap_or_default());
        node_memory = node_memory.max(provisioned.memory_limit.unwrap_or_default());
        models.insert(
            name.clone(),
            ModelSpec {
                name: name.clone(),
                description: format!("replay of {}", trace.source.display()),
                workload: WorkloadModel::Trace(TraceReplay {
                    trace: Arc::clone(trace),
                    start: EPOCH,
                    requests_per_s_per_core: 100.0,
                    burst_ratio: 1.5,
                    burst_fraction: 0.1,
                }),
                response: trace_response(),
                defaults: WorkloadDefaults {
                    replicas: 1,
                    resources: provisioned,
                },
            },
        );
        fleet.push(FleetEntry {
            model: name.clone(),
            count: 1,
            namespace: "traces".into(),
            name: Some(name.clone()),
            replicas: None,
            resources: None,
            hpa: None,
            mode: None,
            paused: false,
            gitops: false,
        });
    }
    let mut agent = AgentSection::default();
    agent.guardrails.mode = crate::plan::Mode::Auto;
    agent.guardrails.allow_single_replica = true;
    agent.recommend_interval_minutes = Some(24 * 60);
    let scenario = Scenario {
        name: "traces-closed-loop".into(),
        description: "every trace VM with the agent in auto mode, re-recommending daily".into(),
        seed: 1,
        history,
        duration,
        models: "".into(),
        agent,
        policy: policy.clone(),
        pricing: pricing.clone(),
        node_hour_usd: 0.384,
        node: NodeShape {
            cpu: node_cpu,
            memory: node_memory,
        },
        fleet,
        faults: Vec::new(),
        expect: Expectations::default(),
    };
    (scenario, models)
}

#[cfg(test)]
mod tests {
    use super::super::tests::flat_usage;
    use super::*;

    /// 28 days at 1 GiB, then a rise to 1.5 GiB on day 20 that stays.
    fn growing() -> WorkloadUsage {
        let mut u = flat_usage(28, 0.3, 1024.0);
        let from = u.index_after(20 * DAY_S);
        for m in &mut u.replicas[0].memory_bytes[from..] {
            *m = 1536.0 * Bytes::MIB as f32;
        }
        u
    }

    /// `recommender` in charge of `u` for the 14 days after the first 14.
    fn replay(u: &WorkloadUsage, recommender: &Recommender) -> LoopOutcome {
        let train = u.index_after(14 * DAY_S);
        run(
            u,
            train,
            train..u.len(),
            recommender,
            &PricingConfig::default(),
        )
    }

    #[test]
    fn krr_runs_daily_and_does_not_react_to_kills_between_runs() {
        let u = growing();
        let o = replay(&u, &Recommender::Krr);
        // Day 14: 1 GiB × 1.15 fits until day 20; then one day of kills
        // until the next nightly run sees the new peak.
        assert_eq!(o.oom_episodes, 1);
        let steps_per_day = (DAY_S / u.step_s) as u64;
        assert!(o.oom_kills > steps_per_day / 2, "{}", o.oom_kills);
        assert!(o.changes >= 2, "{}", o.changes);
    }

    #[test]
    fn tailor_bumps_at_once_after_a_kill() {
        let o = replay(&growing(), &Recommender::Tailor(Box::default()));
        // The limit (peak × 1.35 = 1.35 GiB) is crossed on day 20, when
        // memory jumps to 1.5 GiB; the fast path raises it past the new
        // peak within a step or two.
        assert!(o.oom_kills <= 3, "{}", o.oom_kills);
        assert_eq!(o.oom_episodes, 1, "kills a step apart are one episode");
        assert!(o.final_usd_per_month < o.mean_usd_per_month * 1.5);
    }

    #[test]
    fn vpa_evicts_on_its_own_schedule() {
        let o = replay(&growing(), &Recommender::Vpa);
        // First eviction at once (the 2-core request is far above the
        // upper bound), then the OOM path; never one change per step.
        assert!(o.changes >= 1 && o.changes < 40, "{}", o.changes);
        assert!(o.oom_episodes <= 2, "{}", o.oom_episodes);
    }

    #[test]
    fn no_change_no_kill_when_provisioned_generously() {
        let o = replay(
            &flat_usage(28, 0.3, 1024.0),
            &Recommender::Tailor(Box::default()),
        );
        assert_eq!(o.oom_kills, 0);
        // One decrease on day 14; flat usage gives nothing more to change.
        assert_eq!(o.changes, 1);
    }
}

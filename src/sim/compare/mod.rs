//! Side-by-side quality benchmark: tailor against the recommenders users
//! would otherwise pick, on the same usage.
//!
//! Every recommender is trained on the first part of each workload's usage
//! (14 days by default) and scored on the part that follows (the next 14
//! days), on the workload models and on real VM traces:
//!
//! - **as provisioned**: no change, what teams guessed;
//! - **VPA** ([`vpa`]) and **KRR** ([`krr`]), rebuilt from their documented
//!   behaviour with every constant cited;
//! - **tailor** ([`tailor`]), the real engine with its defaults;
//! - the **oracle** ([`score::oracle`]): requests at the p95 and the memory
//!   limit at the peak of the evaluation window itself, the bound no
//!   recommender can beat without OOM kills.
//!
//! [`score`] scores fixed resources (cost, memory slack, would-be OOM kills,
//! CPU over request and limit); [`closed_loop`] replays the evaluation
//! window with each recommender re-deciding as it would in production (and
//! tailor's real agent in the simulator); [`render`] prints the tables and
//! CSV. `tailor simulate --compare vpa,krr,tailor` runs it
//! (`docs/benchmarks.md`). Nothing here does I/O except reading traces.

pub mod closed_loop;
pub mod krr;
pub mod render;
pub mod score;
pub mod suite;
pub mod tailor;
pub mod usage;
pub mod vpa;

use std::ops::Range;

use serde::Serialize;

use crate::config::{Policy, PricingConfig};
use crate::domain::Resources;
use crate::units::Bytes;

use self::closed_loop::{AgentOutcome, LoopOutcome};
use self::score::Score;
use self::tailor::Engine;
use self::usage::WorkloadUsage;

const DAY_S: i64 = 86_400;

/// An OOM kill a recommender may learn from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OomKill {
    /// End of the step it happened in.
    pub t: i64,
    pub replica: usize,
    /// The limit it hit, and the request the container had.
    pub memory_limit: Bytes,
    pub memory_request: Option<Bytes>,
}

/// What a recommender may look at: the steps `[from, to)` of one workload,
/// the resources it ran with, and the OOM kills so far.
#[derive(Clone, Copy, Debug)]
pub struct History<'a> {
    pub usage: &'a WorkloadUsage,
    pub from: usize,
    pub to: usize,
    /// `(step, resources)`: from that step on, the pods ran with those
    /// resources. Sorted; the first entry is step 0.
    pub timeline: &'a [(usize, Resources)],
    pub ooms: &'a [OomKill],
}

impl History<'_> {
    /// The instant the recommender runs at: the end of the last step seen.
    pub fn now(&self) -> i64 {
        self.usage.start + self.to as i64 * self.usage.step_s
    }

    /// The resources in effect during step `i`.
    pub fn resources_at(&self, i: usize) -> Resources {
        let k = self.timeline.partition_point(|(from, _)| *from <= i);
        self.timeline
            .get(k.saturating_sub(1))
            .map_or(self.usage.provisioned, |(_, r)| *r)
    }

    /// The resources running now.
    pub fn current(&self) -> Resources {
        self.timeline
            .last()
            .map_or(self.usage.provisioned, |(_, r)| *r)
    }
}

/// A recommender under comparison.
#[derive(Clone, Debug, PartialEq)]
pub enum Recommender {
    Vpa,
    Krr,
    Tailor(Box<Engine>),
}

impl Recommender {
    /// Parses `vpa`, `krr` or `tailor` (with the given engine).
    pub fn parse(name: &str, engine: &Engine) -> Result<Recommender, String> {
        match name.trim() {
            "vpa" => Ok(Recommender::Vpa),
            "krr" => Ok(Recommender::Krr),
            "tailor" => Ok(Recommender::Tailor(Box::new(engine.clone()))),
            other => Err(format!(
                "unknown recommender {other:?}; write a comma-separated list of vpa, krr, tailor"
            )),
        }
    }

    pub fn name(&self) -> &'static str {
        match self {
            Recommender::Vpa => "vpa",
            Recommender::Krr => "krr",
            Recommender::Tailor(_) => "tailor",
        }
    }

    /// One-shot: what it recommends at the end of `h`.
    pub fn recommend(&self, h: &History<'_>) -> Resources {
        match self {
            Recommender::Vpa => vpa::recommend(h),
            Recommender::Krr => krr::recommend(h),
            Recommender::Tailor(engine) => engine.recommend(h),
        }
    }
}

/// Runs the real agent with a given engine's policy (for the sweep).
pub type AgentRunner<'a> = &'a dyn Fn(&Engine) -> Option<AgentOutcome>;

/// How the comparison runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub recommenders: Vec<Recommender>,
    /// Training, then evaluation, from the start of every workload's usage.
    pub train_s: i64,
    pub eval_s: i64,
    pub pricing: PricingConfig,
    /// tailor's engine settings to sweep for the trade-off curve, labelled.
    pub sweep: Vec<(String, Engine)>,
}

impl Options {
    /// 14 days of training, 14 of evaluation, `recommenders`, default prices.
    pub fn new(recommenders: Vec<Recommender>) -> Options {
        Options {
            recommenders,
            train_s: 14 * DAY_S,
            eval_s: 14 * DAY_S,
            pricing: PricingConfig::default(),
            sweep: Vec::new(),
        }
    }

    pub(crate) fn steps(&self, usage: &WorkloadUsage) -> (Range<usize>, Range<usize>) {
        let train_end = usage.index_after(self.train_s).min(usage.len());
        let eval_end = usage
            .index_after(self.train_s + self.eval_s)
            .min(usage.len());
        (0..train_end, train_end..eval_end)
    }
}

/// tailor's main memory margins, from the defaults to generous limits: the
/// points of the trade-off curve (label, engine).
pub fn margin_sweep(base: &Engine) -> Vec<(String, Engine)> {
    let d = &base.policy.memory;
    let bump = d.oom_bump_ratio;
    let mut points = Vec::new();
    for (percentile, margin, limit_margin, oom_bump) in [
        (d.percentile, d.margin, d.limit_margin, bump),
        (d.percentile, d.margin, 0.2, bump),
        (d.percentile, d.margin, 0.5, bump),
        (d.percentile, d.margin, 0.75, bump),
        (d.percentile, d.margin, 1.0, bump),
        (d.percentile, d.margin, 1.5, bump),
        (d.percentile, d.margin, d.limit_margin, 1.5),
        (d.percentile, d.margin, 0.5, 1.5),
        (100.0, 0.3, 0.5, bump),
        (100.0, 0.5, 1.0, bump),
    ] {
        let mut engine = base.clone();
        engine.policy.memory.percentile = percentile;
        engine.policy.memory.margin = margin;
        engine.policy.memory.limit_margin = limit_margin;
        engine.policy.memory.oom_bump_ratio = oom_bump;
        points.push((
            format!(
                "mem p{percentile:.0} +{:.0}%, limit +{:.0}%, OOM ×{oom_bump}",
                margin * 100.0,
                limit_margin * 100.0
            ),
            engine,
        ));
    }
    points
}

/// One workload's one-shot result under one policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WorkloadRow {
    pub policy: String,
    pub workload: String,
    pub source: String,
    pub resources: ResourcesRow,
    pub score: Score,
}

/// Resources as plain numbers for CSV (empty = not set).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ResourcesRow {
    pub cpu_request_millicores: Option<u64>,
    pub cpu_limit_millicores: Option<u64>,
    pub memory_request_bytes: Option<u64>,
    pub memory_limit_bytes: Option<u64>,
}

impl From<&Resources> for ResourcesRow {
    fn from(r: &Resources) -> Self {
        ResourcesRow {
            cpu_request_millicores: r.cpu_request.map(|m| m.0),
            cpu_limit_millicores: r.cpu_limit.map(|m| m.0),
            memory_request_bytes: r.memory_request.map(|b| b.0),
            memory_limit_bytes: r.memory_limit.map(|b| b.0),
        }
    }
}

/// A policy's one-shot result over the whole fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub policy: String,
    pub workloads: usize,
    pub cpu_requested_cores: f64,
    pub memory_requested_gib: f64,
    pub usd_per_month: f64,
    /// Cost over the oracle's.
    pub cost_vs_oracle: f64,
    /// Σ (request − p95 usage) / Σ request, memory, all replicas.
    pub memory_slack: f64,
    /// Σ memory limits / Σ memory requests (overcommit a node may meet).
    pub memory_limit_over_request: f64,
    pub oom_samples: u64,
    /// Workloads with at least one would-be OOM kill.
    pub oom_workloads: usize,
    pub cpu_over_limit_samples: u64,
    /// Share of step-replicas whose CPU is over the request.
    pub cpu_over_request_share: f64,
}

/// Summaries of `rows` (one policy each), costs against `oracle_usd`.
pub fn summarize(policy: &str, rows: &[&WorkloadRow], oracle_usd: f64) -> Summary {
    let mut s = Summary {
        policy: policy.to_string(),
        workloads: rows.len(),
        ..Summary::default()
    };
    let (mut request, mut idle, mut limits, mut samples, mut over_request) =
        (0.0, 0.0, 0.0, 0u64, 0u64);
    for row in rows {
        let sc = &row.score;
        s.cpu_requested_cores += sc.cpu_requested_cores;
        s.memory_requested_gib += sc.memory_requested_bytes / Bytes::GIB as f64;
        s.usd_per_month += sc.usd_per_month;
        s.oom_samples += sc.oom_samples;
        s.oom_workloads += usize::from(sc.oom_samples > 0);
        s.cpu_over_limit_samples += sc.cpu_over_limit_samples;
        samples += sc.samples;
        over_request += sc.cpu_over_request_samples;
        let replicas = f64::from(sc.replicas);
        request += sc.memory_requested_bytes;
        idle += sc.memory_requested_bytes - sc.memory_p95_bytes * replicas;
        limits += row
            .resources
            .memory_limit_bytes
            .map_or(sc.memory_requested_bytes, |l| l as f64 * replicas);
    }
    s.memory_slack = if request > 0.0 { idle / request } else { 0.0 };
    s.memory_limit_over_request = if request > 0.0 { limits / request } else { 0.0 };
    s.cpu_over_request_share = if samples > 0 {
        over_request as f64 / samples as f64
    } else {
        0.0
    };
    s.cost_vs_oracle = if oracle_usd > 0.0 {
        s.usd_per_month / oracle_usd
    } else {
        0.0
    };
    s
}

/// A recommender's closed-loop result over the fleet.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LoopSummary {
    pub policy: String,
    pub workloads: usize,
    pub changes: u64,
    pub changes_per_workload_day: f64,
    pub oom_episodes: u64,
    /// Workloads with at least one, and with more than one, OOM episode.
    pub workloads_with_oom: usize,
    pub workloads_with_repeated_oom: usize,
    pub max_episodes_per_workload: u64,
    /// Cost averaged over the evaluation window, and at its end.
    pub mean_usd_per_month: f64,
    pub final_usd_per_month: f64,
}

impl LoopSummary {
    pub fn from_outcomes(policy: &str, outcomes: &[LoopOutcome], days: f64) -> LoopSummary {
        let mut s = LoopSummary {
            policy: policy.to_string(),
            workloads: outcomes.len(),
            ..LoopSummary::default()
        };
        for o in outcomes {
            s.changes += o.changes;
            s.oom_episodes += o.oom_episodes;
            s.workloads_with_oom += usize::from(o.oom_episodes > 0);
            s.workloads_with_repeated_oom += usize::from(o.oom_episodes > 1);
            s.max_episodes_per_workload = s.max_episodes_per_workload.max(o.oom_episodes);
            s.mean_usd_per_month += o.mean_usd_per_month;
            s.final_usd_per_month += o.final_usd_per_month;
        }
        s.changes_per_workload_day = if outcomes.is_empty() || days <= 0.0 {
            0.0
        } else {
            s.changes as f64 / (outcomes.len() as f64 * days)
        };
        s
    }
}

/// One point of the trade-off curve.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct TradeoffPoint {
    pub setting: String,
    pub usd_per_month: f64,
    pub cost_vs_oracle: f64,
    pub memory_limit_over_request: f64,
    pub oom_workloads: usize,
    pub loop_workloads_with_repeated_oom: usize,
    pub loop_oom_episodes: u64,
    /// The real agent in the simulator with this setting, when it ran.
    pub agent_workloads_with_repeated_oom: Option<usize>,
    pub agent_oom_episodes: Option<u64>,
    pub agent_final_usd_per_month: Option<f64>,
}

/// One workload's closed loop under one policy.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoopRow {
    pub policy: String,
    pub workload: String,
    pub changes: u64,
    pub oom_kills: u64,
    pub oom_episodes: u64,
    pub mean_usd_per_month: f64,
    pub final_usd_per_month: f64,
}

/// Everything one comparison measured.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Comparison {
    pub dataset: String,
    pub workloads: usize,
    /// Inputs left out, with the reason.
    pub skipped: Vec<String>,
    pub train_days: f64,
    pub eval_days: f64,
    pub one_shot: Vec<Summary>,
    pub per_workload: Vec<WorkloadRow>,
    pub loops: Vec<LoopSummary>,
    pub loop_workloads: Vec<LoopRow>,
    pub tradeoff: Vec<TradeoffPoint>,
}

/// One-shot and closed-loop comparison of `options.recommenders` on
/// `fleet`; workloads with no data in either window are skipped. `agent`,
/// when given, runs the real agent for each point of the sweep.
pub fn compare(
    dataset: &str,
    fleet: &[WorkloadUsage],
    options: &Options,
    agent: Option<AgentRunner<'_>>,
) -> Comparison {
    let mut c = Comparison {
        dataset: dataset.to_string(),
        train_days: options.train_s as f64 / DAY_S as f64,
        eval_days: options.eval_s as f64 / DAY_S as f64,
        ..Comparison::default()
    };
    let mut usable = Vec::new();
    for w in fleet {
        let (train, eval) = options.steps(w);
        if w.cpu_values(train.clone()).is_empty() || w.cpu_values(eval.clone()).is_empty() {
            c.skipped.push(format!(
                "{}: no samples in the training or the evaluation window",
                w.name
            ));
            continue;
        }
        usable.push((w, train, eval));
    }
    c.workloads = usable.len();

    let mut policies: Vec<(String, Option<&Recommender>)> = vec![("as provisioned".into(), None)];
    policies.extend(
        options
            .recommenders
            .iter()
            .map(|r| (r.name().to_string(), Some(r))),
    );
    for (w, train, eval) in &usable {
        for (name, recommender) in &policies {
            c.per_workload.push(one_shot(
                w,
                train,
                eval,
                name,
                *recommender,
                &options.pricing,
            ));
        }
        let oracle = score::oracle(w, eval.clone());
        c.per_workload.push(WorkloadRow {
            policy: "oracle".into(),
            workload: w.name.clone(),
            source: w.source.clone(),
            resources: ResourcesRow::from(&oracle),
            score: score::score(w, eval.clone(), &oracle, &options.pricing),
        });
    }
    let oracle_usd: f64 = c
        .per_workload
        .iter()
        .filter(|r| r.policy == "oracle")
        .map(|r| r.score.usd_per_month)
        .sum();
    for name in policies.iter().map(|(n, _)| n.as_str()).chain(["oracle"]) {
        let rows: Vec<&WorkloadRow> = c.per_workload.iter().filter(|r| r.policy == name).collect();
        c.one_shot.push(summarize(name, &rows, oracle_usd));
    }

    for r in &options.recommenders {
        let outcomes: Vec<LoopOutcome> = usable
            .iter()
            .map(|(w, train, eval)| {
                closed_loop::run(w, train.end, eval.clone(), r, &options.pricing)
            })
            .collect();
        for ((w, _, _), o) in usable.iter().zip(&outcomes) {
            c.loop_workloads.push(LoopRow {
                policy: r.name().to_string(),
                workload: w.name.clone(),
                changes: o.changes,
                oom_kills: o.oom_kills,
                oom_episodes: o.oom_episodes,
                mean_usd_per_month: o.mean_usd_per_month,
                final_usd_per_month: o.final_usd_per_month,
            });
        }
        c.loops
            .push(LoopSummary::from_outcomes(r.name(), &outcomes, c.eval_days));
    }

    for (label, engine) in &options.sweep {
        let recommender = Recommender::Tailor(Box::new(engine.clone()));
        let rows: Vec<WorkloadRow> = usable
            .iter()
            .map(|(w, train, eval)| {
                one_shot(w, train, eval, label, Some(&recommender), &options.pricing)
            })
            .collect();
        let refs: Vec<&WorkloadRow> = rows.iter().collect();
        let s = summarize(label, &refs, oracle_usd);
        let outcomes: Vec<LoopOutcome> = usable
            .iter()
            .map(|(w, train, eval)| {
                closed_loop::run(w, train.end, eval.clone(), &recommender, &options.pricing)
            })
            .collect();
        let l = LoopSummary::from_outcomes(label, &outcomes, c.eval_days);
        let a = agent
            .and_then(|run| run(engine))
            .map(|a| a.summary(c.eval_days));
        c.tradeoff.push(TradeoffPoint {
            setting: label.clone(),
            usd_per_month: s.usd_per_month,
            cost_vs_oracle: s.cost_vs_oracle,
            memory_limit_over_request: s.memory_limit_over_request,
            oom_workloads: s.oom_workloads,
            loop_workloads_with_repeated_oom: l.workloads_with_repeated_oom,
            loop_oom_episodes: l.oom_episodes,
            agent_workloads_with_repeated_oom: a.as_ref().map(|a| a.workloads_with_repeated_oom),
            agent_oom_episodes: a.as_ref().map(|a| a.oom_episodes),
            agent_final_usd_per_month: a.as_ref().map(|a| a.final_usd_per_month),
        });
    }
    c
}

/// `recommender` (or nothing: as provisioned) trained on `train`, scored on `eval`.
fn one_shot(
    w: &WorkloadUsage,
    train: &Range<usize>,
    eval: &Range<usize>,
    policy: &str,
    recommender: Option<&Recommender>,
    pricing: &PricingConfig,
) -> WorkloadRow {
    let timeline = [(0, w.provisioned)];
    let h = History {
        usage: w,
        from: 0,
        to: train.end,
        timeline: &timeline,
        ooms: &[],
    };
    let resources = recommender.map_or(w.provisioned, |r| r.recommend(&h));
    WorkloadRow {
        policy: policy.to_string(),
        workload: w.name.clone(),
        source: w.source.clone(),
        resources: ResourcesRow::from(&resources),
        score: score::score(w, eval.clone(), &resources, pricing),
    }
}

/// Adds the real agent's closed loop (from the simulator) to `c`.
pub fn add_agent(c: &mut Comparison, agent: &AgentOutcome) {
    let summary = agent.summary(c.eval_days);
    for w in &agent.workloads {
        c.loop_workloads.push(LoopRow {
            policy: summary.policy.clone(),
            workload: w.name.clone(),
            changes: w.changes,
            oom_kills: 0,
            oom_episodes: w.oom_episodes,
            mean_usd_per_month: f64::NAN,
            final_usd_per_month: w.final_usd_per_month,
        });
    }
    c.loops.push(summary);
}

/// The default tailor engine for a comparison: `policy` and `pricing` from
/// the scenario, no node cap.
pub fn engine(policy: &Policy, pricing: &PricingConfig) -> Engine {
    Engine {
        policy: policy.clone(),
        pricing: pricing.clone(),
        node: None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::usage::{ReplicaUsage, STEP_S};
    use super::*;
    use crate::units::MilliCores;

    /// `days` of flat usage at 5-minute steps, one replica, provisioned at
    /// 2 cores and 4 GiB (request = limit).
    pub(crate) fn flat_usage(days: i64, cores: f32, memory_mib: f32) -> WorkloadUsage {
        let n = (days * DAY_S / STEP_S) as usize;
        WorkloadUsage {
            name: "w".into(),
            source: "test".into(),
            start: 1_767_571_200,
            step_s: STEP_S,
            replicas: vec![ReplicaUsage {
                cpu_cores: vec![cores; n],
                memory_bytes: vec![memory_mib * Bytes::MIB as f32; n],
            }],
            provisioned: Resources {
                cpu_request: Some(MilliCores(2000)),
                cpu_limit: None,
                memory_request: Some(Bytes::gib(4)),
                memory_limit: Some(Bytes::gib(4)),
            },
        }
    }

    /// The first `days` of `u` as history, at its provisioned resources.
    pub(crate) fn history<'a>(u: &'a WorkloadUsage, days: i64, ooms: &'a [OomKill]) -> History<'a> {
        History {
            usage: u,
            from: 0,
            to: u.index_after(days * DAY_S).min(u.len()),
            timeline: &[],
            ooms,
        }
    }

    #[test]
    fn history_reads_the_timeline() {
        let u = flat_usage(2, 0.1, 100.0);
        let a = Resources {
            cpu_request: Some(MilliCores(1)),
            ..u.provisioned
        };
        let b = Resources {
            cpu_request: Some(MilliCores(2)),
            ..u.provisioned
        };
        let timeline = [(0, a), (10, b)];
        let h = History {
            timeline: &timeline,
            ..history(&u, 2, &[])
        };
        assert_eq!(h.resources_at(9), a);
        assert_eq!(h.resources_at(10), b);
        assert_eq!(h.current(), b);
        assert_eq!(h.now(), u.start + 2 * DAY_S);
        // An empty timeline is the provisioned resources.
        assert_eq!(history(&u, 2, &[]).current(), u.provisioned);
    }

    #[test]
    fn compare_scores_every_policy_and_the_oracle() {
        // Memory grows past anything seen in training: KRR's max + 15 %
        // OOM-kills it, tailor's limit (peak × 1.35) does too, the oracle not.
        let mut u = flat_usage(28, 0.3, 1000.0);
        let n = u.len();
        for (i, m) in u.replicas[0].memory_bytes.iter_mut().enumerate() {
            if i > n / 2 && i % 500 == 0 {
                *m = 1400.0 * Bytes::MIB as f32;
            }
        }
        let engine = Engine::default();
        let options = Options::new(vec![
            Recommender::Vpa,
            Recommender::Krr,
            Recommender::Tailor(Box::new(engine)),
        ]);
        let c = compare("test", &[u], &options, None);
        let names: Vec<&str> = c.one_shot.iter().map(|s| s.policy.as_str()).collect();
        assert_eq!(names, ["as provisioned", "vpa", "krr", "tailor", "oracle"]);
        let by = |p: &str| c.one_shot.iter().find(|s| s.policy == p).expect(p);
        assert_eq!(by("as provisioned").oom_workloads, 0);
        assert_eq!(by("krr").oom_workloads, 1);
        assert_eq!(by("oracle").oom_workloads, 0);
        assert!((by("oracle").cost_vs_oracle - 1.0).abs() < 1e-9);
        assert!(by("krr").usd_per_month < by("as provisioned").usd_per_month);
        assert_eq!(c.loops.len(), 3);
        assert_eq!(c.per_workload.len(), 5);
    }
}

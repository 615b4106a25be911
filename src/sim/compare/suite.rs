//! The two datasets the comparison runs on: a scenario's fleet of workload
//! models, and a folder of real VM traces. Each gets the one-shot scores,
//! the closed loops, tailor's margin sweep, and the real agent in the
//! simulator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::closed_loop::{self, AgentOutcome};
use super::tailor::Engine;
use super::usage::{self, WorkloadUsage};
use super::{Comparison, Options, Recommender, add_agent, compare, margin_sweep};
use crate::config::{Policy, PricingConfig};
use crate::recommend::policy::NodeCapacity;
use crate::sim::models::{ModelSpec, Trace, load_trace};
use crate::sim::run::{SimError, build_world};
use crate::sim::scenario::Scenario;

/// Why a comparison could not run.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}")]
    Recommenders(String),
    #[error("cannot read the traces in {}: {source}; fix: point --traces at a folder of vm-NNN.csv.gz files", .dir.display())]
    Traces {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("no usable trace in {}; fix: point --traces at a folder of vm-NNN.csv.gz files", .0.display())]
    NoTraces(PathBuf),
    #[error(transparent)]
    Sim(#[from] SimError),
}

/// `vpa,krr,tailor` → recommenders, tailor with `engine`.
pub fn parse_recommenders(list: &str, engine: &Engine) -> Result<Vec<Recommender>, CompareError> {
    let mut out: Vec<Recommender> = Vec::new();
    for name in list.split(',').filter(|n| !n.trim().is_empty()) {
        let r = Recommender::parse(name, engine).map_err(CompareError::Recommenders)?;
        if !out.iter().any(|o| o.name() == r.name()) {
            out.push(r);
        }
    }
    if out.is_empty() {
        return Err(CompareError::Recommenders(
            "--compare names no recommender; write e.g. --compare vpa,krr,tailor".into(),
        ));
    }
    Ok(out)
}

fn options(
    list: &str,
    engine: &Engine,
    history: Duration,
    duration: Duration,
    pricing: &PricingConfig,
) -> Result<Options, CompareError> {
    let recommenders = parse_recommenders(list, engine)?;
    let tailor = recommenders
        .iter()
        .any(|r| matches!(r, Recommender::Tailor(_)));
    let mut o = Options::new(recommenders);
    o.train_s = history.as_secs() as i64;
    o.eval_s = duration.as_secs() as i64;
    o.pricing = pricing.clone();
    if tailor {
        o.sweep = margin_sweep(engine);
    }
    Ok(o)
}

/// The scenario's fleet as usage over its history and duration: the same
/// workloads, replicas, resources and seeds the simulator builds.
pub fn scenario_fleet(
    scenario: &Scenario,
    models: &BTreeMap<String, ModelSpec>,
) -> Result<Vec<WorkloadUsage>, SimError> {
    let span = (scenario.history + scenario.duration).as_secs() as i64;
    let world = build_world(scenario, models, scenario.seed)?;
    Ok(world
        .workloads
        .iter()
        .map(|w| {
            usage::from_model(
                &format!("{}/{}", w.workload.namespace, w.workload.name),
                &w.model,
                w.seed,
                w.replicas,
                w.original,
                world.start,
                span,
            )
        })
        .collect())
}

/// Compares on a scenario's fleet; the closed loop of the real agent is the
/// scenario itself, run in the simulator.
pub fn compare_scenario(
    scenario: &Scenario,
    models: &BTreeMap<String, ModelSpec>,
    list: &str,
) -> Result<(Comparison, AgentOutcome), CompareError> {
    let engine = Engine {
        policy: scenario.policy.clone(),
        pricing: scenario.pricing.clone(),
        node: Some(NodeCapacity {
            cpu: scenario.node.cpu,
            memory: scenario.node.memory,
        }),
    };
    let o = options(
        list,
        &engine,
        scenario.history,
        scenario.duration,
        &scenario.pricing,
    )?;
    let fleet = scenario_fleet(scenario, models)?;
    let with_policy = |e: &Engine| {
        let mut s = scenario.clone();
        s.policy = e.policy.clone();
        closed_loop::agent(&s, models, s.seed).ok()
    };
    let mut c = compare(
        &format!("models ({})", scenario.name),
        &fleet,
        &o,
        Some(&with_policy),
    );
    let agent = closed_loop::agent(scenario, models, scenario.seed)?;
    if o.recommenders.iter().any(|r| r.name() == "tailor") {
        add_agent(&mut c, &agent);
    }
    Ok((c, agent))
}

/// Traces by VM name (`vm-007`).
pub type NamedTraces = Vec<(String, Arc<Trace>)>;

/// Every readable `vm-NNN.csv.gz` of `dir`, and the files left out with the reason.
pub fn load_traces(dir: &Path) -> Result<(NamedTraces, Vec<String>), CompareError> {
    let read_error = |source| CompareError::Traces {
        dir: dir.to_path_buf(),
        source,
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(read_error)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("vm-") && n.ends_with(".csv.gz"))
        })
        .collect();
    files.sort();
    let mut traces = Vec::new();
    let mut skipped = Vec::new();
    for file in files {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .map_or("vm", |n| n.trim_end_matches(".csv.gz"))
            .to_string();
        match load_trace(&file) {
            Ok(trace) => traces.push((name, Arc::new(trace))),
            Err(e) => skipped.push(format!("{name}: {e}")),
        }
    }
    if traces.is_empty() {
        return Err(CompareError::NoTraces(dir.to_path_buf()));
    }
    Ok((traces, skipped))
}

/// Compares on every VM of a trace folder: trained on `history` from each
/// VM's first sample, evaluated on the `duration` after; the real agent
/// replays the same VMs in the simulator, re-recommending daily.
pub fn compare_traces(
    dir: &Path,
    history: Duration,
    duration: Duration,
    policy: &Policy,
    pricing: &PricingConfig,
    list: &str,
) -> Result<(Comparison, AgentOutcome), CompareError> {
    let engine = Engine {
        policy: policy.clone(),
        pricing: pricing.clone(),
        node: None,
    };
    let o = options(list, &engine, history, duration, pricing)?;
    let (traces, skipped) = load_traces(dir)?;
    let fleet: Vec<WorkloadUsage> = traces
        .iter()
        .map(|(name, trace)| usage::from_trace(trace, name))
        .collect();
    let dataset = format!(
        "traces ({})",
        dir.file_name().and_then(|n| n.to_str()).unwrap_or("traces")
    );
    // The agent replays the VMs the one-shot comparison can score.
    let scored: NamedTraces = traces
        .into_iter()
        .zip(&fleet)
        .filter(|(_, w)| {
            let (train, eval) = o.steps(w);
            !w.cpu_values(train).is_empty() && !w.cpu_values(eval).is_empty()
        })
        .map(|(t, _)| t)
        .collect();
    let with_policy = |e: &Engine| {
        let (s, m) = closed_loop::trace_scenario(&scored, history, duration, &e.policy, pricing);
        closed_loop::agent(&s, &m, s.seed).ok()
    };
    let mut c = compare(&dataset, &fleet, &o, Some(&with_policy));
    let mut all_skipped = skipped;
    all_skipped.append(&mut c.skipped);
    c.skipped = all_skipped;
    let (scenario, models) =
        closed_loop::trace_scenario(&scored, history, duration, policy, pricing);
    let agent = closed_loop::agent(&scenario, &models, scenario.seed)?;
    if o.recommenders.iter().any(|r| r.name() == "tailor") {
        add_agent(&mut c, &agent);
    }
    Ok((c, agent))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recommenders_parse_with_a_clear_error() {
        let e = Engine::default();
        let r = parse_recommenders("vpa, krr,tailor,vpa", &e).expect("parses");
        let names: Vec<&str> = r.iter().map(|r| r.name()).collect();
        assert_eq!(names, ["vpa", "krr", "tailor"]);
        let err = parse_recommenders("vpa,goldilocks", &e).expect_err("unknown");
        assert!(err.to_string().contains("\"goldilocks\""), "{err}");
        assert!(parse_recommenders(",", &e).is_err());
    }

    #[test]
    fn a_missing_trace_folder_says_what_to_do() {
        let err = load_traces(Path::new("/nonexistent/traces")).expect_err("missing");
        assert!(err.to_string().contains("--traces"), "{err}");
    }
}

//! Scenarios: a fleet built from workload models, a duration, faults to
//! inject, and the outcomes expected of the agent. One YAML file each in
//! `simulations/`; `tailor simulate FILE` runs one, the test suite runs all.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{Policy, PricingConfig, duration_text};
use crate::domain::ResourceKind;
use crate::guard::GuardPolicy;
use crate::plan::{Guardrails, Mode};
use crate::rollout::RolloutSettings;
use crate::units::{self, Bytes, MilliCores};

/// A whole scenario file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Simulated time before the agent starts (usage history only).
    #[serde(with = "duration_text")]
    pub history: std::time::Duration,
    /// Simulated time with the agent running.
    #[serde(with = "duration_text")]
    pub duration: std::time::Duration,
    /// Folder of the workload models, relative to the scenario file.
    #[serde(default = "default_models")]
    pub models: PathBuf,
    #[serde(default)]
    pub agent: AgentSection,
    /// The recommendation policy the agent's recommender uses.
    #[serde(default)]
    pub policy: Policy,
    #[serde(default)]
    pub pricing: PricingConfig,
    /// Price of one node of the simulated node pool, per hour.
    #[serde(default = "default_node_price")]
    pub node_hour_usd: f64,
    #[serde(default = "default_node")]
    pub node: NodeShape,
    pub fleet: Vec<FleetEntry>,
    #[serde(default)]
    pub faults: Vec<Fault>,
    #[serde(default)]
    pub expect: Expectations,
}

fn default_seed() -> u64 {
    1
}

fn default_models() -> PathBuf {
    PathBuf::from("../models")
}

/// An m5.2xlarge-like node: on-demand us-east-1 price, 8 vCPU, 32 GiB.
fn default_node_price() -> f64 {
    0.384
}

fn default_node() -> NodeShape {
    NodeShape {
        cpu: MilliCores(8000),
        memory: Bytes::gib(32),
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeShape {
    #[serde(deserialize_with = "units::de_cpu")]
    pub cpu: MilliCores,
    #[serde(deserialize_with = "units::de_memory")]
    pub memory: Bytes,
}

/// How the agent runs in the scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    pub guardrails: Guardrails,
    pub rollout: RolloutSettingsYaml,
    pub guard: GuardPolicy,
    /// Minutes between agent plans.
    pub plan_interval_minutes: Option<i64>,
    /// Minutes between full recommendation refreshes.
    pub recommend_interval_minutes: Option<i64>,
    /// Restart the agent (losing its memory, keeping persisted state) at these offsets from the agent start.
    #[serde(default)]
    pub restarts: Vec<Offset>,
}

/// [`RolloutSettings`] in minutes, for humans.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RolloutSettingsYaml {
    pub rollout_timeout_minutes: i64,
    pub bake_minutes: i64,
    pub baseline_minutes: i64,
    pub no_data_grace_minutes: i64,
    pub hold_after_revert_hours: i64,
    pub seasonal_baseline: bool,
    pub warmup_minutes: i64,
    pub early_abort_factor: f64,
    pub watch_hours: i64,
    pub comparable_load: f64,
}

impl Default for RolloutSettingsYaml {
    fn default() -> Self {
        let d = RolloutSettings::default();
        RolloutSettingsYaml {
            rollout_timeout_minutes: d.rollout_timeout_s / 60,
            bake_minutes: d.bake_s / 60,
            baseline_minutes: d.baseline_s / 60,
            no_data_grace_minutes: d.no_data_grace_s / 60,
            hold_after_revert_hours: d.hold_after_revert_s / 3600,
            seasonal_baseline: d.seasonal_baseline,
            warmup_minutes: d.warmup_s / 60,
            early_abort_factor: d.early_abort_factor,
            watch_hours: d.watch_s / 3600,
            comparable_load: d.comparable_load,
        }
    }
}

impl RolloutSettingsYaml {
    pub fn to_settings(&self) -> RolloutSettings {
        RolloutSettings {
            rollout_timeout_s: self.rollout_timeout_minutes * 60,
            bake_s: self.bake_minutes * 60,
            baseline_s: self.baseline_minutes * 60,
            no_data_grace_s: self.no_data_grace_minutes * 60,
            hold_after_revert_s: self.hold_after_revert_hours * 3600,
            seasonal_baseline: self.seasonal_baseline,
            warmup_s: self.warmup_minutes * 60,
            early_abort_factor: self.early_abort_factor,
            watch_s: self.watch_hours * 3600,
            comparable_load: self.comparable_load,
        }
    }
}

/// An offset from a phase start, written as a duration (`3d`, `90m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Offset(#[serde(with = "duration_text")] pub std::time::Duration);

impl Offset {
    pub fn seconds(self) -> i64 {
        self.0.as_secs() as i64
    }
}

/// `count` workloads from one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetEntry {
    /// File stem of a model in the models folder (e.g. `diurnal-web`).
    pub model: String,
    #[serde(default = "default_count")]
    pub count: u32,
    pub namespace: String,
    /// Workload name prefix; defaults to the model name. Names are `<name>-<i>`
    /// (or `<name>` when count is 1).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub replicas: Option<u32>,
    #[serde(default)]
    pub resources: Option<ResourcesYaml>,
    #[serde(default)]
    pub hpa: Option<HpaYaml>,
    /// Per-workload mode annotation (`tailor.dev/mode`).
    #[serde(default)]
    pub mode: Option<Mode>,
    /// `tailor.dev/paused=true`.
    #[serde(default)]
    pub paused: bool,
    /// Managed by GitOps with self-heal.
    #[serde(default)]
    pub gitops: bool,
}

fn default_count() -> u32 {
    1
}

/// Starting requests and limits as Kubernetes quantities.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourcesYaml {
    #[serde(deserialize_with = "units::de_cpu_opt")]
    pub cpu_request: Option<MilliCores>,
    #[serde(deserialize_with = "units::de_cpu_opt")]
    pub cpu_limit: Option<MilliCores>,
    #[serde(deserialize_with = "units::de_memory_opt")]
    pub memory_request: Option<Bytes>,
    #[serde(deserialize_with = "units::de_memory_opt")]
    pub memory_limit: Option<Bytes>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaYaml {
    pub resource: ResourceKind,
    pub target_utilization_percent: u32,
    pub min_replicas: u32,
    pub max_replicas: u32,
}

/// Something that goes wrong during the agent phase.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, tag = "kind", rename_all = "kebab-case")]
pub enum Fault {
    /// The metrics backend is down: no usage, no SLIs.
    MetricsGap { at: Offset, duration: Offset },
    /// Traffic to matching workloads multiplies by `factor`.
    TrafficSurge {
        at: Offset,
        duration: Offset,
        factor: f64,
        /// Workload name prefix; all workloads when absent.
        #[serde(default)]
        workload: Option<String>,
    },
}

/// Outcomes the run must show; absent keys are not checked.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expectations {
    pub applied_min: Option<u64>,
    pub applied_max: Option<u64>,
    pub reverted_min: Option<u64>,
    pub reverted_max: Option<u64>,
    pub confirmed_min: Option<u64>,
    pub false_reverts_max: Option<u64>,
    pub unreverted_regressions_max: Option<u64>,
    pub max_time_to_revert_s: Option<i64>,
    /// Monthly cost after ÷ before, at most.
    pub cost_ratio_max: Option<f64>,
    /// Most OOM episodes any one workload may have during the agent phase.
    pub oom_episodes_per_workload_max: Option<u64>,
    /// SLO-violation minutes caused by the agent, at most.
    pub agent_slo_violation_minutes_max: Option<u64>,
    pub fast_paths_min: Option<u64>,
    pub proposals_min: Option<u64>,
    pub leaks_detected_min: Option<u64>,
    /// Workloads whose resource must not change (name prefix → resource).
    pub untouched: BTreeMap<String, Vec<ResourceKind>>,
    /// No change may be confirmed while metrics are missing.
    pub no_confirm_during_gap: bool,
}

/// A scenario file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: `{key}`: {message}")]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Scenario {
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Scenario::from_yaml(&text, path)
    }

    pub fn from_yaml(text: &str, path: &Path) -> Result<Scenario, ScenarioError> {
        let de = serde_yaml_ng::Deserializer::from_str(text);
        let scenario: Scenario =
            serde_path_to_error::deserialize(de).map_err(|e| ScenarioError::Parse {
                path: path.to_path_buf(),
                key: e.path().to_string(),
                message: e.inner().to_string(),
            })?;
        let invalid = |message: String| ScenarioError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        if scenario.fleet.is_empty() {
            return Err(invalid(
                "`fleet` is empty; add at least one entry with a model".into(),
            ));
        }
        if scenario.duration.as_secs() < 60 {
            return Err(invalid(
                "`duration` is under a minute; write it like 14d".into(),
            ));
        }
        scenario
            .agent
            .guardrails
            .validate()
            .map_err(|e| invalid(format!("agent.guardrails: {e}")))?;
        Ok(scenario)
    }

    /// The models folder, resolved against the scenario file's folder.
    pub fn models_dir(&self, scenario_path: &Path) -> PathBuf {
        if self.models.is_absolute() {
            self.models.clone()
        } else {
            scenario_path
                .parent()
                .unwrap_or(Path::new("."))
                .join(&self.models)
        }
    }
}

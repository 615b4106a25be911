//! Workload and response models for the simulated cluster: how much CPU,
//! memory and traffic each workload demands at each simulated minute
//! ([`WorkloadModel::demand`]), and how its latency, errors, throttling and
//! OOM kills respond to the resources it is given ([`respond`]).
//!
//! Models live in `models/*.yaml`, one archetype per file, each with the
//! usage model, the response model and the workload's starting size
//! ([`load_model`], [`load_models`]). Everything here is deterministic and
//! clock-free: noise is a hash of `(seed, replica, minute)`, so a 28-day run
//! of hundreds of workloads can be replayed exactly, and the per-minute
//! functions allocate nothing. This module does not run pods, rollouts or
//! the agent: the simulated cluster does, calling these functions.
//! `docs/models.md` describes each archetype and the response rules.
//!
//! ```
//! use tailor::sim::models::{respond, Demand, Given, ResponseModel};
//!
//! let model = ResponseModel {
//!     base_latency_s: 0.05,
//!     tail_ratio: 2.0,
//!     base_error_ratio: 0.001,
//!     latency_sensitivity: 1.0,
//!     timeout_s: 1.0,
//!     restart_s: 20.0,
//! };
//! // 0.15 cores on average, 0.9 cores for 5 % of the minute.
//! let demand = Demand {
//!     cpu_cores: 0.15,
//!     cpu_burst_cores: 0.9,
//!     burst_fraction: 0.05,
//!     memory_bytes: 200e6,
//!     requests_per_s: 40.0,
//! };
//! let given = |limit| Given { cpu_limit_cores: Some(limit), ..Given::default() };
//! let roomy = respond(&model, &demand, &given(1.0));
//! let tight = respond(&model, &demand, &given(0.3));
//! assert_eq!(roomy.latency_p99_s, 0.1);
//! assert!(tight.latency_p99_s >= 2.0 * roomy.latency_p99_s); // bursts throttled
//! assert_eq!(tight.latency_p95_s, roomy.latency_p95_s); // the average hides them
//! assert_eq!(tight.cpu_used_cores, 0.15);
//! ```

mod response;
mod trace;
mod workload;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use response::{Given, Response, ResponseModel, respond};
pub use trace::{TRACE_STEP_S, Trace, TraceCleaning, load_trace, vm_file};
pub use workload::{
    Batch, Demand, Diurnal, Idle, Jvm, Leak, Microburst, TraceReplay, WorkloadModel,
};

use crate::domain::Resources;
use crate::units::{Bytes, MilliCores};

/// A model that could not be loaded, naming the file, the key and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Malformed YAML, an unknown key, or a value of the wrong type; `key` is
    /// the dotted path (`workload.diurnal.peak_hour`), empty for the file.
    #[error("{}: {}", .path.display(), with_key(.key, .message))]
    Parse {
        path: PathBuf,
        key: String,
        message: String,
    },
    /// A well-formed value that cannot work.
    #[error("{}: `{key}`: {problem}; fix: {fix}", .path.display())]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
        fix: String,
    },
    /// A trace file that cannot be replayed.
    #[error("{}:{line}: {problem}; fix: {fix}", .path.display())]
    Trace {
        path: PathBuf,
        line: usize,
        problem: String,
        fix: String,
    },
}

fn with_key(key: &str, message: &str) -> String {
    if key.is_empty() {
        message.to_string()
    } else {
        format!("`{key}`: {message}")
    }
}

/// One model file: a named archetype with its usage and response models and
/// the size its workloads start at.
#[derive(Clone, Debug)]
pub struct ModelSpec {
    /// The file's stem (`diurnal-web`): scenarios refer to models by it.
    pub name: String,
    pub description: String,
    pub workload: WorkloadModel,
    pub response: ResponseModel,
    pub defaults: WorkloadDefaults,
}

/// How a workload built from a model starts: replicas and the requests and
/// limits its team guessed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkloadDefaults {
    pub replicas: u32,
    /// Kubernetes quantities: `cpu_request: 500m`, `memory_limit: 1Gi`; a key
    /// left out is not set.
    #[serde(deserialize_with = "de::resources")]
    pub resources: Resources,
}

/// The YAML as written; the trace variant names a file still to be read.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelFile {
    name: String,
    #[serde(default)]
    description: String,
    workload: WorkloadFile,
    response: ResponseModel,
    defaults: WorkloadDefaults,
}

/// `workload:` holds exactly one archetype as its single key. (serde_yaml_ng
/// reads enums only from YAML tags, which people do not write.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    diurnal: Option<Diurnal>,
    microburst: Option<Microburst>,
    jvm: Option<Jvm>,
    batch: Option<Batch>,
    leak: Option<Leak>,
    idle: Option<Idle>,
    trace: Option<TraceSource>,
}

enum Archetype {
    Model(WorkloadModel),
    Trace(TraceSource),
}

impl WorkloadFile {
    fn into_archetype(self) -> Result<Archetype, Problem> {
        let WorkloadFile {
            diurnal,
            microburst,
            jvm,
            batch,
            leak,
            idle,
            trace,
        } = self;
        let mut found: Vec<Archetype> = Vec::with_capacity(1);
        found.extend(diurnal.map(|m| Archetype::Model(WorkloadModel::Diurnal(m))));
        found.extend(microburst.map(|m| Archetype::Model(WorkloadModel::Microburst(m))));
        found.extend(jvm.map(|m| Archetype::Model(WorkloadModel::Jvm(m))));
        found.extend(batch.map(|m| Archetype::Model(WorkloadModel::Batch(m))));
        found.extend(leak.map(|m| Archetype::Model(WorkloadModel::Leak(m))));
        found.extend(idle.map(|m| Archetype::Model(WorkloadModel::Idle(m))));
        found.extend(trace.map(Archetype::Trace));
        let count = found.len();
        match found.pop() {
            Some(archetype) if count == 1 => Ok(archetype),
            _ => Err(Problem {
                key: "workload".into(),
                problem: format!("names {count} archetypes"),
                fix: "name exactly one of diurnal, microburst, jvm, batch, leak, idle or trace"
                    .into(),
            }),
        }
    }
}

/// `workload: { trace: { … } }`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TraceSource {
    /// A trace file, or a folder of `vm-NNN.csv.gz` files (then `vm` picks
    /// one); relative paths start at the YAML file's folder.
    file: PathBuf,
    #[serde(default)]
    vm: Option<u32>,
    /// Simulated time of the trace's first sample: Unix seconds or RFC 3339.
    #[serde(default, deserialize_with = "de::unix_time_opt")]
    start: Option<i64>,
    #[serde(default)]
    requests_per_s_per_core: f64,
    #[serde(default = "workload::one")]
    burst_ratio: f64,
    #[serde(default)]
    burst_fraction: f64,
}

/// Reads and checks one model file.
pub fn load_model(path: &Path) -> Result<ModelSpec, ModelError> {
    load_model_sharing(path, &mut HashMap::new())
}

/// Reads every `*.yaml` (and `*.yml`) file of a folder, keyed by model name.
/// Files naming the same trace share one copy of it.
pub fn load_models(dir: &Path) -> Result<BTreeMap<String, ModelSpec>, ModelError> {
    let read_error = |source| ModelError::Read {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(read_error)? {
        let path = entry.map_err(read_error)?.path();
        let yaml = path
            .extension()
            .is_some_and(|ext| ext == "yaml" || ext == "yml");
        if yaml && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    let mut traces = HashMap::new();
    let mut models = BTreeMap::new();
    for path in paths {
        let model = load_model_sharing(&path, &mut traces)?;
        if models.contains_key(&model.name) {
            return Err(ModelError::Invalid {
                path,
                key: "name".into(),
                problem: format!("another file of the folder is also named {:?}", model.name),
                fix: "keep one of `NAME.yaml` and `NAME.yml`".into(),
            });
        }
        models.insert(model.name.clone(), model);
    }
    Ok(models)
}

/// Parses and checks a model from text; `path` names it in errors and is
/// where a trace it names is looked up from (built-in models use this).
pub fn parse_model(text: &str, path: &Path) -> Result<ModelSpec, ModelError> {
    parse_model_sharing(text, path, &mut HashMap::new())
}

fn load_model_sharing(
    path: &Path,
    traces: &mut HashMap<PathBuf, Arc<Trace>>,
) -> Result<ModelSpec, ModelError> {
    let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_model_sharing(&text, path, traces)
}

fn parse_model_sharing(
    text: &str,
    path: &Path,
    traces: &mut HashMap<PathBuf, Arc<Trace>>,
) -> Result<ModelSpec, ModelError> {
    let de = serde_yaml_ng::Deserializer::from_str(text);
    let file: ModelFile = serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." { String::new() } else { key };
        ModelError::Parse {
            path: path.to_path_buf(),
            message: strip_yaml_path(&e.inner().to_string(), &key).to_string(),
            key,
        }
    })?;
    let invalid = |p: Problem| ModelError::Invalid {
        path: path.to_path_buf(),
        key: p.key,
        problem: p.problem,
        fix: p.fix,
    };
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    check(
        file.name == stem,
        "name",
        || format!("is {:?} but the file is {stem:?}", file.name),
        "make the name the file's name without `.yaml` (scenarios find models by it)",
    )
    .map_err(invalid)?;
    validate_response(&file.response).map_err(invalid)?;
    validate_defaults(&file.defaults).map_err(invalid)?;
    let workload = match file.workload.into_archetype().map_err(invalid)? {
        Archetype::Model(model) => {
            validate_workload(&model).map_err(invalid)?;
            model
        }
        Archetype::Trace(source) => {
            validate_trace_source(&source).map_err(invalid)?;
            let trace = resolve_trace(path, &source, traces)?;
            WorkloadModel::Trace(TraceReplay {
                start: source.start.unwrap_or(trace.start_s),
                trace,
                requests_per_s_per_core: source.requests_per_s_per_core,
                burst_ratio: source.burst_ratio,
                burst_fraction: source.burst_fraction,
            })
        }
    };
    Ok(ModelSpec {
        name: file.name,
        description: file.description.trim().to_string(),
        workload,
        response: file.response,
        defaults: file.defaults,
    })
}

/// Finds and reads the trace a model names, relative to the model's folder.
fn resolve_trace(
    model_path: &Path,
    source: &TraceSource,
    traces: &mut HashMap<PathBuf, Arc<Trace>>,
) -> Result<Arc<Trace>, ModelError> {
    let folder = model_path.parent().unwrap_or(Path::new("."));
    let named = folder.join(&source.file);
    let file = if named.is_dir() {
        match source.vm {
            Some(vm) => vm_file(&named, vm),
            None => {
                return Err(ModelError::Invalid {
                    path: model_path.to_path_buf(),
                    key: "workload.trace.vm".into(),
                    problem: format!(
                        "`file` is a folder ({}) and no VM is named",
                        named.display()
                    ),
                    fix: "add `vm: N` to replay vm-NNN.csv.gz from that folder".into(),
                });
            }
        }
    } else {
        named
    };
    if !file.is_file() {
        return Err(ModelError::Invalid {
            path: model_path.to_path_buf(),
            key: "workload.trace.file".into(),
            problem: format!("no trace at {}", file.display()),
            fix: format!(
                "point `file` at a trace file or folder, relative to {} or absolute \
                 (the shared traces sit at ../shared/traces from the repository root)",
                folder.display()
            ),
        });
    }
    if let Some(trace) = traces.get(&file) {
        return Ok(Arc::clone(trace));
    }
    let trace = Arc::new(load_trace(&file)?);
    traces.insert(file, Arc::clone(&trace));
    Ok(trace)
}

/// serde_yaml_ng starts its messages with its own path (the key's, or for an
/// unknown key its parent's); the error already carries the key.
fn strip_yaml_path<'m>(message: &'m str, key: &str) -> &'m str {
    let mut prefixes: Vec<&str> = key
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | '['))
        .map(|(i, _)| &key[..i])
        .chain([key])
        .filter(|prefix| !prefix.is_empty())
        .collect();
    prefixes.reverse(); // longest first
    prefixes
        .into_iter()
        .find_map(|prefix| message.strip_prefix(prefix)?.strip_prefix(": "))
        .unwrap_or(message)
}

struct Problem {
    key: String,
    problem: String,
    fix: String,
}

fn check(ok: bool, key: &str, problem: impl FnOnce() -> String, fix: &str) -> Result<(), Problem> {
    if ok {
        Ok(())
    } else {
        Err(Problem {
            key: key.to_string(),
            problem: problem(),
            fix: fix.to_string(),
        })
    }
}

/// `value` lies in `lo..=hi` (NaN never does).
fn within(key: &str, value: f64, lo: f64, hi: f64, fix: &str) -> Result<(), Problem> {
    check(
        (lo..=hi).contains(&value),
        key,
        || format!("{value} is outside {lo}..={hi}"),
        fix,
    )
}

fn noise(prefix: &str, value: f64) -> Result<(), Problem> {
    within(
        &format!("{prefix}.noise"),
        value,
        0.0,
        0.99,
        "write a relative amplitude like 0.1 (±10 %)",
    )
}

fn non_negative(key: &str, value: f64, fix: &str) -> Result<(), Problem> {
    within(key, value, 0.0, f64::MAX, fix)
}

fn burst(prefix: &str, ratio: f64, fraction: f64) -> Result<(), Problem> {
    within(
        &format!("{prefix}.burst_ratio"),
        ratio,
        1.0,
        1_000.0,
        "the burst level is a multiple of the average, at least 1",
    )?;
    within(
        &format!("{prefix}.burst_fraction"),
        fraction,
        0.0,
        1.0,
        "write the share of the minute spent bursting, like 0.05",
    )?;
    check(
        ratio * fraction <= 1.0 + 1e-9,
        &format!("{prefix}.burst_fraction"),
        || {
            format!(
                "burst_ratio × burst_fraction is {}, above 1",
                ratio * fraction
            )
        },
        "a burst cannot hold more than the minute's work: lower one of them",
    )
}

fn validate_workload(model: &WorkloadModel) -> Result<(), Problem> {
    match model {
        WorkloadModel::Diurnal(m) => validate_diurnal(m),
        WorkloadModel::Microburst(m) => validate_microburst(m),
        WorkloadModel::Jvm(m) => validate_jvm(m),
        WorkloadModel::Batch(m) => validate_batch(m),
        WorkloadModel::Leak(m) => noise("workload.leak", m.noise),
        WorkloadModel::Idle(m) => noise("workload.idle", m.noise),
        WorkloadModel::Trace(m) => burst("workload.trace", m.burst_ratio, m.burst_fraction),
    }
}

fn validate_diurnal(m: &Diurnal) -> Result<(), Problem> {
    let p = "workload.diurnal";
    non_negative(
        &format!("{p}.peak_requests_per_s"),
        m.peak_requests_per_s,
        "write the whole workload's requests per second at the weekday peak",
    )?;
    within(
        &format!("{p}.trough_ratio"),
        m.trough_ratio,
        0.0,
        1.0,
        "write trough traffic over peak traffic, like 0.25",
    )?;
    check(
        (0.0..24.0).contains(&m.peak_hour),
        &format!("{p}.peak_hour"),
        || format!("{} is not an hour of the day", m.peak_hour),
        "write the UTC hour of the peak, 0 to 23.99, like 14",
    )?;
    non_negative(
        &format!("{p}.weekend_ratio"),
        m.weekend_ratio,
        "write weekend traffic over weekday traffic, like 0.6",
    )?;
    noise(p, m.noise)?;
    burst(p, m.burst_ratio, m.burst_fraction)
}

fn validate_microburst(m: &Microburst) -> Result<(), Problem> {
    let p = "workload.microburst";
    noise(p, m.noise)?;
    within(
        &format!("{p}.burst_fraction"),
        m.burst_fraction,
        0.0,
        1.0,
        "write the share of the minute spent bursting, like 0.05",
    )?;
    check(
        m.cpu_burst_cores >= m.cpu_average_cores,
        &format!("{p}.cpu_burst"),
        || "is below cpu_average".to_string(),
        "the burst level is the peak inside a minute: at least the average",
    )?;
    // The bursts must fit in the average even when noise lowers the average
    // and raises the burst.
    let low_average = m.cpu_average_cores * (1.0 - m.noise);
    let high_bursts = m.burst_fraction * m.cpu_burst_cores * (1.0 + m.noise);
    check(
        low_average >= high_bursts,
        &format!("{p}.cpu_average"),
        || {
            format!(
                "the bursts alone average {high_bursts:.4} cores, more than the \
                 {low_average:.4}-core average"
            )
        },
        "raise cpu_average or lower cpu_burst, burst_fraction or noise",
    )?;
    non_negative(
        &format!("{p}.requests_per_s"),
        m.requests_per_s,
        "write the whole workload's requests per second",
    )
}

fn validate_jvm(m: &Jvm) -> Result<(), Problem> {
    let p = "workload.jvm";
    check(
        m.heap_max_bytes >= m.heap_initial_bytes,
        &format!("{p}.heap_max"),
        || "is below heap_initial".to_string(),
        "heap_max is the ceiling (-Xmx): at least heap_initial",
    )?;
    check(
        m.heap_growth_s > 0.0,
        &format!("{p}.heap_growth_time"),
        || "must be longer than 0s".to_string(),
        "write how long the heap takes to approach heap_max, like 2h",
    )?;
    check(
        m.gc_period_s > 0,
        &format!("{p}.gc_period"),
        || "must be at least 1s".to_string(),
        "write the time between major collections, like 20m",
    )?;
    within(
        &format!("{p}.gc_drop"),
        m.gc_drop,
        0.0,
        0.99,
        "write the share of the heap a collection frees, like 0.3",
    )?;
    noise(p, m.noise)?;
    burst(p, m.burst_ratio, m.burst_fraction)
}

fn validate_batch(m: &Batch) -> Result<(), Problem> {
    let p = "workload.batch";
    check(
        (0..86_400).contains(&m.window_start_s),
        &format!("{p}.window_start"),
        || "is not a time of day".to_string(),
        "write the time after midnight UTC the window opens, like 2h",
    )?;
    check(
        (1..=86_400).contains(&m.window_s),
        &format!("{p}.window"),
        || "must be between 1s and 24h".to_string(),
        "write how long the job runs each day, like 1h",
    )?;
    noise(p, m.noise)?;
    burst(p, m.burst_ratio, m.burst_fraction)
}

fn validate_trace_source(m: &TraceSource) -> Result<(), Problem> {
    let p = "workload.trace";
    non_negative(
        &format!("{p}.requests_per_s_per_core"),
        m.requests_per_s_per_core,
        "write requests per second per core used, or 0 for no traffic",
    )?;
    burst(p, m.burst_ratio, m.burst_fraction)
}

fn validate_response(m: &ResponseModel) -> Result<(), Problem> {
    check(
        m.base_latency_s > 0.0,
        "response.base_latency",
        || "must be longer than 0s".to_string(),
        "write the p95 latency at rest, like 80ms",
    )?;
    within(
        "response.tail_ratio",
        m.tail_ratio,
        1.01,
        100.0,
        "write p99 over p95 at rest, like 1.6 (above 1)",
    )?;
    within(
        "response.base_error_ratio",
        m.base_error_ratio,
        0.0,
        0.5,
        "write the error share at rest, like 0.001",
    )?;
    within(
        "response.latency_sensitivity",
        m.latency_sensitivity,
        0.0,
        2.0,
        "write the share of latency that is CPU time, like 0.8",
    )?;
    check(
        m.timeout_s > m.base_latency_s * m.tail_ratio,
        "response.timeout",
        || "is not above the p99 at rest".to_string(),
        "write the client timeout, well above base_latency × tail_ratio, like 1s",
    )?;
    non_negative(
        "response.restart_time",
        m.restart_s,
        "write how long a restarted replica serves nothing, like 30s",
    )
}

fn validate_defaults(d: &WorkloadDefaults) -> Result<(), Problem> {
    check(
        d.replicas >= 1,
        "defaults.replicas",
        || "must be at least 1".to_string(),
        "write the number of replicas a workload starts with",
    )?;
    let r = &d.resources;
    check(
        match (r.cpu_request, r.cpu_limit) {
            (Some(request), Some(limit)) => request <= limit,
            _ => true,
        },
        "defaults.resources.cpu_limit",
        || "is below cpu_request, which Kubernetes rejects".to_string(),
        "raise cpu_limit to at least cpu_request, or leave it out",
    )?;
    check(
        match (r.memory_request, r.memory_limit) {
            (Some(request), Some(limit)) => request <= limit,
            _ => true,
        },
        "defaults.resources.memory_limit",
        || "is below memory_request, which Kubernetes rejects".to_string(),
        "raise memory_limit to at least memory_request, or leave it out",
    )
}

/// Readers turning the YAML's quantities and durations into the plain
/// numbers the per-minute functions use.
mod de {
    use serde::{Deserialize, Deserializer};

    use super::{Bytes, MilliCores, Resources};
    use crate::config::duration_text;
    use crate::units;

    /// A CPU quantity (`150m`, `0.5`, `2`) as cores.
    pub fn cores<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        units::de_cpu(d).map(MilliCores::cores)
    }

    /// A memory quantity (`512Mi`, `1G`) as bytes.
    pub fn bytes<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        units::de_memory(d).map(Bytes::as_f64)
    }

    /// A duration (`80ms`, `5m`, `2h`) as seconds.
    pub fn seconds_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        duration_text::deserialize(d).map(|d| d.as_secs_f64())
    }

    /// A duration as whole seconds.
    pub fn seconds_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        duration_text::deserialize(d).map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Time {
        Unix(i64),
        Text(String),
    }

    /// Unix seconds, or an RFC 3339 time (`2024-03-04T00:00:00Z`).
    pub fn unix_time_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        match Option::<Time>::deserialize(d)? {
            None => Ok(None),
            Some(Time::Unix(t)) => Ok(Some(t)),
            Some(Time::Text(text)) => chrono::DateTime::parse_from_rfc3339(text.trim())
                .map(|t| Some(t.timestamp()))
                .map_err(|e| {
                    serde::de::Error::custom(format!(
                        "{text:?} is not a time ({e}); write Unix seconds or \
                         RFC 3339 like 2024-03-04T00:00:00Z"
                    ))
                }),
        }
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct ResourcesFile {
        #[serde(default, deserialize_with = "units::de_cpu_opt")]
        cpu_request: Option<MilliCores>,
        #[serde(default, deserialize_with = "units::de_cpu_opt")]
        cpu_limit: Option<MilliCores>,
        #[serde(default, deserialize_with = "units::de_memory_opt")]
        memory_request: Option<Bytes>,
        #[serde(default, deserialize_with = "units::de_memory_opt")]
        memory_limit: Option<Bytes>,
    }

    /// Requests and limits as Kubernetes quantities; a key left out is unset.
    pub fn resources<'de, D: Deserializer<'de>>(d: D) -> Result<Resources, D::Error> {
        let r = ResourcesFile::deserialize(d)?;
        Ok(Resources {
            cpu_request: r.cpu_request,
            cpu_limit: r.cpu_limit,
            memory_request: r.memory_request,
            memory_limit: r.memory_limit,
        })
    }
}

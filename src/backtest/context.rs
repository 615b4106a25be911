//! Who owns each workload and where it runs, from kube-state-metrics:
//! the team label of its pods (`kube_pod_labels`) and the node pool of the
//! nodes they ran on (`kube_pod_info` or the `node` label of
//! `kube_pod_container_resource_requests`, then `kube_node_labels`). At most
//! three instant queries over the window, whatever the cluster size, and
//! only those the config asks for.
//!
//! Pods are matched to workloads by the names their controllers give them
//! ([`promql::pod_regex`]), the same rule SLI templates use. A workload
//! whose pods disagree takes the value its pods carried longest (each pod
//! weighs its number of samples in the window).
//!
//! kube-state-metrics exports pod and node labels only when allowed, e.g.
//! `--metric-labels-allowlist=pods=[team],nodes=[karpenter.sh/nodepool]`.

use std::collections::{BTreeMap, HashMap};

use regex::Regex;

use crate::config::{Config, WELL_KNOWN_NODE_POOL_LABELS};
use crate::domain::WorkloadRef;
use crate::metrics::promql::{self, Selector};
use crate::metrics::{MetricsError, PromClient};

/// The team and node pool of one workload, when known.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Placement {
    pub team: Option<String>,
    pub node_pool: Option<String>,
}

/// The name kube-state-metrics gives a Kubernetes label:
/// `app.kubernetes.io/part-of` → `label_app_kubernetes_io_part_of`.
pub fn ksm_label(key: &str) -> String {
    let sanitized: String = key
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("label_{sanitized}")
}

/// Which workload each pod name belongs to, per namespace.
struct PodMatcher<'a> {
    by_namespace: HashMap<&'a str, Vec<(&'a WorkloadRef, Regex)>>,
}

impl<'a> PodMatcher<'a> {
    fn new(workloads: &'a [WorkloadRef]) -> PodMatcher<'a> {
        let mut by_namespace: HashMap<&str, Vec<(&WorkloadRef, Regex)>> = HashMap::new();
        for w in workloads {
            // The pattern escapes the name, so it always compiles.
            if let Ok(re) = Regex::new(&promql::pod_regex(w.kind, &w.name)) {
                by_namespace.entry(&w.namespace).or_default().push((w, re));
            }
        }
        PodMatcher { by_namespace }
    }

    /// The workload of `pod`; the longest name wins when several match
    /// (`web` and `web-admin` both match some generated names).
    fn workload(&self, namespace: &str, pod: &str) -> Option<&'a WorkloadRef> {
        self.by_namespace
            .get(namespace)?
            .iter()
            .filter(|(_, re)| re.is_match(pod))
            .max_by_key(|(w, _)| w.name.len())
            .map(|(w, _)| *w)
    }
}

/// Weights of a value per workload; the heaviest wins (ties: the
/// smallest value, so runs repeat).
#[derive(Default)]
struct Votes<'a>(HashMap<&'a WorkloadRef, BTreeMap<String, f64>>);

impl<'a> Votes<'a> {
    fn add(&mut self, workload: &'a WorkloadRef, value: &str, weight: f64) {
        if value.is_empty() || !weight.is_finite() || weight <= 0.0 {
            return;
        }
        *self
            .0
            .entry(workload)
            .or_default()
            .entry(value.to_string())
            .or_default() += weight;
    }

    fn winner(&self, workload: &WorkloadRef) -> Option<String> {
        let weights = self.0.get(workload)?;
        let best = weights.values().copied().fold(f64::MIN, f64::max);
        weights
            .iter()
            .find(|(_, w)| **w == best)
            .map(|(value, _)| value.clone())
    }
}

/// The weight of one series from an instant query's sample.
fn weight(samples: &[(i64, f64)]) -> f64 {
    samples.first().map_or(0.0, |&(_, v)| v)
}

/// The placement of every workload in `workloads` as of `at`, from pods
/// and nodes seen in the `window_s` before it. Reads nothing (and returns
/// empty placements) when the config has no team label and no node pool.
pub async fn placements(
    client: &PromClient,
    config: &Config,
    workloads: &[WorkloadRef],
    at: i64,
    window_s: i64,
) -> Result<BTreeMap<WorkloadRef, Placement>, MetricsError> {
    let (scope, cluster_scope) = crate::scan::scope(config);
    let matcher = PodMatcher::new(workloads);
    let window = promql::range(window_s.max(1));
    let label = |l: &crate::metrics::client::Labels, k: &str| l.get(k).cloned().unwrap_or_default();

    let mut teams = Votes::default();
    if let Some(team_label) = &config.report.team_label {
        let name = ksm_label(team_label);
        let query = format!(
            "max by (namespace, pod, {name}) (count_over_time({}[{window}]))",
            Selector::new("kube_pod_labels").scoped(&scope)
        );
        client
            .instant(&query, at, |l, samples| {
                if let Some(w) = matcher.workload(&label(l, "namespace"), &label(l, "pod")) {
                    teams.add(w, &label(l, &name), weight(samples));
                }
            })
            .await?;
    }

    let mut pools = Votes::default();
    if !config.pricing.node_pools.is_empty() {
        let mut pool_of_node: HashMap<String, String> = HashMap::new();
        let wanted: Vec<String> = match &config.pricing.node_pool_label {
            Some(key) => vec![ksm_label(key)],
            None => WELL_KNOWN_NODE_POOL_LABELS
                .iter()
                .map(|k| ksm_label(k))
                .collect(),
        };
        let nodes = format!(
            "last_over_time({}[{window}])",
            Selector::new("kube_node_labels").scoped(&cluster_scope)
        );
        client
            .instant(&nodes, at, |l, _| {
                if let Some(pool) = wanted
                    .iter()
                    .find_map(|k| l.get(k).filter(|v| !v.is_empty()))
                {
                    pool_of_node.insert(label(l, "node"), pool.clone());
                }
            })
            .await?;
        // kube_pod_info names every pod's node; the requests series carry
        // it too, for setups that drop kube_pod_info. Samples per pod weigh
        // how long it ran there.
        let by = "namespace, pod, node";
        let pods = format!(
            "max by ({by}) (count_over_time({}[{window}])) or max by ({by}) (count_over_time({}[{window}]))",
            Selector::new("kube_pod_info").scoped(&scope),
            Selector::new("kube_pod_container_resource_requests").scoped(&scope)
        );
        client
            .instant(&pods, at, |l, samples| {
                let Some(w) = matcher.workload(&label(l, "namespace"), &label(l, "pod")) else {
                    return;
                };
                if let Some(pool) = pool_of_node.get(&label(l, "node")) {
                    pools.add(w, pool, weight(samples));
                }
            })
            .await?;
    }

    Ok(workloads
        .iter()
        .map(|w| {
            (
                w.clone(),
                Placement {
                    team: teams.winner(w),
                    node_pool: pools.winner(w),
                },
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WorkloadKind;

    fn workload(kind: WorkloadKind, name: &str) -> WorkloadRef {
        WorkloadRef {
            namespace: "shop".into(),
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn pods_go_to_the_workload_whose_generated_names_they_have() {
        let workloads = vec![
            workload(WorkloadKind::Deployment, "web"),
            workload(WorkloadKind::Deployment, "web-admin"),
            workload(WorkloadKind::StatefulSet, "db"),
            workload(WorkloadKind::CronJob, "report"),
        ];
        let m = PodMatcher::new(&workloads);
        let name = |pod: &str| m.workload("shop", pod).map(|w| w.name.as_str());
        assert_eq!(name("web-7c9d8bb6f5-x2x4z"), Some("web"));
        assert_eq!(name("web-admin-7c9d8bb6f5-x2x4z"), Some("web-admin"));
        assert_eq!(name("db-0"), Some("db"));
        assert_eq!(name("report-29001234-bbbbb"), Some("report"));
        assert_eq!(name("other-7c9d8bb6f5-x2x4z"), None);
        assert_eq!(m.workload("elsewhere", "db-0"), None);
    }

    #[test]
    fn the_heaviest_value_wins_and_ties_go_to_the_smallest() {
        let w = workload(WorkloadKind::Deployment, "web");
        let mut votes = Votes::default();
        for (v, weight) in [
            ("spot", 10.0),
            ("on-demand", 15.0),
            ("spot", 10.0),
            ("", 99.0),
        ] {
            votes.add(&w, v, weight);
        }
        assert_eq!(votes.winner(&w).as_deref(), Some("spot"));
        votes.add(&w, "on-demand", 5.0);
        votes.add(&w, "gpu", f64::NAN);
        assert_eq!(votes.winner(&w).as_deref(), Some("on-demand"));
        let other = workload(WorkloadKind::Deployment, "other");
        assert_eq!(votes.winner(&other), None);
    }

    #[test]
    fn label_names_are_sanitized_like_kube_state_metrics() {
        assert_eq!(ksm_label("team"), "label_team");
        assert_eq!(
            ksm_label("karpenter.sh/nodepool"),
            "label_karpenter_sh_nodepool"
        );
    }
}

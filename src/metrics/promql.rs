//! PromQL text built from typed parts, with every label value escaped.
//!
//! Label values come from users (namespace regexes) and from the cluster
//! (namespace names); both go through [`escape`] so a quote or backslash can
//! never change the meaning of a query.

use std::fmt::{self, Write};

/// Escapes a string for a double-quoted PromQL string literal.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out
}

/// A label matcher operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::Ne => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        }
    }
}

/// A series selector: a metric name and label matchers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    metric: String,
    matchers: Vec<(String, Op, String)>,
}

impl Selector {
    pub fn new(metric: &str) -> Self {
        Selector {
            metric: metric.to_string(),
            matchers: Vec::new(),
        }
    }

    pub fn with(mut self, label: &str, op: Op, value: &str) -> Self {
        self.matchers
            .push((label.to_string(), op, value.to_string()));
        self
    }

    pub fn eq(self, label: &str, value: &str) -> Self {
        self.with(label, Op::Eq, value)
    }

    /// Adds matchers shared by every query of a run (cluster label, scope).
    pub fn scoped(mut self, scope: &Scope) -> Self {
        self.matchers.extend(scope.matchers.iter().cloned());
        self
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.metric)?;
        f.write_char('{')?;
        for (i, (label, op, value)) in self.matchers.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{label}{}\"{}\"", op.as_str(), escape(value))?;
        }
        f.write_char('}')
    }
}

/// Matchers every query of a run carries: the cluster label on shared
/// backends, and the namespace(s) being read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Scope {
    matchers: Vec<(String, Op, String)>,
}

impl Scope {
    pub fn new(cluster: Option<(&str, &str)>) -> Self {
        let mut scope = Scope::default();
        if let Some((label, value)) = cluster {
            scope
                .matchers
                .push((label.to_string(), Op::Eq, value.to_string()));
        }
        scope
    }

    /// This scope narrowed to one namespace.
    pub fn namespace(&self, namespace: &str) -> Scope {
        let mut scope = self.clone();
        scope
            .matchers
            .push(("namespace".to_string(), Op::Eq, namespace.to_string()));
        scope
    }

    /// This scope narrowed to namespaces matching any of `include` and none
    /// of `exclude` (regexes, anchored by PromQL).
    pub fn namespaces(&self, include: &[String], exclude: &[String]) -> Scope {
        let mut scope = self.clone();
        if !include.is_empty() {
            scope
                .matchers
                .push(("namespace".to_string(), Op::Re, alternation(include)));
        }
        if !exclude.is_empty() {
            scope
                .matchers
                .push(("namespace".to_string(), Op::NotRe, alternation(exclude)));
        }
        scope
    }
}

fn alternation(regexes: &[String]) -> String {
    if regexes.len() == 1 {
        return regexes[0].clone();
    }
    regexes
        .iter()
        .map(|r| format!("(?:{r})"))
        .collect::<Vec<_>>()
        .join("|")
}

/// Formats a duration for PromQL (`300s`).
pub fn range(seconds: i64) -> String {
    format!("{seconds}s")
}

/// The containers we size: not the pod cgroup (`container=""`) nor the
/// pause container (`POD`).
fn app_containers(selector: Selector) -> Selector {
    selector
        .with("container", Op::Ne, "")
        .with("container", Op::Ne, "POD")
}

/// Average cores per pod container over each `step` (counter resets are
/// handled by `rate`). Duplicate scrapes (several kubelet jobs) collapse
/// with `max by`.
pub fn cpu_usage(scope: &Scope, step_s: i64) -> String {
    let s = app_containers(Selector::new("container_cpu_usage_seconds_total").scoped(scope));
    format!(
        "max by (namespace, pod, container) (rate({s}[{}]))",
        range(step_s)
    )
}

/// Cumulative CPU seconds of every pod container series, as stored. Read
/// on a grid, the difference between two consecutive points over the step
/// is the average cores used in between: the same answer as `rate` over
/// the step for samples on the grid, at about a third of Prometheus' cost
/// (no range per step, no aggregation). The caller collapses duplicate
/// scrapes and drops the interval of a counter reset.
pub fn cpu_counter(scope: &Scope) -> String {
    app_containers(Selector::new("container_cpu_usage_seconds_total").scoped(scope)).to_string()
}

/// Peak working set per pod container over each `interval`.
pub fn memory_peak(scope: &Scope, interval_s: i64) -> String {
    let s = app_containers(Selector::new("container_memory_working_set_bytes").scoped(scope));
    format!(
        "max by (namespace, pod, container) (max_over_time({s}[{}]))",
        range(interval_s)
    )
}

/// CFS periods and throttled periods per pod container over `interval`.
pub fn cfs_periods(scope: &Scope, throttled: bool, interval_s: i64) -> String {
    let metric = if throttled {
        "container_cpu_cfs_throttled_periods_total"
    } else {
        "container_cpu_cfs_periods_total"
    };
    let s = app_containers(Selector::new(metric).scoped(scope));
    format!(
        "max by (namespace, pod, container) (increase({s}[{}]))",
        range(interval_s)
    )
}

/// Restarts per pod container over `interval`.
pub fn restarts(scope: &Scope, interval_s: i64) -> String {
    let s = Selector::new("kube_pod_container_status_restarts_total").scoped(scope);
    format!(
        "max by (namespace, pod, container) (increase({s}[{}]))",
        range(interval_s)
    )
}

/// 1 where the last termination over `interval` was an OOM kill.
pub fn oom_terminated(scope: &Scope, interval_s: i64) -> String {
    let s = Selector::new("kube_pod_container_status_last_terminated_reason")
        .eq("reason", "OOMKilled")
        .scoped(scope);
    format!(
        "max by (namespace, pod, container) (max_over_time({s}[{}]))",
        range(interval_s)
    )
}

/// Any series of `metric` seen in the last `lookback`, one per label set
/// of `by` (an instant query at the evaluation time).
pub fn seen(metric: Selector, by: &str, lookback_s: i64) -> String {
    format!(
        "max by ({by}) (last_over_time({metric}[{}]))",
        range(lookback_s)
    )
}

/// The latest sample of `metric` at the evaluation time (default lookback),
/// one per label set of `by`.
pub fn current(metric: Selector, by: &str) -> String {
    format!("max by ({by}) ({metric})")
}

/// Regexes (RE2, anchored by PromQL) matching exactly the given names, each
/// at most `max_names` names and, unless one name alone is longer, at most
/// `max_bytes` long: `a|b\.c|…`. Every name lands in exactly one batch, in
/// the order given, with its regex metacharacters escaped.
pub fn name_batches<'a>(
    names: impl IntoIterator<Item = &'a str>,
    max_names: usize,
    max_bytes: usize,
) -> Vec<String> {
    let mut batches = Vec::new();
    let mut current = String::new();
    let mut count = 0;
    for name in names {
        let escaped = regex::escape(name);
        let grown = current.len() + 1 + escaped.len();
        if count > 0 && (count >= max_names || grown > max_bytes) {
            batches.push(std::mem::take(&mut current));
            count = 0;
        }
        if count > 0 {
            current.push('|');
        }
        current.push_str(&escaped);
        count += 1;
    }
    if count > 0 {
        batches.push(current);
    }
    batches
}

/// The characters Kubernetes uses for generated name suffixes
/// (`rand.SafeEncodeString`: no vowels, no `0`, `1`, `3`), so a Deployment
/// named `web` does not claim the pods of `web-backend`.
const SAFE_CHARS: &str = "[bcdfghjklmnpqrstvwxz2456789]";

/// A regex (RE2, anchored) matching the names of a workload's pods, from
/// the names their controllers give them: `<deployment>-<template hash>-<5>`,
/// `<statefulset>-<ordinal>`, `<daemonset|job|replicaset>-<5>`,
/// `<cronjob>-<scheduled minute>-<5>`, a bare pod's own name.
pub fn pod_regex(kind: crate::domain::WorkloadKind, name: &str) -> String {
    use crate::domain::WorkloadKind;
    let name = regex::escape(name);
    match kind {
        WorkloadKind::Deployment => format!("^{name}-{SAFE_CHARS}{{1,10}}-{SAFE_CHARS}{{5}}$"),
        WorkloadKind::StatefulSet => format!("^{name}-[0-9]+$"),
        WorkloadKind::DaemonSet | WorkloadKind::Job | WorkloadKind::ReplicaSet => {
            format!("^{name}-{SAFE_CHARS}{{5}}$")
        }
        WorkloadKind::CronJob => format!("^{name}-[0-9]+-{SAFE_CHARS}{{5}}$"),
        WorkloadKind::Pod => format!("^{name}$"),
    }
}

/// The label matchers (without braces) selecting a workload's pods:
/// the scope's (cluster label), `namespace` and `pod=~`, values escaped.
pub fn workload_matchers(scope: &Scope, namespace: &str, pod_regex: &str) -> String {
    let mut matchers = scope.matchers.clone();
    matchers.push(("namespace".to_string(), Op::Eq, namespace.to_string()));
    matchers.push(("pod".to_string(), Op::Re, pod_regex.to_string()));
    matchers
        .iter()
        .map(|(label, op, value)| format!("{label}{}\"{}\"", op.as_str(), escape(value)))
        .collect::<Vec<_>>()
        .join(",")
}

/// What the placeholders of an SLI template stand for. `namespace`, `name`
/// and `pod_regex` are raw: [`render`] escapes them; `selector` and
/// `window` are PromQL text already.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateValues {
    pub namespace: String,
    pub name: String,
    pub pod_regex: String,
    pub selector: String,
    pub window: String,
}

/// Fills `{namespace}`, `{name}`, `{pod_regex}`, `{selector}` and
/// `{window}` in one pass (a value that itself reads `{window}` stays as
/// it is). Any other `{word}` is left alone; config validation refuses it.
pub fn render(template: &str, values: &TemplateValues) -> String {
    crate::config::fill_placeholders(template, |word| match word {
        "namespace" => Some(escape(&values.namespace)),
        "name" => Some(escape(&values.name)),
        "pod_regex" => Some(escape(&values.pod_regex)),
        "selector" => Some(values.selector.clone()),
        "window" => Some(values.window.clone()),
        _ => None,
    })
}

/// A counter per pod container, raw (the caller takes per-minute
/// differences, exact whatever the scrape interval).
pub fn container_counter(metric: &str, matchers: &str) -> String {
    format!("max by (pod, container) ({metric}{{{matchers}}})")
}

/// 1 while a pod container's last termination was an OOM kill.
pub fn oom_reason(matchers: &str) -> String {
    format!(
        "max by (pod, container) (kube_pod_container_status_last_terminated_reason{{{matchers},reason=\"OOMKilled\"}})"
    )
}

/// Throttled CFS periods over all periods for the selected containers,
/// as a rate over `range_s` (two scrapes at least).
pub fn throttled_ratio(matchers: &str, range_s: i64) -> String {
    let r = range(range_s);
    format!(
        "sum(rate(container_cpu_cfs_throttled_periods_total{{{matchers},container!=\"\",container!=\"POD\"}}[{r}])) \
         / sum(rate(container_cpu_cfs_periods_total{{{matchers},container!=\"\",container!=\"POD\"}}[{r}]))"
    )
}

/// Ready pods of a workload, and the pods it wants (kube-state-metrics);
/// `None` for kinds without a desired count (Jobs, CronJobs, bare pods).
pub fn ready_and_desired(
    scope: &Scope,
    kind: crate::domain::WorkloadKind,
    namespace: &str,
    name: &str,
    pod_matchers: &str,
) -> Option<(String, String)> {
    use crate::domain::WorkloadKind;
    let (metric, label) = match kind {
        WorkloadKind::Deployment => ("kube_deployment_spec_replicas", "deployment"),
        WorkloadKind::StatefulSet => ("kube_statefulset_replicas", "statefulset"),
        WorkloadKind::DaemonSet => (
            "kube_daemonset_status_desired_number_scheduled",
            "daemonset",
        ),
        WorkloadKind::ReplicaSet => ("kube_replicaset_spec_replicas", "replicaset"),
        _ => return None,
    };
    let ready = format!("sum(kube_pod_status_ready{{{pod_matchers},condition=\"true\"}})");
    let desired = Selector::new(metric)
        .scoped(&scope.namespace(namespace))
        .eq(label, name);
    Some((ready, format!("max({desired})")))
}

/// Pod containers whose throttled ratio over `(at - range_s, at]` is above
/// `ratio`, across the scope.
pub fn throttled_containers(scope: &Scope, range_s: i64, ratio: f64) -> String {
    let throttled = cfs_periods(scope, true, range_s);
    let all = cfs_periods(scope, false, range_s);
    format!("({throttled}) / ({all}) > {ratio}")
}

/// A counter per namespace, pod and container across the scope, raw.
pub fn scoped_counter(scope: &Scope, metric: &str) -> String {
    let s = Selector::new(metric).scoped(scope);
    format!("max by (namespace, pod, container) ({s})")
}

/// 1 while the last termination was an OOM kill, across the scope.
pub fn scoped_oom_reason(scope: &Scope) -> String {
    let s = Selector::new("kube_pod_container_status_last_terminated_reason")
        .eq("reason", "OOMKilled")
        .scoped(scope);
    format!("max by (namespace, pod, container) ({s})")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::WorkloadKind;

    fn values() -> TemplateValues {
        TemplateValues {
            namespace: "shop\"x".into(),
            name: "web".into(),
            pod_regex: pod_regex(WorkloadKind::StatefulSet, "db.main"),
            selector: workload_matchers(&Scope::new(Some(("cluster", "eu"))), "shop", "^web$"),
            window: "60s".into(),
        }
    }

    #[test]
    fn templates_render_every_placeholder_escaped() {
        let q = render(
            r#"sum(increase(http_requests_total{{selector},code=~"5.."}[{window}]))"#,
            &values(),
        );
        assert_eq!(
            q,
            r#"sum(increase(http_requests_total{cluster="eu",namespace="shop",pod=~"^web$",code=~"5.."}[60s]))"#
        );
        let q = render(
            r#"m{ns="{namespace}",pod=~"{pod_regex}",w="{name}"}"#,
            &values(),
        );
        assert_eq!(q, r#"m{ns="shop\"x",pod=~"^db\\.main-[0-9]+$",w="web"}"#);
        // Unknown words and PromQL's own braces are left alone; values are
        // not rendered twice.
        let mut v = values();
        v.name = "{window}".into();
        assert_eq!(
            render("{name} {other} {a=\"b\"} {", &v),
            "{window} {other} {a=\"b\"} {"
        );
    }

    #[test]
    fn pod_regexes_follow_the_controllers_names() {
        let matches = |kind, name: &str, pod: &str| {
            regex::Regex::new(&pod_regex(kind, name))
                .unwrap()
                .is_match(pod)
        };
        assert!(matches(
            WorkloadKind::Deployment,
            "web",
            "web-7c9f8d6b5d-x2k4p"
        ));
        assert!(!matches(
            WorkloadKind::Deployment,
            "web",
            "web-backend-x2k4p"
        ));
        assert!(!matches(
            WorkloadKind::Deployment,
            "web",
            "web-api-7c9f8d6b5d-x2k4p"
        ));
        assert!(matches(WorkloadKind::StatefulSet, "db", "db-12"));
        assert!(!matches(WorkloadKind::StatefulSet, "db", "db-replica-0"));
        assert!(matches(WorkloadKind::DaemonSet, "agent", "agent-x2k4p"));
        assert!(matches(
            WorkloadKind::CronJob,
            "nightly",
            "nightly-28930140-x2k4p"
        ));
        assert!(matches(WorkloadKind::Pod, "a.b", "a.b"));
        assert!(!matches(WorkloadKind::Pod, "a.b", "axb"));
    }

    #[test]
    fn signal_queries_carry_the_workload_matchers() {
        let scope = Scope::new(None);
        let m = workload_matchers(&scope, "shop", "^db-[0-9]+$");
        assert_eq!(
            oom_reason(&m),
            r#"max by (pod, container) (kube_pod_container_status_last_terminated_reason{namespace="shop",pod=~"^db-[0-9]+$",reason="OOMKilled"})"#
        );
        let (ready, desired) =
            ready_and_desired(&scope, WorkloadKind::StatefulSet, "shop", "db", &m).unwrap();
        assert!(ready.contains(r#"condition="true""#), "{ready}");
        assert_eq!(
            desired,
            r#"max(kube_statefulset_replicas{namespace="shop",statefulset="db"})"#
        );
        assert!(ready_and_desired(&scope, WorkloadKind::CronJob, "shop", "x", &m).is_none());
        assert!(throttled_ratio(&m, 120).contains("[120s]"));
    }

    #[test]
    fn name_batches_are_bounded_escaped_and_complete() {
        let names: Vec<String> = (0..250)
            .map(|i| format!("web-{i:03}.x{}", "y".repeat(i % 40)))
            .collect();
        let batches = name_batches(names.iter().map(String::as_str), 100, 1000);
        assert!(batches.len() >= 3, "{}", batches.len());
        let mut seen = Vec::new();
        for batch in &batches {
            assert!(batch.len() <= 1000, "{} bytes", batch.len());
            let parts: Vec<&str> = batch.split('|').collect();
            assert!(parts.len() <= 100);
            let matcher = regex::Regex::new(&format!("^(?:{batch})$")).unwrap();
            for part in parts {
                assert!(part.contains(r"\."), "dots escaped: {part}");
                seen.push(part.replace('\\', ""));
            }
            // Anchored, the regex matches its own names and nothing near them.
            assert!(!matcher.is_match("web-000Zx"));
        }
        assert_eq!(seen, names, "every name once, in order");
        for (i, name) in names.iter().enumerate() {
            let holding = batches
                .iter()
                .filter(|b| {
                    regex::Regex::new(&format!("^(?:{b})$"))
                        .unwrap()
                        .is_match(name)
                })
                .count();
            assert_eq!(holding, 1, "name {i} in exactly one batch");
        }
        // The count bound alone, a name longer than the byte bound, none.
        assert_eq!(name_batches(["a"; 5], 2, 1000), ["a|a", "a|a", "a"]);
        assert_eq!(
            name_batches(["a", "bbbbbb", "c"], 10, 4),
            ["a", "bbbbbb", "c"]
        );
        assert!(name_batches([], 10, 10).is_empty());
    }

    #[test]
    fn escapes_quotes_backslashes_and_newlines() {
        assert_eq!(escape(r#"a"b\c"#), r#"a\"b\\c"#);
        assert_eq!(escape("x\ny"), "x\\ny");
        let s = Selector::new("m").eq("namespace", "evil\"} or vector(1) #");
        assert_eq!(s.to_string(), r#"m{namespace="evil\"} or vector(1) #"}"#);
    }

    #[test]
    fn scope_carries_cluster_and_namespaces() {
        let scope = Scope::new(Some(("cluster", "prod")))
            .namespaces(&["shop".into(), "pay.*".into()], &["kube-system".into()]);
        let q = cpu_usage(&scope, 300);
        assert_eq!(
            q,
            r#"max by (namespace, pod, container) (rate(container_cpu_usage_seconds_total{cluster="prod",namespace=~"(?:shop)|(?:pay.*)",namespace!~"kube-system",container!="",container!="POD"}[300s]))"#
        );
    }

    #[test]
    fn one_namespace_scope_is_an_equality() {
        let q = memory_peak(&Scope::new(None).namespace("a\\b"), 3600);
        assert!(q.contains(r#"namespace="a\\b""#), "{q}");
        assert!(q.contains("[3600s]"), "{q}");
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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

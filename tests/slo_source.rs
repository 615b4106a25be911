//! `PrometheusSource` against a real Prometheus holding an hour of HTTP,
//! kube-state-metrics and cAdvisor series written here (the history
//! generator writes no HTTP or readiness series): the SLIs and resource
//! signals must be exactly the numbers generated.

use std::collections::BTreeMap;
use std::fmt::Write;

use tailor::config::{Config, PolicyMatch, SliTemplate, SloConfig};
use tailor::domain::{WorkloadKind, WorkloadRef};
use tailor::metrics::source::PrometheusSource;
use tailor::ports::SloSource;

use crate::support::prometheus::Prometheus;

/// Minute-aligned start; samples every 15 s for an hour.
const START: i64 = 1_699_999_980;
const MINUTES: i64 = 60;
const SCRAPE_S: i64 = 15;
const PODS: [&str; 2] = ["web-7c9f8d6b5d-x2k4p", "web-7c9f8d6b5d-b5n7q"];
/// A Deployment `web-backend`: its pods must never count for `web`.
const DECOY: &str = "web-backend-7c9f8d6b5d-zzzzz";

/// Requests per pod in minute `m` (multiples of 4: four scrapes a minute).
fn requests(m: i64) -> f64 {
    (40 + 4 * (m % 5)) as f64
}
fn errors(m: i64) -> f64 {
    if (30..35).contains(&m) { 4.0 } else { 0.0 }
}
fn slow(m: i64) -> bool {
    (40..45).contains(&m)
}
/// Throttled CFS periods per pod in minute `m`, of 400.
fn throttled(m: i64) -> f64 {
    if (50..55).contains(&m) { 160.0 } else { 40.0 }
}

/// The end of minute `m`: its sample's timestamp.
fn end_of(m: i64) -> i64 {
    START + 60 * (m + 1)
}

struct Family {
    text: String,
}

impl Family {
    fn new(name: &str, ty: &str) -> Self {
        Family {
            text: format!("# TYPE {name} {ty}\n"),
        }
    }
    /// One series: `value(t)` at every scrape.
    fn series(&mut self, name: &str, labels: &str, value: impl Fn(i64) -> f64) {
        let mut t = START;
        while t <= START + 60 * MINUTES {
            writeln!(self.text, "{name}{{{labels}}} {} {t}", value(t)).unwrap();
            t += SCRAPE_S;
        }
    }
}

/// A counter that rises linearly within each minute by `per_minute(m)`.
fn counter(per_minute: impl Fn(i64) -> f64) -> impl Fn(i64) -> f64 {
    move |t| {
        let elapsed = t - START;
        let whole = elapsed / 60;
        let part = (elapsed % 60) as f64 / 60.0;
        (0..whole).map(&per_minute).sum::<f64>() + per_minute(whole) * part
    }
}

fn openmetrics() -> String {
    let mut out = String::new();
    let mut http = Family::new("http_requests", "counter");
    let mut buckets = Family::new("http_request_duration_seconds_bucket", "gauge");
    let mut restarts = Family::new("kube_pod_container_status_restarts_total", "gauge");
    let mut reason = Family::new("kube_pod_container_status_last_terminated_reason", "gauge");
    let mut ready = Family::new("kube_pod_status_ready", "gauge");
    let mut periods = Family::new("container_cpu_cfs_periods", "counter");
    let mut thr = Family::new("container_cpu_cfs_throttled_periods", "counter");
    let mut pods: Vec<(&str, f64)> = PODS.iter().map(|p| (*p, 1.0)).collect();
    pods.push((DECOY, 100.0));
    for (i, (pod, scale)) in pods.iter().copied().enumerate() {
        let base = format!(r#"namespace="shop",pod="{pod}""#);
        http.series(
            "http_requests_total",
            &format!(r#"{base},code="200""#),
            counter(move |m| scale * (requests(m) - errors(m))),
        );
        http.series(
            "http_requests_total",
            &format!(r#"{base},code="500""#),
            counter(move |m| scale * errors(m)),
        );
        // Cumulative buckets: fast minutes in (0.1, 0.25], slow in (0.25, 0.5].
        for le in ["0.1", "0.25", "0.5", "+Inf"] {
            let count = move |m: i64| {
                let n = scale * requests(m);
                match le {
                    "0.1" => 0.0,
                    "0.25" if slow(m) => 0.0,
                    _ => n,
                }
            };
            buckets.series(
                "http_request_duration_seconds_bucket",
                &format!(r#"{base},le="{le}""#),
                counter(count),
            );
        }
        let c = format!(r#"{base},container="app""#);
        // Pod 0: one OOM kill in minute 20; pod 1: a plain restart in 25;
        // the decoy restarts every minute.
        let restart_minute = [20, 25, 0][i];
        restarts.series("kube_pod_container_status_restarts_total", &c, move |t| {
            if i == 2 {
                ((t - START) / 60) as f64
            } else if t >= START + 60 * restart_minute + 30 {
                1.0
            } else {
                0.0
            }
        });
        if i == 0 {
            reason.series(
                "kube_pod_container_status_last_terminated_reason",
                &format!(r#"{c},reason="OOMKilled""#),
                |t| if t >= START + 60 * 20 + 30 { 1.0 } else { 0.0 },
            );
        }
        // Pod 1 is not ready for minutes 10 and 11.
        ready.series(
            "kube_pod_status_ready",
            &format!(r#"{base},condition="true""#),
            move |t| {
                let down = i == 1 && t > START + 600 && t <= START + 720;
                if down || i == 2 { 0.0 } else { 1.0 }
            },
        );
        periods.series(
            "container_cpu_cfs_periods_total",
            &c,
            counter(move |_| 400.0),
        );
        thr.series(
            "container_cpu_cfs_throttled_periods_total",
            &c,
            counter(move |m| if i == 2 { 400.0 } else { throttled(m) }),
        );
    }
    let mut replicas = Family::new("kube_deployment_spec_replicas", "gauge");
    replicas.series(
        "kube_deployment_spec_replicas",
        r#"namespace="shop",deployment="web""#,
        |_| 2.0,
    );
    for family in [
        http, buckets, restarts, reason, ready, periods, thr, replicas,
    ] {
        out.push_str(&family.text);
    }
    out.push_str("# EOF\n");
    out
}

fn prometheus() -> &'static Prometheus {
    static SHARED: std::sync::OnceLock<Prometheus> = std::sync::OnceLock::new();
    SHARED.get_or_init(|| Prometheus::start_with_openmetrics(&openmetrics()))
}

fn source(templates: Vec<SliTemplate>) -> PrometheusSource {
    let mut config = Config::default();
    config.prometheus.url = prometheus().url();
    config.slo = SloConfig { templates };
    PrometheusSource::from_config(config).expect("source")
}

fn web() -> WorkloadRef {
    WorkloadRef {
        namespace: "shop".into(),
        kind: WorkloadKind::Deployment,
        name: "web".into(),
    }
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9 * b.abs().max(1.0)
}

#[test]
fn slis_are_the_generated_requests_errors_and_latency() {
    let source = source(vec![SliTemplate::http()]);
    // Minutes 28..45: errors in 30..35, slow in 40..45.
    let samples = block_on(source.slis(&web(), end_of(27), end_of(45)))
        .expect("query")
        .expect("the http template matches");
    assert_eq!(samples.len(), 18, "{samples:#?}");
    for (s, m) in samples.iter().zip(28..) {
        assert_eq!(s.t, end_of(m));
        assert!(close(s.requests, 2.0 * requests(m)), "minute {m}: {s:?}");
        assert!(close(s.errors, 2.0 * errors(m)), "minute {m}: {s:?}");
        // histogram_quantile interpolates linearly inside the bucket.
        let (low, high) = if slow(m) { (0.25, 0.5) } else { (0.1, 0.25) };
        let p95 = s.latency_p95_s.expect("p95");
        let p99 = s.latency_p99_s.expect("p99");
        assert!(close(p95, low + (high - low) * 0.95), "minute {m}: {s:?}");
        assert!(close(p99, low + (high - low) * 0.99), "minute {m}: {s:?}");
    }
}

#[test]
fn templates_match_by_namespace_and_a_workload_without_the_metric_has_no_sli() {
    let elsewhere = SliTemplate {
        name: "elsewhere".into(),
        matches: PolicyMatch {
            namespaces: Some("other".into()),
            selector: None,
        },
        requests: "sum(increase(nothing_total{{selector}}[{window}]))".into(),
        errors: "sum(increase(nothing_total{{selector}}[{window}]))".into(),
        latency_p95: None,
        latency_p99: None,
    };
    let source = source(vec![elsewhere.clone(), SliTemplate::istio()]);
    // Istio matches, but `web` exports no Istio metric: no SLI at all.
    let none = block_on(source.slis(&web(), end_of(10), end_of(20))).expect("query");
    assert_eq!(none, None);
    let source = self::source(vec![elsewhere]);
    assert_eq!(
        block_on(source.slis(&web(), end_of(10), end_of(20))).expect("query"),
        None
    );
    // Data that existed earlier but not in the window is missing, not absent.
    let source = self::source(vec![SliTemplate::http()]);
    let missing = block_on(source.slis(&web(), end_of(70), end_of(80))).expect("query");
    assert_eq!(missing, Some(Vec::new()));
}

#[test]
fn resource_signals_are_the_generated_restarts_throttling_and_readiness() {
    let source = source(Vec::new());
    let samples = block_on(source.resource_signals(&web(), end_of(5), end_of(58))).expect("query");
    assert_eq!(samples.len(), 53);
    let by_minute: BTreeMap<i64, _> = samples.iter().map(|s| (s.t, s)).collect();
    for m in 6..=58 {
        let s = by_minute[&end_of(m)];
        let (oom, restarts) = match m {
            20 => (1, 1),
            25 => (0, 1),
            _ => (0, 0),
        };
        assert_eq!((s.oom_kills, s.restarts), (oom, restarts), "minute {m}");
        let ready = if m == 10 || m == 11 { 0.5 } else { 1.0 };
        assert_eq!(s.ready_ratio, Some(ready), "minute {m}");
        // A rate over two minutes: the mean of this minute and the last.
        let expected = (throttled(m) + throttled(m - 1)) / 800.0;
        let got = s.throttled_ratio.expect("throttled ratio");
        assert!(close(got, expected), "minute {m}: {got} vs {expected}");
    }
}

#[test]
fn urgent_news_names_the_oom_killed_and_throttled_containers() {
    let source = source(Vec::new());
    let urgent = block_on(source.urgent_containers(end_of(18), end_of(22))).expect("query");
    let web: Vec<_> = urgent.iter().filter(|u| u.pod != DECOY).collect();
    assert_eq!(web.len(), 1, "{urgent:#?}");
    assert_eq!(web[0].pod, PODS[0]);
    assert_eq!(web[0].container, "app");
    assert_eq!(web[0].oom_kill_at, Some(end_of(20)));
    let urgent = block_on(source.urgent_containers(end_of(50), end_of(54))).expect("query");
    let mut pods: Vec<&str> = urgent.iter().map(|u| u.pod.as_str()).collect();
    pods.sort();
    let mut expected = vec![PODS[0], PODS[1], DECOY];
    expected.sort();
    assert_eq!(pods, expected, "{urgent:#?}");
    assert!(urgent.iter().all(|u| u.oom_kill_at.is_none()));
}

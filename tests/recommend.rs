//! `tailor recommend` against real backends: a real Prometheus (backfilled
//! with promtool) and a real VictoriaMetrics, holding a generated history
//! whose expected recommendations this file computes on its own, from the
//! same usage functions, without tailor's estimators.

use std::collections::BTreeMap;
use std::sync::Arc;

use tailor::config::Config;
use tailor::domain::{ResourceKind, Resources, WorkloadKind};
use tailor::recommend::Recommendation;
use tailor::scan::{self, ScanOutcome};
use tailor::sim::history::{ContainerSpec, HistorySpec, HpaSpec, UsageFn, WorkloadSpec, constant};
use tailor::units::{Bytes, MilliCores};

use crate::support::prometheus::Prometheus;
use crate::support::victoria::VictoriaMetrics;

/// 2026-10-01T00:00:00Z: histories end here and `--at` evaluates here.
const END: i64 = 1_790_812_800;
const DAY: i64 = 86_400;
const DAYS: i64 = 10;
const STEP: i64 = 300;
const MIB: f64 = 1_048_576.0;

/// A value fixed for each 5-minute step of the grid (so `rate` over that
/// step recovers it exactly), spread over [lo, hi) by a hash of the step.
pub fn stepped(lo: f64, hi: f64, salt: u64) -> UsageFn {
    Arc::new(move |t, replica| {
        // The grid step that ends at or after t: samples in (k·STEP, (k+1)·STEP].
        let step = (t + STEP - 1).div_euclid(STEP);
        lo + (hi - lo) * unit_hash(step as u64 ^ (salt << 32) ^ ((replica as u64) << 48))
    })
}

fn unit_hash(x: u64) -> f64 {
    let x = (x ^ (x >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    let x = (x ^ (x >> 33)).wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    ((x ^ (x >> 33)) >> 11) as f64 / (1u64 << 53) as f64
}

fn res(cpu: u64, mem_mib: u64) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(cpu)),
        cpu_limit: None,
        memory_request: Some(Bytes::mib(mem_mib)),
        memory_limit: Some(Bytes::mib(mem_mib)),
    }
}

/// The history every backend test reads.
fn spec() -> HistorySpec {
    let web = WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "web",
        2,
        vec![ContainerSpec::new(
            "app",
            res(1000, 1024),
            stepped(0.05, 0.45, 1),
            stepped(200.0 * MIB, 300.0 * MIB, 2),
        )],
    );
    let mut web = web;
    web.labels = BTreeMap::from([("app".to_string(), "web".to_string())]);
    let mut churn = web.clone();
    churn.name = "churn".into();
    churn.labels = BTreeMap::from([("app".to_string(), "churn".to_string())]);
    churn.pod_lifetime_s = Some(2 * DAY);
    churn.init_containers = vec!["migrate".into()];
    churn.containers.push(ContainerSpec::new(
        "envoy",
        res(200, 128),
        constant(0.01),
        constant(30.0 * MIB),
    ));
    let mut hpa = web.clone();
    hpa.name = "scaled".into();
    hpa.labels = BTreeMap::from([("app".to_string(), "scaled".to_string())]);
    hpa.hpa = Some(HpaSpec {
        resource: ResourceKind::Cpu,
        target_utilization_percent: 60,
    });
    let mut oom = WorkloadSpec::new(
        "batch",
        WorkloadKind::Deployment,
        "worker",
        1,
        vec![ContainerSpec::new(
            "worker",
            res(500, 256),
            constant(0.2),
            stepped(150.0 * MIB, 250.0 * MIB, 3),
        )],
    );
    oom.containers[0].oom_kill_times = vec![END - 3 * DAY];
    let young_start = END - 2 * DAY;
    let young = WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "young",
        1,
        vec![ContainerSpec::new(
            "app",
            res(1000, 1024),
            Arc::new(move |t, _| if t < young_start { f64::NAN } else { 0.05 }),
            Arc::new(move |t, _| {
                if t < young_start {
                    f64::NAN
                } else {
                    100.0 * MIB
                }
            }),
        )],
    );
    HistorySpec {
        start: END - DAYS * DAY,
        end: END,
        scrape_interval_s: 60,
        workloads: vec![web, churn, hpa, oom, young],
        nodes: Vec::new(),
    }
}

fn config(url: &str) -> Config {
    let mut config = Config::default();
    config.prometheus.url = url.to_string();
    config.history.window = std::time::Duration::from_secs((DAYS * DAY) as u64);
    config
}

fn run(config: &Config) -> ScanOutcome {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime
        .block_on(scan::scan(config, END, &|_, _| {}))
        .expect("scan succeeds")
}

fn find<'a>(outcome: &'a ScanOutcome, workload: &str, container: &str) -> &'a Recommendation {
    outcome
        .recommendations
        .iter()
        .find(|r| r.target.workload.name == workload && r.target.container == container)
        .unwrap_or_else(|| panic!("no row for {workload}:{container}"))
}

/// Weighted percentile over (value, weight) pairs: the smallest value with
/// at least `p` of the weight at or below it.
fn weighted_percentile(mut samples: Vec<(f64, f64)>, p: f64) -> f64 {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total: f64 = samples.iter().map(|s| s.1).sum();
    let mut cumulative = 0.0;
    for (v, w) in &samples {
        cumulative += w;
        if cumulative >= p * total * (1.0 - 1e-9) {
            return *v;
        }
    }
    samples.last().map_or(0.0, |s| s.0)
}

fn decay(t: i64) -> f64 {
    (-((END - t) as f64) / DAY as f64).exp2()
}

/// What the default policy should give for `web:app`, from first principles.
struct Expected {
    cpu_request_m: f64,
    memory_request_bytes: f64,
    memory_peak_bytes: f64,
}

fn expected_web(replicas: u32) -> Expected {
    let cpu = stepped(0.05, 0.45, 1);
    let mem = stepped(200.0 * MIB, 300.0 * MIB, 2);
    let mut cpu_samples = Vec::new();
    let mut peaks = Vec::new();
    let mut peak = 0.0f64;
    for r in 0..replicas {
        let mut t = END - DAYS * DAY + STEP;
        while t <= END {
            cpu_samples.push((cpu(t, r) * 1000.0, decay(t)));
            t += STEP;
        }
        // Hourly peaks of the per-scrape memory values in (t - 1h, t].
        let mut t = END - DAYS * DAY + 3600;
        while t <= END {
            let hour_peak = (t - 3600 + 60..=t)
                .step_by(60)
                .map(|s| mem(s, r))
                .fold(0.0, f64::max);
            peaks.push((hour_peak, decay(t)));
            peak = peak.max(hour_peak);
            t += 3600;
        }
    }
    Expected {
        cpu_request_m: weighted_percentile(cpu_samples, 0.90) * 1.15,
        memory_request_bytes: weighted_percentile(peaks, 0.98) * 1.15,
        memory_peak_bytes: peak,
    }
}

/// Checks every expectation of the spec against one backend's answer.
fn check(outcome: &ScanOutcome, backend: &str) {
    let rows: Vec<String> = outcome
        .recommendations
        .iter()
        .map(|r| r.target.to_string())
        .collect();
    assert_eq!(
        rows.len(),
        6,
        "{backend}: web, churn (app + envoy, no init container), scaled, worker, young: {rows:?}"
    );
    assert!(
        !rows.iter().any(|r| r.contains("migrate")),
        "{backend}: init containers are never sized"
    );

    // web:app, computed independently. The histogram reads the upper edge of
    // a 5 % bucket, and requests round up to 5m / 1 MiB.
    let want = expected_web(2);
    let web = find(outcome, "web", "app");
    assert_eq!(web.skipped_reason, None, "{backend}: {web:?}");
    let cpu = web.recommended.cpu_request.expect("cpu request").0 as f64;
    assert!(
        cpu >= want.cpu_request_m - 1.0 && cpu <= want.cpu_request_m * 1.05 + 5.0,
        "{backend}: cpu {cpu}m, expected {:.1}m (+5 %)",
        want.cpu_request_m
    );
    let mem = web
        .recommended
        .memory_request
        .expect("memory request")
        .as_f64();
    assert!(
        mem >= want.memory_request_bytes - MIB && mem <= want.memory_request_bytes * 1.05 + MIB,
        "{backend}: memory {mem}, expected {:.0} (+5 %)",
        want.memory_request_bytes
    );
    let limit = web.recommended.memory_limit.expect("memory limit").as_f64();
    assert!(
        limit >= want.memory_peak_bytes * 1.2,
        "{backend}: limit {limit} under peak × 1.2"
    );
    assert_eq!(web.evidence.replicas, 2);
    assert!(web.savings_per_month_usd > 0.0);
    assert!(
        web.evidence.coverage > 0.95,
        "{backend}: coverage {}",
        web.evidence.coverage
    );

    // Pod churn: five generations of pods feed one row with the same answer.
    let churn = find(outcome, "churn", "app");
    let churn_cpu = churn.recommended.cpu_request.expect("cpu").0 as f64;
    assert!(
        (churn_cpu - cpu).abs() <= cpu * 0.06 + 5.0,
        "{backend}: churn {churn_cpu} vs web {cpu}"
    );
    assert!(churn.evidence.cpu_samples >= 2 * (DAYS * DAY / STEP) as u64 * 95 / 100);
    let envoy = find(outcome, "churn", "envoy");
    // 10m × 1.15 rounds to 15m, above the 10m minimum.
    assert_eq!(
        envoy.recommended.cpu_request,
        Some(MilliCores(15)),
        "{backend}"
    );

    // HPA on CPU: CPU kept, memory still sized.
    let scaled = find(outcome, "scaled", "app");
    assert_eq!(
        scaled.recommended.cpu_request,
        Some(MilliCores(1000)),
        "{backend}"
    );
    assert!(scaled.recommended.memory_request < Some(Bytes::mib(1024)));
    assert!(
        scaled.evidence.notes.iter().any(|n| n.contains("HPA")),
        "{backend}: {:?}",
        scaled.evidence.notes
    );

    // The OOM kill raises memory to max(256Mi × 1.2, 256Mi + 100Mi) = 356Mi.
    let worker = find(outcome, "worker", "worker");
    assert_eq!(
        worker.evidence.oom_kills, 1,
        "{backend}: {:?}",
        worker.evidence
    );
    assert!(
        worker.recommended.memory_limit >= Some(Bytes::mib(356)),
        "{backend}: {:?}",
        worker.recommended
    );
    assert!(worker.recommended.memory_request >= Some(Bytes::mib(256)));

    // Two days of history: decreases refused, no guess.
    let young = find(outcome, "young", "app");
    assert_eq!(young.recommended, young.current, "{backend}");
    assert!(
        young
            .skipped_reason
            .as_deref()
            .is_some_and(|r| r.contains("insufficient data")),
        "{backend}: {:?}",
        young.skipped_reason
    );
}

#[test]
fn recommends_from_a_real_prometheus() {
    let prometheus = Prometheus::shared("recommend", spec);
    let outcome = run(&config(&prometheus.url()));
    check(&outcome, "prometheus");
    assert_eq!(
        outcome.skipped.get("NaN or infinite sample dropped"),
        None,
        "{:?}",
        outcome.skipped
    );
}

/// The daemon's refreshes: a whole-window read six hours before the end,
/// then two reads of only the hours since, give the one-shot answer.
#[test]
fn refreshes_read_only_what_is_new_and_give_the_one_shot_answer() {
    let prometheus = Prometheus::shared("recommend", spec);
    let config = config(&prometheus.url());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let client = tailor::metrics::PromClient::new(&config.prometheus)
        .expect("client")
        .with_backend_stats();
    let mut history = None;
    let mut refresh = |at: i64| {
        let before = client.counts();
        let outcome = runtime
            .block_on(scan::scan_incremental(
                &client,
                &config,
                at,
                &mut history,
                &|_, _| {},
            ))
            .expect("refresh succeeds");
        let after = client.counts();
        (
            outcome,
            after.queries - before.queries,
            after.samples_touched - before.samples_touched,
        )
    };
    let (first, _, full_samples) = refresh(END - 6 * 3600);
    assert_eq!(first.at, END - 6 * 3600);
    let (_, _, three_hours) = refresh(END - 3 * 3600);
    let (last, queries, last_samples) = refresh(END);
    assert_eq!(last.at, END);
    check(&last, "prometheus, refreshed");
    // Three hours of news: a small share of what the whole window costs.
    assert!(
        three_hours * 20 < full_samples && last_samples * 20 < full_samples,
        "samples: whole window {full_samples}, refreshes {three_hours} and {last_samples}"
    );
    assert!(queries > 0);

    let one_shot = run(&config);
    for r in &one_shot.recommendations {
        let container = r.target.container.as_str();
        let refreshed = find(&last, &r.target.workload.name, container);
        assert_eq!(refreshed.skipped_reason, r.skipped_reason, "{}", r.target);
        assert_eq!(
            refreshed.evidence.oom_kills, r.evidence.oom_kills,
            "{}",
            r.target
        );
        let values = |r: &Recommendation| {
            (
                r.recommended.cpu_request.map_or(0.0, |m| m.0 as f64),
                r.recommended.memory_request.map_or(0.0, Bytes::as_f64),
            )
        };
        let ((cpu, mem), (cpu_now, mem_now)) = (values(r), values(refreshed));
        // One 5 % histogram bucket, plus rounding.
        assert!(
            (cpu - cpu_now).abs() <= cpu * 0.051 + 5.0,
            "{}: {cpu} vs {cpu_now}",
            r.target
        );
        assert!(
            (mem - mem_now).abs() <= mem * 0.051 + MIB,
            "{}: {mem} vs {mem_now}",
            r.target
        );
    }
}

#[test]
fn selectors_and_policies_narrow_and_tune_the_run() {
    let prometheus = Prometheus::shared("recommend", spec);
    let mut config = config(&prometheus.url());
    config.selection.selector = Some("app=web".into());
    let outcome = run(&config);
    let rows: Vec<String> = outcome
        .recommendations
        .iter()
        .map(|r| r.target.to_string())
        .collect();
    assert_eq!(
        rows,
        ["shop/Deployment/web:app"],
        "only pods labelled app=web"
    );

    // A namespace policy with a lower percentile gives a lower request there only.
    let mut config = self::config(&prometheus.url());
    config.selection.namespaces = vec!["shop".into()];
    let default_web = find(&run(&config), "web", "app").recommended.cpu_request;
    let mut policy = tailor::config::Policy::default();
    policy.cpu.percentile = 50.0;
    config.policies.push(tailor::config::PolicyRule {
        name: "median".into(),
        matches: tailor::config::PolicyMatch {
            namespaces: Some("sh.p".into()),
            selector: None,
        },
        policy,
    });
    let outcome = run(&config);
    assert!(
        outcome
            .recommendations
            .iter()
            .all(|r| r.target.workload.namespace == "shop")
    );
    let median_web = find(&outcome, "web", "app").recommended.cpu_request;
    assert!(
        median_web < default_web,
        "p50 {median_web:?} < p90 {default_web:?}"
    );
}

#[test]
fn recommends_from_a_real_victoria_metrics() {
    let vm = VictoriaMetrics::start_with_history(&spec());
    let outcome = run(&config(&vm.url()));
    check(&outcome, "victoria-metrics");
}

/// A fleet of `containers` single-container Deployments over six hours.
fn fleet(containers: usize) -> HistorySpec {
    let workloads = (0..containers)
        .map(|i| {
            WorkloadSpec::new(
                if i % 2 == 0 { "team-a" } else { "team-b" },
                WorkloadKind::Deployment,
                &format!("svc-{i}"),
                1,
                vec![ContainerSpec::new(
                    "app",
                    res(500, 512),
                    stepped(0.1, 0.2, i as u64),
                    constant(100.0 * MIB),
                )],
            )
        })
        .collect();
    HistorySpec {
        start: END - 6 * 3600,
        end: END,
        scrape_interval_s: 120,
        workloads,
        nodes: Vec::new(),
    }
}

#[test]
fn query_count_does_not_grow_with_containers() {
    let mut counts = BTreeMap::new();
    for n in [10usize, 500] {
        let prometheus = Prometheus::start_with_history(&fleet(n));
        let mut config = config(&prometheus.url());
        config.history.window = std::time::Duration::from_secs(6 * 3600);
        config.history.resolution = std::time::Duration::from_secs(600);
        config.history.chunk = std::time::Duration::from_secs(3600);
        let outcome = run(&config);
        assert_eq!(outcome.recommendations.len(), n, "one row per container");
        assert!(
            outcome
                .recommendations
                .iter()
                .all(|r| r.evidence.cpu_samples > 0)
        );
        counts.insert(n, outcome.counts.queries);
    }
    assert_eq!(
        counts[&10], counts[&500],
        "queries for 10 vs 500 containers: {counts:?}"
    );
    // Discovery (6 series lookups + 6 instant queries, every pod running)
    // + 2 metrics × 6 one-hour chunks for one batch + 4 counters.
    assert_eq!(counts[&10], 12 + 2 * 6 + 4, "{counts:?}");
}

#[test]
fn the_binary_writes_the_json_contract() {
    let prometheus = Prometheus::shared("recommend", spec);
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("recs.json");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args([
            "recommend",
            "--no-progress",
            "--history",
            "10d",
            "--at",
            "2026-10-01T00:00:00Z",
        ])
        .args(["--format", "json", "--prometheus-url"])
        .arg(prometheus.url())
        .arg("--output")
        .arg(&out)
        .status()
        .expect("run tailor");
    assert!(status.success());
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&out).expect("output")).expect("JSON");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["at"], "2026-10-01T00:00:00Z");
    let rows = doc["recommendations"].as_array().expect("rows");
    assert_eq!(rows.len(), 6);
    let web = rows
        .iter()
        .find(|r| r["workload"] == "web")
        .expect("web row");
    assert_eq!(web["workload_kind"], "Deployment");
    assert_eq!(web["current"]["cpu_request_millicores"], 1000);
    assert!(web["current"]["cpu_limit_millicores"].is_null());
    assert!(
        web["recommended"]["cpu_request_millicores"]
            .as_u64()
            .expect("int")
            < 1000
    );
    assert!(web["skipped_reason"].is_null());
    assert!(doc["queries"].as_u64().expect("queries") > 10);
}

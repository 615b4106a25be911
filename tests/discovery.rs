//! Workload discovery against real backends, seen from the evaluation time
//! and from an hour after every pod is gone: pods that ran only inside the
//! window keep their start time and give their workload its current values,
//! read from their own series (in bounded batches of pod names).

use std::collections::BTreeMap;

use tailor::config::PrometheusConfig;
use tailor::domain::{Resources, WorkloadKind};
use tailor::metrics::PromClient;
use tailor::metrics::discovery::{Inventory, discover};
use tailor::metrics::promql::Scope;
use tailor::sim::history::{self, ContainerSpec, HistorySpec, WorkloadSpec, constant};
use tailor::units::{Bytes, MilliCores};

use crate::support::prometheus::Prometheus;
use crate::support::victoria::VictoriaMetrics;

/// 2026-10-01T00:00:00Z: the history ends here.
const END: i64 = 1_790_812_800;
const HOUR: i64 = 3600;
const WINDOW: i64 = 6 * HOUR;

fn res(cpu: u64, mem_mib: u64) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(cpu)),
        cpu_limit: Some(MilliCores(2 * cpu)),
        memory_request: Some(Bytes::mib(mem_mib)),
        memory_limit: Some(Bytes::mib(2 * mem_mib)),
    }
}

fn container(name: &str, resources: Resources) -> ContainerSpec {
    ContainerSpec::new(name, resources, constant(0.1), constant(1e8))
}

/// Steady pods, 120 one-hour pods of one Deployment (more than one batch of
/// names), and a StatefulSet in a second namespace.
fn spec() -> HistorySpec {
    let mut web = WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "web",
        2,
        vec![container("app", res(1000, 1024))],
    );
    web.labels = BTreeMap::from([("app".into(), "web".into())]);
    let mut churn = WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "churn",
        20,
        vec![
            container("app", res(300, 256)),
            container("envoy", res(100, 64)),
        ],
    );
    churn.pod_lifetime_s = Some(HOUR);
    let db = WorkloadSpec::new(
        "data",
        WorkloadKind::StatefulSet,
        "db",
        1,
        vec![container("postgres", res(2000, 4096))],
    );
    HistorySpec {
        start: END - WINDOW,
        end: END,
        scrape_interval_s: 60,
        workloads: vec![web, churn, db],
        nodes: Vec::new(),
    }
}

/// Discovery as of `at` over `window_s`, and the requests it sent.
fn run(url: &str, at: i64, window_s: i64) -> (Inventory, u64) {
    let client = PromClient::new(&PrometheusConfig {
        url: url.to_string(),
        ..PrometheusConfig::default()
    })
    .expect("client");
    let scope = Scope::new(None);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let inventory = runtime
        .block_on(discover(&client, &scope, &scope, at, window_s, true))
        .expect("discovery succeeds");
    (inventory, client.counts().queries)
}

/// What every pod of the spec should look like, whoever reads it.
fn check_pods(inventory: &Inventory, backend: &str) {
    let spec = spec();
    let mut expected = 0;
    for w in &spec.workloads {
        for life in history::pods(w, spec.start, spec.end) {
            expected += 1;
            let pod = inventory
                .pods
                .get(&(w.namespace.clone(), life.name.clone()))
                .unwrap_or_else(|| panic!("{backend}: pod {} not found", life.name));
            assert_eq!(pod.start, Some(life.start), "{backend}: {}", life.name);
            assert_eq!(
                inventory.workloads[pod.workload].workload.name, w.name,
                "{backend}"
            );
            let mut names: Vec<&String> = pod.containers.keys().collect();
            names.sort();
            let want: Vec<&String> = w.containers.iter().map(|c| &c.name).collect();
            assert_eq!(names, want, "{backend}: {}", life.name);
            // Every pod, running or gone, keeps its memory limits (OOM bumps).
            for c in &w.containers {
                assert_eq!(
                    pod.memory_limits.get(&c.name).copied(),
                    c.resources.memory_limit.map(Bytes::as_f64),
                    "{backend}: {}:{}",
                    life.name,
                    c.name
                );
            }
        }
    }
    assert_eq!(inventory.pods.len(), expected, "{backend}: no extra pods");
    // Each workload container carries its spec's requests and limits.
    for w in &spec.workloads {
        for c in &w.containers {
            let row = inventory
                .containers
                .iter()
                .find(|r| r.target.workload.name == w.name && r.target.container == c.name)
                .unwrap_or_else(|| panic!("{backend}: no row for {}:{}", w.name, c.name));
            assert_eq!(row.current, c.resources, "{backend}: {}:{}", w.name, c.name);
        }
    }
    assert_eq!(inventory.containers.len(), 4, "{backend}");
    let web = inventory
        .workloads
        .iter()
        .find(|w| w.workload.name == "web")
        .expect("web");
    assert_eq!(web.labels.get("app").map(String::as_str), Some("web"));
    assert!(
        inventory.skipped.is_empty(),
        "{backend}: {:?}",
        inventory.skipped
    );
}

fn check(url: &str, backend: &str) {
    // At the end of the history: 23 pods run, the 100 older churn pods are
    // gone (start times and memory limits read for them, in one batch each).
    let (now, now_queries) = run(url, END, WINDOW);
    check_pods(&now, backend);
    let running: u32 = now.workloads.iter().map(|w| w.replicas).sum();
    assert_eq!(running, 2 + 20 + 1, "{backend}");
    let churn = now
        .workloads
        .iter()
        .find(|w| w.workload.name == "churn")
        .expect("churn");
    assert_eq!((churn.replicas, churn.pods_seen), (20, 120), "{backend}");
    // 7 series lookups, 6 instant queries, then start times and memory
    // limits of the gone pods (one namespace, 100 names: one batch each).
    assert_eq!(now_queries, 7 + 6 + 2, "{backend}");

    // An hour later nothing runs: the same pods, starts and current values,
    // now all read from the gone pods' own series.
    let (later, later_queries) = run(url, END + HOUR, WINDOW + HOUR);
    check_pods(&later, backend);
    assert!(later.pods.values().all(|p| !p.alive), "{backend}");
    assert!(later.workloads.iter().all(|w| w.replicas == 0), "{backend}");
    let seen = |inv: &Inventory| -> BTreeMap<String, u32> {
        inv.workloads
            .iter()
            .map(|w| (w.workload.to_string(), w.pods_seen))
            .collect()
    };
    assert_eq!(seen(&later), seen(&now), "{backend}");
    // Start times: shop holds 122 pods (two batches), data one. Requests and
    // limits: only the newest pods (20 churn, 2 web in shop; db in data),
    // one batch per namespace and metric. Memory limits of the 100 older
    // churn pods: one batch.
    assert_eq!(later_queries, 7 + 6 + 3 + 2 * 2 + 1, "{backend}");
}

#[test]
fn gone_pods_keep_their_start_and_values_on_prometheus() {
    let prometheus = Prometheus::start_with_history(&spec());
    check(&prometheus.url(), "prometheus");
}

#[test]
fn gone_pods_keep_their_start_and_values_on_victoria_metrics() {
    let vm = VictoriaMetrics::start_with_history(&spec());
    check(&vm.url(), "victoria-metrics");
}

//! The test servers hold exactly what the generator wrote, and answer the
//! PromQL tailor relies on as a real cluster's Prometheus would. Every check
//! runs against both Prometheus and VictoriaMetrics, each loaded once with
//! [`specs::shop`].

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tailor::sim::history::{self, HistorySpec};

use crate::support::http::{self, query, query_one};
use crate::support::prometheus::Prometheus;
use crate::support::specs::{self, DAY, HOUR};
use crate::support::victoria::VictoriaMetrics;

/// Generates one `#[test]` per check and backend.
macro_rules! on_both_backends {
    ($($check:ident),* $(,)?) => {
        mod prometheus {
            $(#[test] fn $check() { super::$check(&super::shop_prometheus().url(), &super::specs::shop()) })*
        }
        mod victoria_metrics {
            $(#[test] fn $check() { super::$check(&super::shop_victoria().url(), &super::specs::shop()) })*
        }
    };
}

on_both_backends!(
    every_generated_series_and_sample_is_stored,
    cpu_rate_is_the_generated_constant,
    rate_sees_through_the_counter_reset_of_an_oom_kill,
    max_memory_over_a_day_is_the_generated_maximum,
    owner_chain_leads_from_pods_to_deployment_statefulset_and_cronjob,
    pod_pause_and_init_cgroups_are_there_to_be_filtered_out,
    requests_limits_throttling_hpa_and_nodes_are_as_specified,
    pod_labels_are_sanitized_like_ksm,
    a_step_in_usage_shows_in_the_rate,
);

fn shop_prometheus() -> &'static Prometheus {
    Prometheus::shared("shop", specs::shop)
}

fn shop_victoria() -> &'static VictoriaMetrics {
    VictoriaMetrics::shared("shop", specs::shop)
}

fn assert_close(got: f64, want: f64, what: &str) {
    let tolerance = 1e-9 * want.abs().max(1.0);
    assert!(
        (got - want).abs() <= tolerance,
        "{what}: got {got}, want {want}"
    );
}

fn every_generated_series_and_sample_is_stored(url: &str, spec: &HistorySpec) {
    let stats = {
        let mut sink = std::io::sink();
        history::write_openmetrics(spec, &mut sink).expect("writing to a sink")
    };
    let stored = http::series(url, r#"{__name__=~".+"}"#, spec.start, spec.end);
    assert_eq!(stored.len(), stats.series);
    let families: BTreeSet<&str> = stored
        .iter()
        .filter_map(|s| s.get("__name__"))
        .map(String::as_str)
        .collect();
    assert_eq!(families.len(), stats.families, "{families:?}");
    // Every sample, family by family (a range function over several
    // families would make series that differ only by name collide).
    let range = spec.end - spec.start + spec.scrape_interval_s;
    let samples: f64 = families
        .iter()
        .map(|family| {
            query_one(
                url,
                &format!("sum(count_over_time({family}[{range}s]))"),
                spec.end,
            )
        })
        .sum();
    assert_eq!(samples, stats.samples as f64);
}

fn cpu_rate_is_the_generated_constant(url: &str, spec: &HistorySpec) {
    let t = spec.start + 12 * HOUR + 30;
    let rates = query(
        url,
        r#"rate(container_cpu_usage_seconds_total{namespace="shop",container="app"}[5m])"#,
        t,
    );
    assert_eq!(rates.len(), 2, "{rates:?}");
    for r in &rates {
        assert_close(r.value, 0.25, r.label("pod"));
    }
    let by_container = query(
        url,
        r#"sum by (container) (rate(container_cpu_usage_seconds_total{namespace="shop",pod=~"web-.+",container!="",container!="POD"}[5m]))"#,
        t,
    );
    let got: Vec<(&str, f64)> = by_container
        .iter()
        .map(|s| (s.label("container"), s.value))
        .collect();
    assert_eq!(got.len(), 2, "{got:?}");
    for (container, value) in got {
        let want = if container == "app" { 0.5 } else { 0.04 };
        assert_close(value, want, container);
    }
}

fn rate_sees_through_the_counter_reset_of_an_oom_kill(url: &str, spec: &HistorySpec) {
    let oom = spec.start + 36 * HOUR;
    let t = oom + 2 * 60;
    let app = r#"{namespace="shop",container="app"}"#;
    let raw = query(url, &format!("container_cpu_usage_seconds_total{app}"), t);
    assert_eq!(raw.len(), 2, "{raw:?}");
    for r in &raw {
        // Three scrapes since the restart, 0.25 cores each minute.
        assert_close(
            r.value,
            3.0 * 60.0 * 0.25,
            "the counter restarted from zero",
        );
    }
    for r in query(
        url,
        &format!("resets(container_cpu_usage_seconds_total{app}[10m])"),
        t,
    ) {
        assert_eq!(r.value, 1.0, "{r:?}");
    }
    for r in query(
        url,
        &format!("rate(container_cpu_usage_seconds_total{app}[5m])"),
        t,
    ) {
        assert_close(r.value, 0.25, "rate across the reset");
    }
    let restarts = query(
        url,
        &format!("kube_pod_container_status_restarts_total{app}"),
        t,
    );
    assert_eq!(
        restarts.iter().map(|r| r.value).collect::<Vec<_>>(),
        [1.0, 1.0]
    );
    let reasons = query(
        url,
        r#"kube_pod_container_status_last_terminated_reason{reason="OOMKilled"}"#,
        t,
    );
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    let before = query(
        url,
        r#"kube_pod_container_status_last_terminated_reason"#,
        oom - 60,
    );
    assert!(before.is_empty(), "{before:?}");
}

fn max_memory_over_a_day_is_the_generated_maximum(url: &str, spec: &HistorySpec) {
    let t = spec.start + 2 * DAY + 12 * HOUR;
    let memory = &spec.workloads[0].containers[0].memory_bytes;
    let got = query_one(
        url,
        r#"max(max_over_time(container_memory_working_set_bytes{namespace="shop",container="app"}[1d]))"#,
        t,
    );
    assert_close(got, memory(t, 0), "max over the last day");
    let first_day = query_one(
        url,
        r#"max(max_over_time(container_memory_working_set_bytes{namespace="shop",container="app"}[1d]))"#,
        spec.start + DAY - 60,
    );
    assert_close(
        first_day,
        memory(spec.start + DAY - 60, 0),
        "max over the first day",
    );
}

fn owner_chain_leads_from_pods_to_deployment_statefulset_and_cronjob(
    url: &str,
    spec: &HistorySpec,
) {
    // Mid-run: an ended pod's series stays visible for 5 minutes (no
    // staleness markers in backfilled data), so keep away from pod changes.
    let t = spec.start + DAY + 15 * HOUR + 30;
    let web = &spec.workloads[0];
    let rs = history::replicaset_name(web).expect("web is a Deployment");
    let owners = query(
        url,
        r#"kube_replicaset_owner{namespace="shop",owner_kind="Deployment",owner_name="web"}"#,
        t,
    );
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].label("replicaset"), rs);

    let alive: BTreeSet<String> = history::pods(web, spec.start, spec.end)
        .into_iter()
        .filter(|p| p.start <= t && t < p.end)
        .map(|p| p.name)
        .collect();
    let stored: BTreeSet<String> = query(
        url,
        &format!(r#"kube_pod_owner{{namespace="shop",owner_name="{rs}"}}"#),
        t,
    )
    .into_iter()
    .map(|s| s.label("pod").to_string())
    .collect();
    assert_eq!(stored, alive);

    // The join tailor makes: pod → ReplicaSet → Deployment.
    let per_deployment = query(
        url,
        r#"count by (namespace, owner_name) (
            label_replace(kube_pod_owner{owner_kind="ReplicaSet"}, "replicaset", "$1", "owner_name", "(.+)")
            * on (namespace, replicaset) group_left (owner_name)
            kube_replicaset_owner{owner_kind="Deployment"}
        )"#,
        t,
    );
    assert_eq!(per_deployment.len(), 1, "{per_deployment:?}");
    assert_eq!(per_deployment[0].label("owner_name"), "web");
    assert_eq!(per_deployment[0].value, 2.0);

    let db = query(
        url,
        r#"kube_pod_owner{owner_kind="StatefulSet",owner_name="db"}"#,
        t,
    );
    assert_eq!(
        db.iter().map(|s| s.label("pod")).collect::<Vec<_>>(),
        ["db-0"]
    );

    let report = &spec.workloads[2];
    let run = history::pods(report, spec.start, spec.end)
        .into_iter()
        .find(|p| p.start <= t && t < p.end)
        .expect("a report run at any time");
    let jobs = query(
        url,
        r#"kube_job_owner{namespace="batch",owner_kind="CronJob",owner_name="report"}"#,
        t,
    );
    assert_eq!(
        jobs.iter().map(|s| s.label("job_name")).collect::<Vec<_>>(),
        [run.owner_name.as_str()]
    );
    let pods = query(
        url,
        &format!(
            r#"kube_pod_owner{{owner_kind="Job",owner_name="{}"}}"#,
            run.owner_name
        ),
        t,
    );
    assert_eq!(
        pods.iter().map(|s| s.label("pod")).collect::<Vec<_>>(),
        [run.name.as_str()]
    );
}

fn pod_pause_and_init_cgroups_are_there_to_be_filtered_out(url: &str, spec: &HistorySpec) {
    let web = r#"namespace="shop",pod=~"web-.+""#;
    let t = spec.start + 12 * HOUR;
    let containers = query(
        url,
        &format!("count by (container) (container_memory_working_set_bytes{{{web}}})"),
        t,
    );
    let got: BTreeSet<(&str, u32)> = containers
        .iter()
        .map(|s| (s.label("container"), s.value as u32))
        .collect();
    // The pod-level cgroup's `container=""` is stored as no label at all.
    assert_eq!(
        got,
        BTreeSet::from([("", 2), ("POD", 2), ("app", 2), ("proxy", 2)])
    );
    assert!(
        query(
            url,
            r#"container_memory_working_set_bytes{container=""}"#,
            t
        )
        .iter()
        .all(|s| !s.labels.contains_key("container"))
    );

    // Init containers run in the first minute of each pod only. (Not at the
    // very instant the pods start: that is midnight UTC, where
    // VictoriaMetrics 1.79 misses series born that day.)
    let second_generation = spec.start + DAY;
    let init = query(
        url,
        &format!(r#"container_memory_working_set_bytes{{{web},container="migrate"}}"#),
        second_generation + 30,
    );
    assert_eq!(init.len(), 2, "{init:?}");
    let later = query(
        url,
        &format!(r#"container_memory_working_set_bytes{{{web},container="migrate"}}"#),
        second_generation + 10 * 60,
    );
    assert!(later.is_empty(), "{later:?}");
    let info = query(
        url,
        &format!(r#"kube_pod_init_container_info{{{web}}}"#),
        second_generation + 10 * 60,
    );
    assert_eq!(info.len(), 2, "{info:?}");
}

fn requests_limits_throttling_hpa_and_nodes_are_as_specified(url: &str, spec: &HistorySpec) {
    let t = spec.start + 6 * HOUR;
    let app = r#"namespace="shop",container="app""#;
    let pick = |expr: String| {
        let all = query(url, &expr, t);
        assert_eq!(all.len(), 2, "{expr}: {all:?}");
        all[0].value
    };
    assert_eq!(
        pick(format!(
            r#"kube_pod_container_resource_requests{{{app},resource="cpu",unit="core"}}"#
        )),
        0.25
    );
    assert_eq!(
        pick(format!(
            r#"kube_pod_container_resource_requests{{{app},resource="memory",unit="byte"}}"#
        )),
        268_435_456.0
    );
    assert_eq!(
        pick(format!(
            r#"kube_pod_container_resource_limits{{{app},resource="cpu"}}"#
        )),
        1.0
    );
    assert_eq!(
        pick(format!(
            r#"kube_pod_container_resource_limits{{{app},resource="memory"}}"#
        )),
        536_870_912.0
    );
    let proxy_limits = query(
        url,
        r#"kube_pod_container_resource_limits{container="proxy"}"#,
        t,
    );
    assert!(
        proxy_limits.is_empty(),
        "unset limits have no series: {proxy_limits:?}"
    );
    let throttled = pick(format!(
        "rate(container_cpu_cfs_throttled_periods_total{{{app}}}[5m]) / rate(container_cpu_cfs_periods_total{{{app}}}[5m])"
    ));
    assert_close(throttled, 0.1, "throttled fraction");
    let periods = pick(format!(
        "rate(container_cpu_cfs_periods_total{{{app}}}[5m])"
    ));
    assert_close(periods, 10.0, "100 ms periods per second");

    let hpa = query(
        url,
        r#"kube_horizontalpodautoscaler_info{namespace="shop"}"#,
        t,
    );
    assert_eq!(hpa.len(), 1, "{hpa:?}");
    assert_eq!(
        [
            hpa[0].label("horizontalpodautoscaler"),
            hpa[0].label("scaletargetref_kind"),
            hpa[0].label("scaletargetref_name")
        ],
        ["web", "Deployment", "web"]
    );
    let target = r#"kube_horizontalpodautoscaler_spec_target_metric{horizontalpodautoscaler="web",metric_name="cpu",metric_target_type="utilization"}"#;
    assert_eq!(query_one(url, target, t), 70.0);
    assert_eq!(
        query_one(
            url,
            r#"sum(kube_node_status_allocatable{resource="cpu",unit="core"})"#,
            t
        ),
        7.84
    );
}

fn pod_labels_are_sanitized_like_ksm(url: &str, spec: &HistorySpec) {
    let t = spec.start + 6 * HOUR;
    let labelled = query(
        url,
        r#"kube_pod_labels{namespace="shop",label_app_kubernetes_io_name="web"}"#,
        t,
    );
    assert_eq!(labelled.len(), 2, "{labelled:?}");
    let rs = history::replicaset_name(&spec.workloads[0]).expect("web is a Deployment");
    assert!(
        rs.ends_with(labelled[0].label("label_pod_template_hash")),
        "{labelled:?}"
    );
}

fn a_step_in_usage_shows_in_the_rate(url: &str, spec: &HistorySpec) {
    let postgres = r#"rate(container_cpu_usage_seconds_total{namespace="shop",pod="db-0",container="postgres"}[5m])"#;
    assert_close(
        query_one(url, postgres, spec.start + 12 * HOUR),
        0.5,
        "before the step",
    );
    assert_close(
        query_one(url, postgres, spec.start + 2 * DAY),
        1.5,
        "after the step",
    );
    let worker =
        r#"sum(rate(container_cpu_usage_seconds_total{namespace="batch",container="worker"}[5m]))"#;
    assert_close(
        query_one(url, worker, spec.start + 9 * HOUR),
        2.0,
        "a CronJob run",
    );
}

#[test]
fn dropping_a_server_stops_it_and_removes_its_directory() {
    let mut spec = specs::fleet(1, 1);
    spec.end = spec.start + HOUR;
    let prometheus = Prometheus::start_with_history(&spec);
    let (url, dir) = (prometheus.url(), prometheus.data_dir().to_path_buf());
    assert!(http::get(&url, "/-/ready").is_ok_and(|r| r.status == 200));
    drop(prometheus);
    let deadline = Instant::now() + Duration::from_secs(10);
    while (http::get(&url, "/-/ready").is_ok() || dir.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(http::get(&url, "/-/ready").is_err(), "{url} still answers");
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
#[ignore = "measures backfilling a 14-day, 20-container history (about 20 s); run by hand with --nocapture"]
fn backfill_of_a_14_day_20_container_history_timings() {
    let spec = specs::fleet(14, 20);
    let started = Instant::now();
    let prometheus = Prometheus::start_with_history(&spec);
    eprintln!(
        "prometheus: {:?} {:?} total {:?}",
        prometheus.stats(),
        prometheus.timings(),
        started.elapsed()
    );
    drop(prometheus);
    let started = Instant::now();
    let victoria = VictoriaMetrics::start_with_history(&spec);
    eprintln!(
        "victoria-metrics: {:?} {:?} total {:?}",
        victoria.stats(),
        victoria.timings(),
        started.elapsed()
    );
}

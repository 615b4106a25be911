//! The demo fleet: a small, plausible cluster right after a migration, with
//! one workload per case tailor must handle. `tailor dev write-history`
//! writes its history for `scripts/demo`; tests use it as a realistic mix.
//!
//! | workload | what it shows |
//! |---|---|
//! | shop/web | diurnal web service, 4× over-provisioned: a large saving |
//! | shop/cart | app plus an Envoy sidecar: sidecars are their own rows |
//! | shop/search | JVM: a startup CPU spike the request must not chase |
//! | shop/legacy | three days old: "insufficient data", not a guess |
//! | payments/ledger | StatefulSet with steady memory: memory saving |
//! | payments/api | HPA on CPU: CPU left alone, memory still sized |
//! | batch/worker | OOM-killed twice: memory raised at once |
//! | batch/nightly-report | CronJob working an hour a night: billed for that hour |
//! | monitoring/node-agent | DaemonSet throttled at its CPU limit: no CPU decrease |

use std::collections::BTreeMap;
use std::sync::Arc;

use super::history::{ContainerSpec, HistorySpec, HpaSpec, NodeSpec, UsageFn, WorkloadSpec};
use crate::domain::{ResourceKind, Resources, WorkloadKind};
use crate::units::{Bytes, MilliCores};

const DAY: i64 = 86_400;
const MIB: f64 = 1_048_576.0;

/// Deterministic noise in [0, 1) from a time and a salt.
pub fn noise(t: i64, salt: u64) -> f64 {
    let x = (t as u64 / 60).wrapping_add(salt.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let x = (x ^ (x >> 31)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    ((x ^ (x >> 31)) >> 11) as f64 / (1u64 << 53) as f64
}

/// A daily wave peaking at `peak_hour` UTC between `low` and `high`, with
/// ±`jitter` relative noise.
pub fn diurnal(low: f64, high: f64, peak_hour: f64, jitter: f64, salt: u64) -> UsageFn {
    Arc::new(move |t, replica| {
        let hour = (t.rem_euclid(DAY)) as f64 / 3600.0;
        let phase = ((hour - peak_hour) / 24.0 * std::f64::consts::TAU).cos();
        let base = low + (high - low) * (1.0 + phase) / 2.0;
        base * (1.0 + jitter * (2.0 * noise(t, salt + replica as u64) - 1.0))
    })
}

fn res(
    cpu_req: u64,
    cpu_lim: Option<u64>,
    mem_req_mib: u64,
    mem_lim_mib: Option<u64>,
) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(cpu_req)),
        cpu_limit: cpu_lim.map(MilliCores),
        memory_request: Some(Bytes::mib(mem_req_mib)),
        memory_limit: mem_lim_mib.map(Bytes::mib),
    }
}

/// The demo fleet's history over `[start, end)`.
pub fn demo_fleet(start: i64, end: i64) -> HistorySpec {
    let mut workloads = Vec::new();

    let mut web = WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "web",
        3,
        vec![ContainerSpec::new(
            "app",
            res(1000, None, 1024, Some(1024)),
            diurnal(0.08, 0.30, 14.0, 0.25, 1),
            diurnal(260.0 * MIB, 330.0 * MIB, 14.0, 0.05, 2),
        )],
    );
    web.pod_lifetime_s = Some(3 * DAY);
    web.labels = BTreeMap::from([
        ("app".into(), "web".into()),
        ("team".into(), "storefront".into()),
    ]);
    workloads.push(web);

    workloads.push(WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "cart",
        2,
        vec![
            ContainerSpec::new(
                "app",
                res(500, Some(1000), 512, Some(512)),
                diurnal(0.05, 0.15, 13.0, 0.3, 3),
                diurnal(150.0 * MIB, 180.0 * MIB, 13.0, 0.05, 4),
            ),
            ContainerSpec::new(
                "envoy",
                res(250, None, 256, Some(256)),
                diurnal(0.01, 0.03, 13.0, 0.3, 5),
                diurnal(40.0 * MIB, 45.0 * MIB, 13.0, 0.02, 6),
            ),
        ],
    ));

    // JVM: 1.5 cores for the first two minutes of each pod, then ~250m.
    let mut search = WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "search",
        2,
        vec![ContainerSpec::new(
            "jvm",
            res(2000, None, 2048, Some(2048)),
            {
                // Pods are replaced every two days from `start` on.
                let steady = diurnal(0.15, 0.30, 15.0, 0.2, 7);
                Arc::new(move |t, r| {
                    if (t - start).rem_euclid(2 * DAY) < 120 {
                        1.5
                    } else {
                        steady(t, r)
                    }
                })
            },
            diurnal(900.0 * MIB, 1100.0 * MIB, 15.0, 0.03, 8),
        )],
    );
    search.pod_lifetime_s = Some(2 * DAY);
    workloads.push(search);

    // Only the last three days exist: too little history to cut.
    let legacy_start = end - 3 * DAY;
    workloads.push(WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "legacy",
        1,
        vec![ContainerSpec::new(
            "app",
            res(1000, None, 1024, Some(1024)),
            Arc::new(move |t, _| if t < legacy_start { f64::NAN } else { 0.05 }),
            Arc::new(move |t, _| {
                if t < legacy_start {
                    f64::NAN
                } else {
                    120.0 * MIB
                }
            }),
        )],
    ));

    workloads.push(WorkloadSpec::new(
        "payments",
        WorkloadKind::StatefulSet,
        "ledger",
        3,
        vec![ContainerSpec::new(
            "postgres",
            res(2000, None, 4096, Some(4096)),
            diurnal(0.2, 0.6, 11.0, 0.2, 9),
            diurnal(1400.0 * MIB, 1500.0 * MIB, 11.0, 0.02, 10),
        )],
    ));

    let mut api = WorkloadSpec::new(
        "payments",
        WorkloadKind::Deployment,
        "api",
        4,
        vec![ContainerSpec::new(
            "app",
            res(500, None, 1024, Some(1024)),
            diurnal(0.1, 0.35, 12.0, 0.2, 11),
            diurnal(200.0 * MIB, 240.0 * MIB, 12.0, 0.05, 12),
        )],
    );
    api.hpa = Some(HpaSpec {
        resource: ResourceKind::Cpu,
        target_utilization_percent: 70,
    });
    workloads.push(api);

    // Memory climbs to its 512Mi limit twice and is OOM-killed.
    let mut worker_container = ContainerSpec::new(
        "worker",
        res(500, None, 512, Some(512)),
        diurnal(0.1, 0.3, 3.0, 0.3, 13),
        diurnal(380.0 * MIB, 500.0 * MIB, 3.0, 0.02, 14),
    );
    worker_container.oom_kill_times = vec![end - 9 * DAY + 3 * 3600, end - 2 * DAY + 3 * 3600];
    workloads.push(WorkloadSpec::new(
        "batch",
        WorkloadKind::Deployment,
        "worker",
        2,
        vec![worker_container],
    ));

    // One run a day whose work takes the hour from 02:00 UTC; the finished
    // pod stays listed by kube-state-metrics but has no usage series.
    let in_run = |t: i64| (2 * 3600..3 * 3600).contains(&t.rem_euclid(DAY));
    let nightly_cpu = diurnal(0.8, 1.2, 2.0, 0.1, 15);
    let nightly_memory = diurnal(600.0 * MIB, 700.0 * MIB, 2.0, 0.05, 16);
    let mut nightly = WorkloadSpec::new(
        "batch",
        WorkloadKind::CronJob,
        "nightly-report",
        1,
        vec![ContainerSpec::new(
            "report",
            res(2000, None, 2048, Some(2048)),
            Arc::new(move |t, r| {
                if in_run(t) {
                    nightly_cpu(t, r)
                } else {
                    f64::NAN
                }
            }),
            Arc::new(move |t, r| {
                if in_run(t) {
                    nightly_memory(t, r)
                } else {
                    f64::NAN
                }
            }),
        )],
    );
    nightly.pod_lifetime_s = Some(DAY);
    workloads.push(nightly);

    let mut agent_container = ContainerSpec::new(
        "agent",
        res(100, Some(200), 128, Some(256)),
        diurnal(0.12, 0.19, 14.0, 0.1, 17),
        diurnal(90.0 * MIB, 100.0 * MIB, 14.0, 0.02, 18),
    );
    agent_container.throttled_ratio = 0.3;
    workloads.push(WorkloadSpec::new(
        "monitoring",
        WorkloadKind::DaemonSet,
        "node-agent",
        3,
        vec![agent_container],
    ));

    HistorySpec {
        start,
        end,
        scrape_interval_s: 60,
        workloads,
        nodes: (0..3)
            .map(|i| NodeSpec {
                name: format!("node-{i}"),
                cpu: MilliCores(8000),
                memory: Bytes::gib(32),
            })
            .collect(),
    }
}

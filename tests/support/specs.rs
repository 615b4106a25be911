//! Histories the tests share. Each says what it is for; sizes are chosen so
//! generating and backfilling stay in seconds (see docs/testing.md).

use std::collections::BTreeMap;

use tailor::domain::{ResourceKind, Resources, WorkloadKind};
use tailor::sim::history::{self, ContainerSpec, HistorySpec, HpaSpec, NodeSpec, WorkloadSpec};
use tailor::units::{Bytes, MilliCores};

pub const DAY: i64 = 86_400;
pub const HOUR: i64 = 3_600;
/// 2024-01-01T00:00:00Z: fixed, so failures reproduce to the second.
pub const JAN_1_2024: i64 = 1_704_067_200;

pub fn node(name: &str) -> NodeSpec {
    NodeSpec {
        name: name.to_string(),
        cpu: MilliCores(3_920),
        memory: Bytes::gib(15),
    }
}

/// Three days of a small shop, one of each thing tailor must handle:
/// - `shop/web` (Deployment, 2 replicas, pods replaced daily, HPA on CPU,
///   init container `migrate`): `app` uses exactly 0.25 cores, memory ramps
///   from 100 MiB to 400 MiB over the three days, is OOM-killed at 36 h and
///   throttled 10% of periods; sidecar `proxy` uses 0.02 cores and 30 MiB;
/// - `shop/db` (StatefulSet, 1 replica): `postgres` uses 0.5 cores for a day,
///   then 1.5, and 1 GiB;
/// - `batch/report` (CronJob, a 6 h run after another): `worker` 2 cores.
pub fn shop() -> HistorySpec {
    let start = JAN_1_2024;
    let end = start + 3 * DAY;
    let mut app = ContainerSpec::new(
        "app",
        Resources {
            cpu_request: Some(MilliCores(250)),
            cpu_limit: Some(MilliCores(1000)),
            memory_request: Some(Bytes::mib(256)),
            memory_limit: Some(Bytes::mib(512)),
        },
        history::constant(0.25),
        history::ramp(
            (start, Bytes::mib(100).as_f64()),
            (end, Bytes::mib(400).as_f64()),
        ),
    );
    app.oom_kill_times = vec![start + 36 * HOUR];
    app.throttled_ratio = 0.1;
    let proxy = ContainerSpec::new(
        "proxy",
        Resources {
            cpu_request: Some(MilliCores(10)),
            ..Resources::default()
        },
        history::constant(0.02),
        history::constant(Bytes::mib(30).as_f64()),
    );
    let mut web = WorkloadSpec::new("shop", WorkloadKind::Deployment, "web", 2, vec![app, proxy]);
    web.pod_lifetime_s = Some(DAY);
    web.init_containers = vec!["migrate".to_string()];
    web.labels = BTreeMap::from([("app.kubernetes.io/name".to_string(), "web".to_string())]);
    web.hpa = Some(HpaSpec {
        resource: ResourceKind::Cpu,
        target_utilization_percent: 70,
    });

    let postgres = ContainerSpec::new(
        "postgres",
        Resources {
            cpu_request: Some(MilliCores(1000)),
            memory_request: Some(Bytes::gib(2)),
            ..Resources::default()
        },
        std::sync::Arc::new(move |t, _| if t < start + DAY { 0.5 } else { 1.5 }),
        history::constant(Bytes::gib(1).as_f64()),
    );
    let db = WorkloadSpec::new("shop", WorkloadKind::StatefulSet, "db", 1, vec![postgres]);

    let worker = ContainerSpec::new(
        "worker",
        Resources::default(),
        history::constant(2.0),
        history::constant(Bytes::mib(200).as_f64()),
    );
    let mut report = WorkloadSpec::new("batch", WorkloadKind::CronJob, "report", 1, vec![worker]);
    report.pod_lifetime_s = Some(6 * HOUR);

    HistorySpec {
        start,
        end,
        scrape_interval_s: 60,
        workloads: vec![web, db, report],
        nodes: vec![node("node-a"), node("node-b")],
    }
}

/// `containers` single-container Deployments of 1 replica, each using a
/// different constant CPU (`0.01 × (i + 1)` cores) and memory
/// (`64 MiB × (i + 1)`), over `days` days: the size of tailor's own tests.
pub fn fleet(days: i64, containers: u32) -> HistorySpec {
    let workloads = (0..containers)
        .map(|i| {
            let n = f64::from(i + 1);
            let c = ContainerSpec::new(
                "app",
                Resources {
                    cpu_request: Some(MilliCores(100)),
                    memory_request: Some(Bytes::mib(128)),
                    memory_limit: Some(Bytes::mib(256)),
                    ..Resources::default()
                },
                history::constant(0.01 * n),
                history::constant(Bytes::mib(64).as_f64() * n),
            );
            WorkloadSpec::new(
                "fleet",
                WorkloadKind::Deployment,
                &format!("svc-{i:02}"),
                1,
                vec![c],
            )
        })
        .collect();
    HistorySpec {
        start: JAN_1_2024,
        end: JAN_1_2024 + days * DAY,
        scrape_interval_s: 60,
        workloads,
        nodes: vec![node("node-a"), node("node-b"), node("node-c")],
    }
}

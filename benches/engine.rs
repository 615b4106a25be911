//! Engine throughput: how fast usage samples fold into the estimators, and
//! how small a container's state stays. Targets (issue "recommend-only
//! core"): ≥ 20 M samples/s on one core, ≤ 4 KiB of state per container.
//!
//! Run: `cargo bench --bench engine`. Figures go to BENCHMARKS.md.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tailor::config::{Policy, PricingConfig};
use tailor::domain::{ContainerRef, Resources, WorkloadKind, WorkloadRef};
use tailor::recommend::policy::{HpaScaling, RecommendInput, recommend};
use tailor::recommend::usage::{UsageEstimator, Window};
use tailor::units::{Bytes, MilliCores};

const DAY: i64 = 86_400;
const DAYS: i64 = 14;
const STEP: i64 = 60;

fn window() -> Window {
    Window {
        start: 0,
        end: DAYS * DAY,
        half_life_s: DAY as f64,
        startup_s: 300,
    }
}

/// A deterministic usage signal: diurnal wave plus hash noise.
fn cpu_at(container: u64, t: i64) -> f64 {
    let noise = ((t as u64 ^ container).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as f64
        / (1u64 << 24) as f64;
    let hour = (t % DAY) as f64 / 3600.0;
    0.05 + 0.3 * (1.0 + (hour / 24.0 * std::f64::consts::TAU).sin()) * (0.5 + noise)
}

fn feed(e: &mut UsageEstimator, w: &Window, container: u64) -> u64 {
    let mut n = 0;
    let mut t = w.start + STEP;
    while t <= w.end {
        let cpu = cpu_at(container, t);
        let _ = e.add_cpu(w, t, cpu, Some(t + 3600));
        let _ = e.add_memory_peak(w, t, 2e8 + cpu * 1e8, Some(t + 3600));
        n += 2;
        t += STEP;
    }
    n
}

fn bench(c: &mut Criterion) {
    let w = window();
    let samples_per_container = 2 * (DAYS * DAY / STEP) as u64;

    let mut group = c.benchmark_group("ingest");
    group.throughput(Throughput::Elements(samples_per_container));
    group.bench_function(
        "one container, 14 days of 1-minute CPU and memory samples",
        |b| {
            b.iter_batched_ref(
                || UsageEstimator::new(&w),
                |e| black_box(feed(e, &w, 7)),
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();

    let mut filled = UsageEstimator::new(&w);
    feed(&mut filled, &w, 7);
    eprintln!(
        "estimator state per container: {} bytes (target ≤ 4096)",
        filled.state_bytes()
    );
    let target = ContainerRef {
        workload: WorkloadRef {
            namespace: "bench".into(),
            kind: WorkloadKind::Deployment,
            name: "web".into(),
        },
        container: "app".into(),
    };
    let policy = Policy::default();
    let pricing = PricingConfig::default();
    c.bench_function("recommend one container", |b| {
        b.iter(|| {
            let input = RecommendInput {
                target: target.clone(),
                current: Resources {
                    cpu_request: Some(MilliCores(1000)),
                    cpu_limit: None,
                    memory_request: Some(Bytes::gib(1)),
                    memory_limit: Some(Bytes::gib(1)),
                },
                usage: &filled,
                window: w,
                replicas: 3,
                billed_replicas: 3.0,
                hpa: HpaScaling::default(),
                node_capacity: None,
            };
            black_box(recommend(&input, &policy, &pricing))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);

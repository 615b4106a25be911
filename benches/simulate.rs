//! The simulator with the agent active: 500 workloads for 28 days (14 of
//! history, 14 with the agent in auto mode) at 1-minute resolution.
//! Target (issue "closed loop"): under 10 s on one core.
//!
//! Run: `cargo bench --bench simulate`. Under `cargo test` (no `--bench`)
//! it runs a two-workload scenario once, to prove it still works.

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tailor::sim::run::{load_scenario_models, run};
use tailor::sim::scenario::Scenario;

fn bench(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let path = root.join("simulations/bench/fleet-500.yaml");
    let mut scenario = Scenario::load(&path).expect("bench scenario");
    let models = load_scenario_models(&scenario, &path).expect("models");
    let benchmarking = std::env::args().any(|a| a == "--bench");
    if !benchmarking {
        for entry in &mut scenario.fleet {
            entry.count = 1;
        }
        scenario.fleet.truncate(2);
        scenario.history = Duration::from_secs(86_400);
        scenario.duration = Duration::from_secs(86_400);
    }
    let workloads: u32 = scenario.fleet.iter().map(|f| f.count).sum();
    let mut group = c.benchmark_group("simulate");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(60));
    group.bench_function(
        format!("{workloads} workloads, 28 days, agent active"),
        |b| {
            b.iter(|| {
                let report = run(&scenario, &models, scenario.seed, &|_, _| {}).expect("runs");
                black_box(report)
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The agent's footprint in the simulator (issue "prove it side by side"):
//! CPU per loop and resident memory with 1,000 and 10,000 pod containers.
//!
//! The fleet is fleet-500's mix of models with two replicas each (so N
//! containers are N / 2 workloads). The simulator runs 14 days of history,
//! then the real agent in auto mode for one simulated day: 1,440 ticks, 24
//! of them full recommendation refreshes (`recommend_interval` 1 h). Each
//! tick's CPU is the main thread's run time (`/proc/thread-self/schedstat`,
//! nanoseconds); memory is the process RSS before the agent starts and its
//! peak after the day.
//!
//! In the simulator the process also holds the simulated cluster (every
//! pod's usage, 50 hours of per-minute SLIs per workload), so RSS here is
//! an upper bound for the agent; `benches/prometheus_load.rs` measures the
//! real binary against a real Prometheus.
//!
//! Run: `cargo bench --bench footprint -- --containers 1000` (default:
//! 1,000 and 10,000). Under `cargo test` it runs 20 containers for a
//! simulated hour, to prove it still works.

use std::path::Path;
use std::time::Instant;

use tailor::sim::run::{agent_settings, build_world, complete, load_scenario_models, start_agent};
use tailor::sim::scenario::Scenario;

/// CPU time of this thread in nanoseconds (`/proc/thread-self/schedstat`,
/// first field: time spent running).
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .expect("read /proc/thread-self/schedstat")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("run time in ns")
}

fn status_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// fleet-500's mix, `containers / 2` workloads of two replicas.
fn scenario(containers: u32, history_days: u32, agent_minutes: u32) -> Scenario {
    let workloads = (containers / 2).max(5);
    let mix = [
        ("diurnal-web", 40, "web"),
        ("microburst-latency", 12, "payments"),
        ("jvm-service", 20, "search"),
        ("batch-cron", 16, "batch"),
        ("idle", 12, "tools"),
    ];
    let mut fleet = String::new();
    let mut placed = 0;
    for (i, (model, percent, namespace)) in mix.iter().enumerate() {
        let count = if i + 1 == mix.len() {
            workloads - placed
        } else {
            workloads * percent / 100
        };
        placed += count;
        fleet.push_str(&format!(
            "  - {{ model: {model}, count: {count}, namespace: {namespace}, replicas: 2 }}\n"
        ));
    }
    let yaml = format!(
        "name: footprint-{containers}\nseed: 7\nhistory: {history_days}d\nduration: {agent_minutes}m\n\
         models: models\nagent:\n  guardrails:\n    mode: auto\nfleet:\n{fleet}"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("footprint.yaml");
    Scenario::from_yaml(&yaml, &root).expect("footprint scenario")
}

struct Footprint {
    containers: u32,
    workloads: usize,
    history_s: f64,
    rss_world_mib: f64,
    rss_peak_mib: f64,
    refresh_ticks: u64,
    refresh_cpu_s: f64,
    plain_ticks: u64,
    plain_cpu_s: f64,
}

fn measure(containers: u32, history_days: u32, agent_minutes: u32) -> Footprint {
    let scenario = scenario(containers, history_days, agent_minutes);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("footprint.yaml");
    let models = load_scenario_models(&scenario, &root).expect("models");
    let world = build_world(&scenario, &models, scenario.seed).expect("world");
    let workloads = world.workloads.len();
    let world = std::rc::Rc::new(std::cell::RefCell::new(world));
    let started = Instant::now();
    let agent_start = world.borrow().agent_start;
    while world.borrow().now < agent_start {
        world.borrow_mut().step_minute();
    }
    let history_s = started.elapsed().as_secs_f64();
    let rss_world_mib = status_mib("VmRSS:");
    let settings = agent_settings(&scenario);
    let mut agent = start_agent(&world, &settings).expect("agent");
    let refresh_every = settings.recommend_interval_s;
    let (mut refresh_ticks, mut refresh_cpu, mut plain_ticks, mut plain_cpu) = (0, 0, 0, 0);
    let end = world.borrow().end;
    let mut last_refresh: Option<i64> = None;
    while world.borrow().now < end {
        world.borrow_mut().step_minute();
        let now = world.borrow().now;
        let refresh = last_refresh.is_none_or(|t| now - t >= refresh_every);
        if refresh {
            last_refresh = Some(now);
        }
        let before = thread_cpu_ns();
        complete(agent.tick())
            .expect("a simulated port waited")
            .expect("tick");
        let used = thread_cpu_ns() - before;
        if refresh {
            refresh_ticks += 1;
            refresh_cpu += used;
        } else {
            plain_ticks += 1;
            plain_cpu += used;
        }
    }
    Footprint {
        containers,
        workloads,
        history_s,
        rss_world_mib,
        rss_peak_mib: status_mib("VmHWM:"),
        refresh_ticks,
        refresh_cpu_s: refresh_cpu as f64 / 1e9,
        plain_ticks,
        plain_cpu_s: plain_cpu as f64 / 1e9,
    }
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    let benchmarking = argv.iter().any(|a| a == "--bench");
    if !benchmarking {
        let f = measure(20, 1, 60);
        assert_eq!(f.workloads, 10);
        assert_eq!(f.refresh_ticks + f.plain_ticks, 60);
        println!("footprint: smoke run ok (run with cargo bench --bench footprint)");
        return;
    }
    let sizes: Vec<u32> = match argv.iter().position(|a| a == "--containers") {
        Some(i) => vec![argv[i + 1].parse().expect("--containers N")],
        None => vec![1000, 10_000],
    };
    println!(
        "| containers | workloads | RSS before agent MiB | peak RSS MiB | CPU per refresh tick s | CPU per other tick ms | CPU per hour s |"
    );
    println!("|---|---|---|---|---|---|---|");
    for n in sizes {
        // Peaks are per process: run one size per process for clean figures
        // (scripts/bench-footprint does).
        let f = measure(n, 14, 24 * 60);
        let per_refresh = f.refresh_cpu_s / f.refresh_ticks.max(1) as f64;
        let per_plain = f.plain_cpu_s / f.plain_ticks.max(1) as f64;
        let per_hour = (f.refresh_cpu_s + f.plain_cpu_s) / 24.0;
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.4} | {:.3} | {:.3} |",
            f.containers,
            f.workloads,
            f.rss_world_mib,
            f.rss_peak_mib,
            per_refresh,
            per_plain * 1000.0,
            per_hour
        );
        eprintln!(
            "({} containers: 14 days of history simulated in {:.0} s)",
            f.containers, f.history_s
        );
    }
}

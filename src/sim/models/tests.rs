use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;

const DAY: i64 = 86_400;
const HOUR: i64 = 3_600;
const MIB: f64 = 1_048_576.0;
/// Monday 2024-03-04 00:00 UTC.
const MONDAY: i64 = 1_709_510_400;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("models")
}

fn model(name: &str) -> ModelSpec {
    load_model(&models_dir().join(format!("{name}.yaml"))).expect("a model file of the repo")
}

/// The shared traces folder (`../shared/traces` from the crate root, or
/// `/work/shared/traces`), if this machine has it.
fn traces_dir() -> Option<PathBuf> {
    [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/traces"),
        PathBuf::from("/work/shared/traces"),
    ]
    .into_iter()
    .find(|dir| dir.join("bitbrains-rnd-2013-7").is_dir())
}

fn diurnal(spec: &ModelSpec) -> &Diurnal {
    match &spec.workload {
        WorkloadModel::Diurnal(m) => m,
        other => panic!("not diurnal: {other:?}"),
    }
}

fn microburst(spec: &ModelSpec) -> &Microburst {
    match &spec.workload {
        WorkloadModel::Microburst(m) => m,
        other => panic!("not microburst: {other:?}"),
    }
}

fn limit(cores: f64) -> Given {
    Given {
        cpu_limit_cores: Some(cores),
        ..Given::default()
    }
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn write_file(path: &Path, text: &str) {
    std::fs::write(path, text).expect("writing a test file");
}

// ---------------------------------------------------------------- model files

#[test]
fn every_model_file_loads_with_its_archetype() {
    let expected = [
        ("batch-cron", "batch"),
        ("diurnal-web", "diurnal"),
        ("idle", "idle"),
        ("jvm-service", "jvm"),
        ("memory-leak", "leak"),
        ("microburst-latency", "microburst"),
        ("trace-replay", "trace"),
    ];
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(models_dir()).expect("models/ exists") {
        let path = entry.expect("a folder entry").path();
        if path.extension().is_none_or(|ext| ext != "yaml") {
            continue;
        }
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("utf-8")
            .to_string();
        match load_model(&path) {
            Ok(spec) => {
                assert_eq!(spec.name, name);
                assert!(!spec.description.is_empty(), "{name}: describe it");
                assert!(spec.defaults.replicas >= 1);
                assert!(spec.defaults.resources.cpu_request.is_some(), "{name}");
                let kind = expected.iter().find(|(n, _)| *n == name).map(|(_, k)| *k);
                assert_eq!(Some(spec.workload.kind()), kind, "{name}");
            }
            // The worktree has no ../shared next to it; the trace model is
            // checked from a copy below.
            Err(ModelError::Invalid { key, .. })
                if name == "trace-replay" && key == "workload.trace.file" => {}
            Err(e) => panic!("{e}"),
        }
        seen.push(name);
    }
    seen.sort();
    let expected: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(seen, expected);
}

#[test]
fn the_trace_model_resolves_shared_traces_relative_to_its_folder() {
    let Some(traces) = traces_dir() else {
        println!("skipped: no traces");
        return;
    };
    // A copy of the repo layout: <root>/repo/models/*.yaml beside
    // <root>/shared, as CI clones the repo beside shared/.
    let root = tempfile::tempdir().expect("temp dir");
    let models = root.path().join("repo/models");
    std::fs::create_dir_all(&models).expect("mkdir");
    for entry in std::fs::read_dir(models_dir()).expect("models/") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|ext| ext == "yaml") {
            std::fs::copy(&path, models.join(path.file_name().expect("a file"))).expect("copy");
        }
    }
    let shared = traces.parent().expect("traces has a parent");
    std::os::unix::fs::symlink(shared, root.path().join("shared")).expect("symlink");

    let all = load_models(&models).expect("every model loads");
    assert_eq!(all.len(), 7);
    let spec = &all["trace-replay"];
    let WorkloadModel::Trace(replay) = &spec.workload else {
        panic!("not a trace: {:?}", spec.workload);
    };
    assert!(
        replay
            .trace
            .source
            .ends_with("bitbrains-rnd-2013-7/vm-001.csv.gz")
    );
    assert_eq!(replay.start, replay.trace.start_s);
    assert_eq!(replay.trace.requested_cpu_cores, 2.0);
    // The defaults are the VM's provisioned sizes.
    let resources = spec.defaults.resources;
    assert_eq!(
        resources.cpu_request.map(|m| m.cores()),
        Some(replay.trace.requested_cpu_cores)
    );
    assert_eq!(
        resources.memory_request.map(|b| b.as_f64()),
        Some(replay.trace.requested_memory_bytes)
    );
}

#[test]
fn load_models_reads_a_folder_keyed_by_name_and_shares_traces() {
    let dir = tempfile::tempdir().expect("temp dir");
    let trace = dir.path().join("vm-007.csv.gz");
    write_gz(&trace, SMALL_TRACE);
    for name in ["a", "b"] {
        write_file(
            &dir.path().join(format!("{name}.yaml")),
            &trace_model_yaml(name, "file: .\n    vm: 7"),
        );
    }
    write_file(&dir.path().join("notes.txt"), "not a model");
    let all = load_models(dir.path()).expect("loads");
    assert_eq!(all.keys().collect::<Vec<_>>(), ["a", "b"]);
    let trace_of = |name: &str| match &all[name].workload {
        WorkloadModel::Trace(r) => Arc::clone(&r.trace),
        other => panic!("{other:?}"),
    };
    assert!(Arc::ptr_eq(&trace_of("a"), &trace_of("b")));
}

fn trace_model_yaml(name: &str, source: &str) -> String {
    format!(
        "name: {name}\nworkload:\n  trace:\n    {source}\nresponse:\n  base_latency: 50ms\n  \
         tail_ratio: 2\n  base_error_ratio: 0\n  latency_sensitivity: 1\n  timeout: 1s\n  \
         restart_time: 5s\ndefaults:\n  replicas: 1\n  resources:\n    cpu_request: 2\n"
    )
}

fn parse_error(yaml: &str, file: &str) -> (ModelError, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(file);
    write_file(&path, yaml);
    let err = load_model(&path).expect_err("a bad model");
    let text = err.to_string();
    assert!(
        text.contains(&path.display().to_string()),
        "names the file: {text}"
    );
    (err, text)
}

fn diurnal_yaml() -> String {
    std::fs::read_to_string(models_dir().join("diurnal-web.yaml")).expect("the repo's model")
}

#[test]
fn an_unknown_key_names_the_file_and_the_key() {
    let yaml = diurnal_yaml().replace("peak_hour: 14", "peak_hours: 14");
    let (err, text) = parse_error(&yaml, "diurnal-web.yaml");
    match err {
        ModelError::Parse { key, message, .. } => {
            assert_eq!(key, "workload.diurnal.peak_hours");
            assert!(
                message.contains("peak_hour"),
                "lists the keys allowed: {message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(text.contains("`workload.diurnal.peak_hours`"), "{text}");
}

#[test]
fn a_bad_quantity_names_the_key_and_the_way_to_write_it() {
    let cases = [
        (
            "cpu_base: 30m",
            "cpu_base: 30x",
            "workload.diurnal.cpu_base",
        ),
        (
            "memory_base: 280Mi",
            "memory_base: lots",
            "workload.diurnal.memory_base",
        ),
        (
            "memory_limit: 1Gi",
            "memory_limit: 1Gb",
            "defaults.resources.memory_limit",
        ),
        ("timeout: 2s", "timeout: 2", "response.timeout"),
    ];
    for (from, to, expected_key) in cases {
        let yaml = diurnal_yaml().replace(from, to);
        assert_ne!(yaml, diurnal_yaml(), "{from} is in the file");
        let (err, text) = parse_error(&yaml, "diurnal-web.yaml");
        match err {
            ModelError::Parse { key, .. } => assert_eq!(key, expected_key, "{text}"),
            other => panic!("{to}: {other:?}"),
        }
    }
}

#[test]
fn a_value_that_cannot_work_names_the_key_and_the_fix() {
    let cases = [
        (
            "trough_ratio: 0.25",
            "trough_ratio: 1.5",
            "workload.diurnal.trough_ratio",
        ),
        (
            "peak_hour: 14",
            "peak_hour: 24",
            "workload.diurnal.peak_hour",
        ),
        (
            "burst_fraction: 0.1",
            "burst_fraction: 0.9",
            "workload.diurnal.burst_fraction",
        ),
        ("tail_ratio: 1.8", "tail_ratio: 1", "response.tail_ratio"),
        ("timeout: 2s", "timeout: 100ms", "response.timeout"),
        ("replicas: 3", "replicas: 0", "defaults.replicas"),
        (
            "memory_request: 1Gi",
            "memory_request: 2Gi",
            "defaults.resources.memory_limit",
        ),
    ];
    for (from, to, expected_key) in cases {
        let yaml = diurnal_yaml().replace(from, to);
        assert_ne!(yaml, diurnal_yaml(), "{from} is in the file");
        let (err, text) = parse_error(&yaml, "diurnal-web.yaml");
        match err {
            ModelError::Invalid { key, fix, .. } => {
                assert_eq!(key, expected_key, "{text}");
                assert!(!fix.is_empty());
                assert!(text.contains("fix: "), "{text}");
            }
            other => panic!("{to}: {other:?}"),
        }
    }
}

#[test]
fn a_model_is_named_after_its_file() {
    let (err, _) = parse_error(&diurnal_yaml(), "web.yaml");
    assert!(matches!(err, ModelError::Invalid { key, .. } if key == "name"));
}

#[test]
fn a_missing_trace_names_the_key_and_where_it_looked() {
    let yaml = trace_model_yaml("t", "file: nowhere/vm-001.csv.gz");
    let (err, text) = parse_error(&yaml, "t.yaml");
    assert!(
        matches!(&err, ModelError::Invalid { key, .. } if key == "workload.trace.file"),
        "{text}"
    );
    assert!(text.contains("nowhere/vm-001.csv.gz"), "{text}");

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("t.yaml");
    write_file(&path, &trace_model_yaml("t", "file: ."));
    let err = load_model(&path).expect_err("a folder without a VM");
    assert!(matches!(err, ModelError::Invalid { key, .. } if key == "workload.trace.vm"));
}

#[test]
fn a_trace_start_reads_unix_seconds_and_rfc3339() {
    let dir = tempfile::tempdir().expect("temp dir");
    write_gz(&dir.path().join("vm.csv.gz"), SMALL_TRACE);
    for (start, expected) in [
        ("1709510400", MONDAY),
        ("2024-03-04T00:00:00Z", MONDAY),
        ("2024-03-04T01:00:00+01:00", MONDAY),
    ] {
        let path = dir.path().join("t.yaml");
        write_file(
            &path,
            &trace_model_yaml("t", &format!("file: vm.csv.gz\n    start: {start}")),
        );
        let spec = load_model(&path).expect("loads");
        let WorkloadModel::Trace(replay) = spec.workload else {
            panic!("not a trace");
        };
        assert_eq!(replay.start, expected, "{start}");
    }
}

// ------------------------------------------------------------------- diurnal

#[test]
fn diurnal_traffic_peaks_at_the_configured_hour_and_is_lower_on_weekends() {
    let spec = model("diurnal-web");
    let web = diurnal(&spec);
    // Without noise the peak minute is exactly the peak hour.
    let quiet = WorkloadModel::Diurnal(Diurnal {
        noise: 0.0,
        ..web.clone()
    });
    let wednesday = MONDAY + 2 * DAY;
    let (peak_minute, peak) = (0..1440)
        .map(|m| (m, quiet.demand(1, wednesday + m * 60, 0, 3, 0).cpu_cores))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("a day of minutes");
    assert_eq!(peak_minute, (web.peak_hour * 60.0) as i64);
    let expected_peak = web.cpu_base_cores + web.cpu_cores_per_rps * web.peak_requests_per_s / 3.0;
    assert!(
        (peak - expected_peak).abs() < 1e-12,
        "{peak} vs {expected_peak}"
    );
    // The trough is twelve hours later, at trough_ratio of the peak traffic.
    let trough = quiet
        .demand(1, wednesday + 2 * HOUR, 0, 3, 0)
        .requests_per_s;
    assert!((trough - web.trough_ratio * web.peak_requests_per_s / 3.0).abs() < 1e-9);
    // Saturday at the same hour is weekend_ratio of Wednesday.
    let saturday = MONDAY + 5 * DAY;
    let at = |day: i64| quiet.demand(1, day + 14 * HOUR, 0, 3, 0).requests_per_s;
    assert!((at(saturday) / at(wednesday) - web.weekend_ratio).abs() < 1e-12);
    assert!((at(saturday + DAY) / at(wednesday) - web.weekend_ratio).abs() < 1e-12);
    assert_eq!(at(MONDAY), at(wednesday));

    // With noise, the busiest hour on average is still the peak hour, and
    // the weekend is lower by weekend_ratio within a percent.
    let hourly_mean = |day: i64, hour: i64| {
        (0..60)
            .map(|m| {
                spec.workload
                    .demand(1, day + hour * HOUR + m * 60, 0, 3, 0)
                    .cpu_cores
            })
            .sum::<f64>()
            / 60.0
    };
    let busiest = (0..24)
        .max_by(|a, b| hourly_mean(wednesday, *a).total_cmp(&hourly_mean(wednesday, *b)))
        .expect("24 hours");
    assert_eq!(busiest, 14);
    let day_traffic = |day: i64| {
        (0..1440)
            .map(|m| {
                spec.workload
                    .demand(1, day + m * 60, 0, 3, 0)
                    .requests_per_s
            })
            .sum::<f64>()
    };
    let ratio = day_traffic(saturday) / day_traffic(wednesday);
    assert!((ratio - web.weekend_ratio).abs() < 0.01, "{ratio}");
}

#[test]
fn diurnal_traffic_is_shared_across_replicas() {
    let spec = model("diurnal-web");
    let web = diurnal(&spec);
    for replicas in [1u32, 3, 10] {
        let t = MONDAY + 14 * HOUR;
        let total: f64 = (0..replicas)
            .map(|r| spec.workload.demand(7, t, r, replicas, 0).requests_per_s)
            .sum();
        // Noise is ±10 % per replica; the sum stays within that of the total.
        let expected = web.peak_requests_per_s;
        assert!(
            (total / expected - 1.0).abs() <= web.noise + 1e-9,
            "{replicas}: {total}"
        );
    }
}

#[test]
fn a_diurnal_request_cut_to_80_percent_of_p90_on_an_idle_node_changes_no_sli() {
    let spec = model("diurnal-web");
    let week: Vec<Demand> = (0..7 * 1440)
        .map(|m| spec.workload.demand(3, MONDAY + m * 60, 0, 3, 0))
        .collect();
    let p90 = percentile(
        &mut week.iter().map(|d| d.cpu_cores).collect::<Vec<_>>(),
        0.9,
    );
    let before = Given::from_resources(&spec.defaults.resources, 0.0);
    let cut = Given {
        cpu_request_cores: Some(0.8 * p90),
        ..before
    };
    assert!(
        before.cpu_limit_cores.is_none(),
        "the model has no CPU limit"
    );
    let mut above_request = 0;
    for demand in &week {
        let a = respond(&spec.response, demand, &before);
        let b = respond(&spec.response, demand, &cut);
        assert_eq!(a, b, "{demand:?}");
        assert_eq!(b.latency_p95_s, spec.response.base_latency_s);
        assert_eq!(b.error_ratio, spec.response.base_error_ratio);
        above_request += usize::from(demand.cpu_cores > 0.8 * p90);
    }
    assert!(above_request > week.len() / 10, "the cut is a real cut");

    // On a busy node, the same cut does slow the minutes above the request.
    let busy = Given {
        node_contention: 0.8,
        ..cut
    };
    let slowed = week
        .iter()
        .filter(|d| respond(&spec.response, d, &busy).latency_p95_s > spec.response.base_latency_s)
        .count();
    assert!(slowed > week.len() / 10, "{slowed}");
}

// ---------------------------------------------------------------- microburst

#[test]
fn microburst_averages_its_configured_cpu_while_bursting_above_its_burst_level() {
    let spec = model("microburst-latency");
    let m = microburst(&spec);
    let minutes = 20_000;
    let mut sum = 0.0;
    for i in 0..minutes {
        let d = spec.workload.demand(11, MONDAY + i * 60, 1, 2, 0);
        assert!(d.cpu_burst_cores >= m.cpu_burst_cores, "{d:?}");
        assert!(d.cpu_burst_cores <= m.cpu_burst_cores * (1.0 + m.noise));
        assert_eq!(d.burst_fraction, m.burst_fraction);
        assert!(
            d.cpu_base_cores() > 0.0,
            "the bursts fit in the average: {d:?}"
        );
        sum += d.cpu_cores;
    }
    let mean = sum / minutes as f64;
    assert!((mean / m.cpu_average_cores - 1.0).abs() < 0.005, "{mean}");
}

#[test]
fn the_microburst_trap_a_limit_below_the_bursts_doubles_p99_only() {
    let spec = model("microburst-latency");
    let m = microburst(&spec);
    let r = &spec.response;
    let base_p95 = r.base_latency_s;
    let base_p99 = r.base_latency_s * r.tail_ratio;
    let configured = spec.defaults.resources.cpu_limit.expect("a limit").cores();
    assert!(
        configured > m.cpu_burst_cores * (1.0 + m.noise),
        "starts above the bursts"
    );
    // A limit a recommender would pick from the average: well above p99 of
    // the per-minute average, well below the bursts.
    let mut averages: Vec<f64> = (0..10_000)
        .map(|i| spec.workload.demand(5, MONDAY + i * 60, 0, 2, 0).cpu_cores)
        .collect();
    let tight = 2.0 * percentile(&mut averages, 0.99);
    assert!(tight < m.cpu_burst_cores / 2.0, "{tight}");

    for i in 0..10_000 {
        let d = spec.workload.demand(5, MONDAY + i * 60, 0, 2, 0);
        let roomy = respond(r, &d, &limit(configured));
        assert_eq!(roomy.latency_p99_s, base_p99);
        assert_eq!(roomy.latency_p95_s, base_p95);
        assert_eq!(roomy.throttled_ratio, 0.0);

        let trap = respond(r, &d, &limit(tight));
        assert!(trap.latency_p99_s >= 2.0 * base_p99, "{d:?} {trap:?}");
        assert!(
            (trap.latency_p95_s / base_p95 - 1.0).abs() <= 0.1,
            "{trap:?}"
        );
        assert_eq!(
            trap.cpu_used_cores, roomy.cpu_used_cores,
            "the average does not move"
        );
        assert!(
            trap.throttled_ratio > d.burst_fraction,
            "throttling shows: {trap:?}"
        );
        assert!(
            trap.error_ratio < r.base_error_ratio * 1.01,
            "no timeouts: {trap:?}"
        );
    }
}

#[test]
fn a_percentile_moves_once_the_slowed_requests_outnumber_its_tail() {
    let r = model("microburst-latency").response;
    let demand = |fraction: f64| Demand {
        cpu_cores: 0.2,
        cpu_burst_cores: 1.0,
        burst_fraction: fraction,
        memory_bytes: 0.0,
        requests_per_s: 10.0,
    };
    let p = |fraction| respond(&r, &demand(fraction), &limit(0.5));
    // Exactly 1 % slowed: the p99 (nearest rank) is still unslowed.
    assert_eq!(p(0.01).latency_p99_s, r.base_latency_s * r.tail_ratio);
    assert_eq!(p(0.02).latency_p99_s, 2.0 * r.base_latency_s * r.tail_ratio);
    assert_eq!(p(0.05).latency_p95_s, r.base_latency_s);
    assert_eq!(p(0.06).latency_p95_s, 2.0 * r.base_latency_s);
}

// ------------------------------------------------------------ other archetypes

#[test]
fn jvm_spikes_only_for_the_first_minutes_of_a_pod() {
    let spec = model("jvm-service");
    let WorkloadModel::Jvm(jvm) = &spec.workload else {
        panic!("not a jvm");
    };
    let n = jvm.startup_s / 60;
    assert_eq!(n, 4);
    let t0 = MONDAY + 10 * HOUR;
    for minute in 0..60 {
        let age = minute * 60;
        let d = spec.workload.demand(2, t0 + age, 1, 3, age);
        let (lo, hi) = if minute < n {
            (jvm.startup_cpu_cores, jvm.startup_cpu_cores)
        } else {
            (jvm.cpu_cores, jvm.cpu_cores)
        };
        assert!(
            d.cpu_cores >= lo * (1.0 - jvm.noise),
            "minute {minute}: {d:?}"
        );
        assert!(
            d.cpu_cores <= hi * (1.0 + jvm.noise),
            "minute {minute}: {d:?}"
        );
    }
    // A new pod at any time spikes again, whatever the wall clock.
    let later = spec.workload.demand(2, t0 + 5 * DAY, 0, 3, 30);
    assert!(later.cpu_cores >= jvm.startup_cpu_cores * (1.0 - jvm.noise));
}

#[test]
fn jvm_heap_climbs_toward_its_ceiling_in_a_gc_sawtooth() {
    let spec = model("jvm-service");
    let WorkloadModel::Jvm(jvm) = &spec.workload else {
        panic!("not a jvm");
    };
    let ceiling = jvm.non_heap_bytes + jvm.heap_max_bytes;
    let start = jvm.memory_bytes(0);
    assert_eq!(
        start,
        jvm.non_heap_bytes + jvm.heap_initial_bytes * (1.0 - jvm.gc_drop)
    );
    let mut highest = 0.0f64;
    let mut drops = 0;
    let mut previous = start;
    for minute in 1..(3 * 1440) {
        let m = jvm.memory_bytes(minute * 60);
        assert!(m < ceiling, "never past the ceiling");
        if m < previous {
            drops += 1;
        }
        highest = highest.max(m);
        previous = m;
    }
    // One drop per GC period, and the high-water mark ends near the ceiling.
    assert_eq!(drops, (3 * 1440 - 1) / (jvm.gc_period_s / 60));
    // Sampled once a minute, the top of a sawtooth is a minute short of it.
    let top = jvm.non_heap_bytes
        + jvm.heap_max_bytes * (1.0 - jvm.gc_drop * 60.0 / jvm.gc_period_s as f64);
    assert!(
        highest > top - 0.001 * jvm.heap_max_bytes,
        "{highest} vs {top}"
    );
    let limit = spec
        .defaults
        .resources
        .memory_limit
        .expect("a limit")
        .as_f64();
    assert!(ceiling < limit, "the default limit holds the heap");
}

#[test]
fn a_leak_grows_linearly_with_pod_age_and_resets_with_a_new_pod() {
    let spec = model("memory-leak");
    let WorkloadModel::Leak(leak) = &spec.workload else {
        panic!("not a leak");
    };
    let t = MONDAY + 3 * DAY;
    let at = |age: i64| spec.workload.demand(9, t, 0, 2, age).memory_bytes;
    assert_eq!(at(0), leak.memory_initial_bytes);
    for hours in [1, 10, 100, 1000] {
        let grown = at(hours * HOUR) - at(0);
        assert!((grown - hours as f64 * leak.memory_growth_bytes_per_hour).abs() < 1e-3);
    }
    assert_eq!(leak.memory_growth_bytes_per_hour, 15.0 * MIB);
    // The other replica, on a pod started just now, is back at the start.
    assert_eq!(
        spec.workload.demand(9, t, 1, 2, 0).memory_bytes,
        leak.memory_initial_bytes
    );
    assert_eq!(
        spec.workload.demand(9, t + DAY, 1, 2, 0).memory_bytes,
        at(0)
    );
}

#[test]
fn batch_is_busy_only_inside_its_daily_window() {
    let spec = model("batch-cron");
    let WorkloadModel::Batch(batch) = &spec.workload else {
        panic!("not a batch");
    };
    for day in 0..7 {
        for minute in 0..1440 {
            let t = MONDAY + day * DAY + minute * 60;
            let d = spec.workload.demand(4, t, 0, 1, t - MONDAY);
            let busy = (120..180).contains(&minute);
            assert_eq!(batch.is_busy(t), busy, "minute {minute}");
            if busy {
                assert!(d.cpu_cores >= batch.busy_cpu_cores * (1.0 - batch.noise));
                assert_eq!(d.memory_bytes, batch.busy_memory_bytes);
            } else {
                assert_eq!(d.cpu_cores, batch.idle_cpu_cores);
                assert_eq!(d.memory_bytes, batch.idle_memory_bytes);
            }
            assert_eq!(d.requests_per_s, 0.0);
        }
    }
    // A window may cross midnight.
    let night = Batch {
        window_start_s: 23 * HOUR,
        window_s: 2 * HOUR,
        ..batch.clone()
    };
    assert!(night.is_busy(MONDAY + 23 * HOUR + 30 * 60));
    assert!(night.is_busy(MONDAY + DAY + 59 * 60));
    assert!(!night.is_busy(MONDAY + DAY + HOUR));
    assert!(!night.is_busy(MONDAY + 22 * HOUR + 59 * 60));
}

#[test]
fn idle_is_nearly_nothing() {
    let spec = model("idle");
    for i in 0..1440 {
        let d = spec.workload.demand(8, MONDAY + i * 60, 0, 1, i * 60);
        assert!(d.cpu_cores <= 0.003 && d.cpu_cores > 0.0, "{d:?}");
        assert_eq!(d.memory_bytes, 24.0 * MIB);
        assert_eq!(d.requests_per_s, 0.0);
    }
}

// ------------------------------------------------------------------ responses

#[test]
fn oom_kill_exactly_when_memory_demand_exceeds_the_limit() {
    let spec = model("memory-leak");
    let WorkloadModel::Leak(leak) = &spec.workload else {
        panic!("not a leak");
    };
    let limit_bytes = spec
        .defaults
        .resources
        .memory_limit
        .expect("a limit")
        .as_f64();
    let hours_to_oom =
        (limit_bytes - leak.memory_initial_bytes) / leak.memory_growth_bytes_per_hour;
    let given = Given::from_resources(&spec.defaults.resources, 0.0);
    let killed = |age: i64| {
        let d = spec.workload.demand(1, MONDAY, 0, 2, age);
        (
            respond(&spec.response, &d, &given).oom_killed,
            d.memory_bytes,
        )
    };
    let edge = (hours_to_oom * 3600.0) as i64;
    let (at_edge, memory) = killed(edge);
    assert_eq!(at_edge, memory > limit_bytes);
    assert!(!killed(edge - 1).0);
    assert!(killed(edge + 1).0);
    assert!(!killed(0).0);

    let demand = |memory_bytes| Demand {
        memory_bytes,
        ..spec.workload.demand(1, MONDAY, 0, 2, 0)
    };
    let with_limit = |limit| Given {
        memory_limit_bytes: limit,
        ..Given::default()
    };
    for (memory, limit, oom) in [
        (100.0, Some(100.0), false),
        (100.5, Some(100.0), true),
        (99.0, Some(100.0), false),
        (1e12, None, false),
    ] {
        let response = respond(&spec.response, &demand(memory), &with_limit(limit));
        assert_eq!(response.oom_killed, oom, "{memory} vs {limit:?}");
    }
}

#[test]
fn average_demand_above_the_limit_throttles_everything_and_then_times_out() {
    let r = model("diurnal-web").response;
    let demand = |cpu: f64| Demand {
        cpu_cores: cpu,
        cpu_burst_cores: cpu,
        burst_fraction: 0.0,
        memory_bytes: 0.0,
        requests_per_s: 10.0,
    };
    let at = |cpu| respond(&r, &demand(cpu), &limit(1.0));
    let just_under = at(0.99);
    assert_eq!(just_under.throttled_ratio, 0.0);
    assert_eq!(just_under.latency_p95_s, r.base_latency_s);

    let over = at(2.0);
    assert_eq!(over.throttled_ratio, 1.0);
    assert_eq!(over.cpu_used_cores, 1.0);
    let stretch = 1.0 + r.latency_sensitivity;
    assert!((over.latency_p95_s - r.base_latency_s * stretch).abs() < 1e-12);
    assert!((over.latency_p99_s - r.base_latency_s * r.tail_ratio * stretch).abs() < 1e-12);
    assert!(
        over.error_ratio < r.base_error_ratio * 1.01,
        "2× is slow, not failing"
    );

    // Errors grow with the slowdown once the tail reaches the timeout.
    let mut last = over.error_ratio;
    for cpu in [10.0, 20.0, 40.0, 80.0, 160.0] {
        let e = at(cpu).error_ratio;
        assert!(e > last, "{cpu}: {e} after {last}");
        last = e;
    }
    assert!(last > 0.3, "{last}");
    assert!(last <= 1.0);
}

#[test]
fn throttling_counts_the_periods_the_burst_backlog_takes_to_drain() {
    // 0.1 cores, except 1 core for 10 % of the minute: base 0.0.
    let demand = Demand {
        cpu_cores: 0.1,
        cpu_burst_cores: 1.0,
        burst_fraction: 0.1,
        memory_bytes: 0.0,
        requests_per_s: 1.0,
    };
    let r = model("diurnal-web").response;
    let throttled = |l| respond(&r, &demand, &limit(l)).throttled_ratio;
    assert_eq!(throttled(1.0), 0.0);
    // Limit 0.5: the burst's work takes twice as long, 20 % of the minute.
    assert!((throttled(0.5) - 0.2).abs() < 1e-12);
    assert!((throttled(0.25) - 0.4).abs() < 1e-12);
    assert_eq!(throttled(0.05), 1.0);
}

#[test]
fn demand_above_the_request_on_a_contended_node_slows_with_contention() {
    let r = model("microburst-latency").response;
    let demand = Demand {
        cpu_cores: 0.6,
        cpu_burst_cores: 0.6,
        burst_fraction: 0.0,
        memory_bytes: 0.0,
        requests_per_s: 1.0,
    };
    let given = |contention| Given {
        cpu_request_cores: Some(0.4),
        node_contention: contention,
        ..Given::default()
    };
    assert_eq!(
        respond(&r, &demand, &given(0.0)).latency_p95_s,
        r.base_latency_s
    );
    // 1 + contention × (0.6 − 0.4) / 0.4, with latency_sensitivity 1.
    for contention in [0.25, 0.5, 1.0] {
        let p95 = respond(&r, &demand, &given(contention)).latency_p95_s;
        let expected = r.base_latency_s * (1.0 + contention * 0.5);
        assert!((p95 - expected).abs() < 1e-12, "{contention}: {p95}");
    }
    // Within the request, a busy node does not matter.
    let within = Demand {
        cpu_cores: 0.3,
        cpu_burst_cores: 0.3,
        ..demand
    };
    assert_eq!(
        respond(&r, &within, &given(1.0)).latency_p95_s,
        r.base_latency_s
    );
    // No request at all: every core competes, and the numbers stay finite.
    let none = respond(
        &r,
        &demand,
        &Given {
            node_contention: 1.0,
            ..Given::default()
        },
    );
    assert!(
        none.latency_p99_s.is_finite() && none.error_ratio > 0.5,
        "{none:?}"
    );
}

#[test]
fn a_gap_in_the_demand_measures_nothing() {
    let r = model("idle").response;
    let response = respond(&r, &Demand::GAP, &limit(0.1));
    assert!(response.latency_p95_s.is_nan() && response.cpu_used_cores.is_nan());
    assert!(!response.oom_killed);
}

// --------------------------------------------------------------- determinism

#[test]
fn demand_is_a_pure_function_of_its_inputs() {
    for spec in [
        "diurnal-web",
        "microburst-latency",
        "jvm-service",
        "batch-cron",
        "memory-leak",
    ]
    .map(model)
    {
        let busy = MONDAY + 2 * HOUR + 30 * 60; // inside the batch window
        let a = spec.workload.demand(42, busy, 0, 3, 600);
        assert_eq!(
            a,
            spec.workload.demand(42, busy, 0, 3, 600),
            "{}",
            spec.name
        );
        // The same minute, asked at another second: the same noise.
        assert_eq!(
            a,
            spec.workload.demand(42, busy + 59, 0, 3, 600),
            "{}",
            spec.name
        );
        let other_replica = spec.workload.demand(42, busy, 1, 3, 600);
        assert_ne!(a.cpu_cores, other_replica.cpu_cores, "{}", spec.name);
        let other_seed = spec.workload.demand(43, busy, 0, 3, 600);
        assert_ne!(a.cpu_cores, other_seed.cpu_cores, "{}", spec.name);
        let next_minute = spec.workload.demand(42, busy + 60, 0, 3, 660);
        assert_ne!(a.cpu_cores, next_minute.cpu_cores, "{}", spec.name);
    }
}

#[test]
fn noise_is_uniform_and_independent_across_replicas() {
    let n = 50_000;
    let mut buckets = [0usize; 10];
    let mut same = 0;
    for i in 0..n {
        let t = MONDAY + i * 60;
        let a = workload::Noise::new(1, 0, t).unit(0);
        let b = workload::Noise::new(1, 1, t).unit(0);
        buckets[(a * 10.0) as usize] += 1;
        same += usize::from((a < 0.5) == (b < 0.5));
    }
    for count in buckets {
        assert!((count as f64 / n as f64 - 0.1).abs() < 0.01, "{buckets:?}");
    }
    assert!((same as f64 / n as f64 - 0.5).abs() < 0.01, "{same}");
}

// --------------------------------------------------------------------- traces

const SMALL_TRACE: &str = "\
timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,mem_capacity_kb,mem_usage_kb
1000,2,5000.0,500.0,1048576,524288
1300,0,0.0,0.0,0,0
1601,2,5000.0,2500.0,1048576,262144
1601,2,5000.0,3000.0,1048576,262144
1899,2,5000.0,5300.0,1048576,2097152

2200,2,5000.0,-5.0,1048576,100
3100,4,10000.0,1000.0,2097152,1024
";

fn write_gz(path: &Path, text: &str) {
    let file = std::fs::File::create(path).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    gz.write_all(text.as_bytes()).expect("write");
    gz.finish().expect("finish");
}

#[test]
fn a_raw_trace_is_cleaned_like_a_pipeline_would() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("vm-001.csv.gz");
    write_gz(&path, SMALL_TRACE);
    let trace = load_trace(&path).expect("parses");
    assert_eq!(trace.start_s, 1000);
    assert_eq!(trace.step_s, 300);
    let nan = f32::NAN;
    let gib: f32 = 1024.0 * 1024.0 * 1024.0;
    let expected_cpu = [0.2, nan, 1.2, 2.0, 0.0, nan, nan, 0.4];
    let expected_memory = [
        gib / 2.0,
        nan,
        gib / 4.0,
        gib,
        102_400.0,
        nan,
        nan,
        1_048_576.0,
    ];
    assert_eq!(trace.len(), expected_cpu.len());
    for (i, (got, want)) in trace.cpu_cores.iter().zip(expected_cpu).enumerate() {
        assert!(
            got.to_bits() == want.to_bits() || (got - want).abs() < 1e-6,
            "cpu {i}: {got}"
        );
    }
    for (i, (got, want)) in trace.memory_bytes.iter().zip(expected_memory).enumerate() {
        assert!(
            got.to_bits() == want.to_bits() || got == &want,
            "memory {i}: {got}"
        );
    }
    assert_eq!(
        trace.cleaning,
        TraceCleaning {
            rows: 7,
            off_rows: 1,
            duplicate_rows: 1,
            negative_rows: 1,
            over_capacity_rows: 1,
            kept_rows: 5,
            gap_samples: 3,
        }
    );
    assert_eq!(trace.requested_cpu_cores, 2.0);
    assert_eq!(trace.requested_memory_bytes, 1024.0 * MIB);

    // The same text uncompressed parses the same.
    let plain = dir.path().join("vm.csv");
    write_file(&plain, SMALL_TRACE);
    let again = load_trace(&plain).expect("parses");
    assert_eq!(again.cleaning, trace.cleaning);
}

#[test]
fn trace_rows_out_of_order_and_drifting_land_on_the_right_slots() {
    let text = "timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,mem_capacity_kb,mem_usage_kb\n\
                1598,1,1000,300,1024,3\n1000,1,1000,100,1024,1\n1299,1,1000,200,1024,2\n\
                1899,1,1000,400,1024,4\n1960,1,1000,450,1024,5\n";
    let trace = Trace::parse(text.as_bytes(), Path::new("inline")).expect("parses");
    // 1960 is 61 s after 1899: the same slot, so the later row wins.
    assert_eq!(trace.cpu_cores, [0.1f32, 0.2, 0.3, 0.45]);
    assert_eq!(trace.cleaning.duplicate_rows, 1);
}

#[test]
fn a_malformed_trace_names_the_file_line_and_fix() {
    let bad_header = "Timestamp [ms];CPU cores\n1,2\n";
    let err = Trace::parse(bad_header.as_bytes(), Path::new("vm-x.csv")).expect_err("bad");
    assert!(matches!(&err, ModelError::Trace { line: 1, .. }), "{err}");
    let bad_number = "timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,mem_capacity_kb,mem_usage_kb\n\
                      1000,2,abc,1,1,1\n";
    let err = Trace::parse(bad_number.as_bytes(), Path::new("vm-x.csv")).expect_err("bad");
    let text = err.to_string();
    assert!(text.starts_with("vm-x.csv:2: `cpu_capacity_mhz`"), "{text}");
    let all_off = "timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,mem_capacity_kb,mem_usage_kb\n\
                   1000,0,0,0,0,0\n";
    let err = Trace::parse(all_off.as_bytes(), Path::new("vm-x.csv")).expect_err("empty");
    assert!(err.to_string().contains("pick another VM"), "{err}");
}

#[test]
fn trace_replay_holds_each_sample_wraps_around_and_keeps_gaps() {
    let trace = Trace::parse(SMALL_TRACE.as_bytes(), Path::new("inline")).expect("parses");
    let replay = WorkloadModel::Trace(TraceReplay {
        start: MONDAY,
        trace: Arc::new(trace),
        requests_per_s_per_core: 100.0,
        burst_ratio: 1.5,
        burst_fraction: 0.1,
    });
    let at = |t: i64| replay.demand(0, t, 0, 1, 0);
    assert!((at(MONDAY).cpu_cores - 0.2).abs() < 1e-6);
    assert_eq!(
        at(MONDAY).cpu_cores,
        at(MONDAY + 299).cpu_cores,
        "held for its step"
    );
    assert!((at(MONDAY).cpu_burst_cores - 0.3).abs() < 1e-6);
    assert!((at(MONDAY).requests_per_s - 20.0).abs() < 1e-4);
    assert!(at(MONDAY + 300).is_gap());
    assert!((at(MONDAY + 600).cpu_cores - 1.2).abs() < 1e-6);
    // 8 samples of 5 minutes: t + 40 min is sample 0 again, t − 5 min the last.
    assert_eq!(at(MONDAY + 2400), at(MONDAY));
    assert!((at(MONDAY - 300).cpu_cores - 0.4).abs() < 1e-6);
    // Every replica replays the same VM.
    assert_eq!(
        replay.demand(0, MONDAY, 1, 2, 0),
        replay.demand(9, MONDAY, 0, 2, 0)
    );
}

#[test]
fn bitbrains_vm_001_loads_with_plausible_values() {
    let Some(traces) = traces_dir() else {
        println!("skipped: no traces");
        return;
    };
    let trace = load_trace(&vm_file(&traces.join("bitbrains-rnd-2013-7"), 1)).expect("loads");
    let c = trace.cleaning;
    assert!((8_200..=8_300).contains(&c.rows), "{c:?}");
    assert_eq!(c.kept_rows + c.off_rows + c.duplicate_rows, c.rows);
    // About 29 days plus a 30-hour hole.
    let days = trace.duration_s() as f64 / 86_400.0;
    assert!((29.0..31.0).contains(&days), "{days}");
    assert!((300..=400).contains(&c.gap_samples), "{c:?}");
    assert_eq!(trace.requested_cpu_cores, 2.0);
    assert_eq!(trace.requested_memory_bytes, 8.0 * 1024.0 * MIB);
    let cpu: Vec<f64> = trace
        .cpu_cores
        .iter()
        .filter(|v| !v.is_nan())
        .map(|&v| f64::from(v))
        .collect();
    assert_eq!(cpu.len(), c.kept_rows);
    assert!(cpu.iter().all(|&v| (0.0..=2.0).contains(&v)));
    let mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
    assert!(
        mean > 0.001 && mean < 1.0,
        "a VM sized by guesswork: {mean}"
    );
    let memory_peak = trace
        .memory_bytes
        .iter()
        .filter(|v| !v.is_nan())
        .fold(0.0f32, |a, &b| a.max(b));
    assert!(f64::from(memory_peak) <= trace.requested_memory_bytes);
    assert!(f64::from(memory_peak) > 100.0 * MIB);
}

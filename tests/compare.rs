//! `tailor simulate --compare`: the real binary on a small scenario and on
//! a folder of synthetic traces in the Bitbrains format. The rules of each
//! baseline are pinned by the unit tests of `sim::compare`; these check the
//! command end to end.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output};

fn tailor(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args)
        .output()
        .expect("run tailor")
}

fn stdout(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// A VM trace: 2 vCPUs and 4 GiB provisioned, 5-minute rows for 30 days;
/// memory at 1 GiB for the first 14 days, `later_gib` after.
fn write_trace(dir: &Path, vm: u32, later_gib: f64) {
    let file = std::fs::File::create(dir.join(format!("vm-{vm:03}.csv.gz"))).expect("create");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    writeln!(
        gz,
        "timestamp_s,cpu_cores,cpu_capacity_mhz,cpu_usage_mhz,mem_capacity_kb,mem_usage_kb"
    )
    .expect("write");
    let start = 1_372_636_800; // 2013-07-01
    for i in 0..(30 * 288) {
        let day = i / 288;
        let gib = if day < 14 { 1.0 } else { later_gib };
        // 0.2–0.4 cores of 2 × 2600 MHz, a daily wave.
        let cores = 0.3 + 0.1 * ((i % 288) as f64 / 288.0 * std::f64::consts::TAU).sin();
        writeln!(
            gz,
            "{},2,5200,{:.1},4194304,{:.0}",
            start + i * 300,
            cores * 2600.0,
            gib * 1_048_576.0
        )
        .expect("write");
    }
    gz.finish().expect("finish");
}

#[test]
fn compare_on_traces_scores_every_policy_and_writes_csv() {
    let dir = tempfile::tempdir().expect("tempdir");
    let traces = dir.path().join("traces");
    std::fs::create_dir(&traces).expect("mkdir");
    write_trace(&traces, 1, 1.0);
    write_trace(&traces, 2, 1.6);
    let csv = dir.path().join("csv");
    let out = tailor(&[
        "simulate",
        "--compare",
        "vpa,krr,tailor",
        "--traces",
        traces.to_str().expect("utf-8"),
        "--csv",
        csv.to_str().expect("utf-8"),
        "-o",
        "json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    let one_shot = doc["comparison"]["one_shot"].as_array().expect("one_shot");
    let policy = |name: &str| {
        one_shot
            .iter()
            .find(|s| s["policy"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {one_shot:#?}"))
    };
    assert_eq!(doc["comparison"]["workloads"], 2);
    // vm-002 grows 60 % past its training peak: KRR's max + 15 % is hit,
    // the oracle (its own peak) never is.
    assert_eq!(policy("krr")["oom_workloads"], 1);
    assert_eq!(policy("oracle")["oom_workloads"], 0);
    assert_eq!(policy("as provisioned")["oom_workloads"], 0);
    assert!(
        policy("tailor")["usd_per_month"].as_f64()
            < policy("as provisioned")["usd_per_month"].as_f64()
    );
    let loops = doc["comparison"]["loops"].as_array().expect("loops");
    assert_eq!(loops.len(), 4, "vpa, krr, tailor, tailor agent: {loops:#?}");
    assert_eq!(
        doc["agent"]["workloads"].as_array().map(Vec::len),
        Some(2),
        "the agent replays both VMs"
    );
    let workloads =
        std::fs::read_to_string(csv.join("traces--traces--workloads.csv")).expect("workloads CSV");
    // Header + 2 VMs × (as provisioned, vpa, krr, tailor, oracle).
    assert_eq!(workloads.lines().count(), 11, "{workloads}");
    assert!(csv.join("traces--traces--tradeoff.csv").is_file());
}

#[test]
fn compare_on_a_scenario_prints_the_tables() {
    let dir = tempfile::tempdir().expect("tempdir");
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let scenario = dir.path().join("small.yaml");
    std::fs::write(
        &scenario,
        format!(
            "name: small\nhistory: 8d\nduration: 2d\nmodels: {}\nagent:\n  guardrails:\n    mode: auto\n\
             fleet:\n  - {{ model: diurnal-web, count: 1, namespace: web }}\n  - {{ model: idle, count: 1, namespace: tools }}\n",
            models.display()
        ),
    )
    .expect("write scenario");
    let text = stdout(&tailor(&[
        "simulate",
        "--compare",
        "krr,tailor",
        scenario.to_str().expect("utf-8"),
    ]));
    for needle in [
        "models (small): 2 workloads, trained on 8 days",
        "as provisioned",
        "krr",
        "tailor agent (simulator)",
        "trade-off",
        "oracle",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
    assert!(!text.contains("\nvpa "), "vpa was not asked for:\n{text}");
}

#[test]
fn a_bad_recommender_list_is_a_usage_error() {
    let out = tailor(&["simulate", "--compare", "vpa,goldilocks", "--traces", "."]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("goldilocks") && err.contains("vpa, krr, tailor"),
        "{err}"
    );
    let out = tailor(&["simulate", "--traces", "."]);
    assert_eq!(out.status.code(), Some(2), "--traces needs --compare");
}

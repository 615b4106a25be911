//! Every scenario in `simulations/` runs in virtual time and must meet the
//! expectations written in its file; the same seed gives the same numbers.

use std::path::{Path, PathBuf};

use tailor::sim::run::{check, run_file};

fn scenarios() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations")
}

fn meets_expectations(name: &str) {
    let path = scenarios().join(format!("{name}.yaml"));
    let report = run_file(&path, None, &|_, _| {}).unwrap_or_else(|e| panic!("{name}: {e}"));
    let scenario = tailor::sim::scenario::Scenario::load(&path).expect("scenario loads");
    let failures = check(&scenario, &report);
    assert!(failures.is_empty(), "{name}: {failures:#?}\n{report:#?}");
}

#[test]
fn default_scenario() {
    meets_expectations("default");
}

#[test]
fn microburst_trap() {
    meets_expectations("microburst-trap");
}

#[test]
fn oom_fast_path() {
    meets_expectations("oom-fast-path");
}

#[test]
fn memory_leak() {
    meets_expectations("memory-leak");
}

#[test]
fn traffic_surge_during_bake() {
    meets_expectations("traffic-surge-during-bake");
}

#[test]
fn metrics_gap_during_bake() {
    meets_expectations("metrics-gap-during-bake");
}

#[test]
fn hpa_on_cpu() {
    meets_expectations("hpa-on-cpu");
}

#[test]
fn observe_mode() {
    meets_expectations("observe-mode");
}

#[test]
fn every_scenario_file_has_a_test() {
    let mut names: Vec<String> = std::fs::read_dir(scenarios())
        .expect("simulations/")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    names.sort();
    let source = include_str!("simulations.rs");
    for name in names {
        assert!(
            source.contains(&format!("meets_expectations(\"{name}\")")),
            "simulations/{name}.yaml has no test here"
        );
    }
}

#[test]
fn same_seed_same_numbers() {
    let path = scenarios().join("microburst-trap.yaml");
    let a = run_file(&path, Some(99), &|_, _| {}).expect("runs");
    let b = run_file(&path, Some(99), &|_, _| {}).expect("runs");
    assert_eq!(a, b);
}

/// Kills and restarts the agent before every one of the first ten hours of
/// ticks of the microburst trap (apply, rollout, bake, revert and hold all
/// happen in that time): nothing is lost, nothing applied twice, and the
/// outcome is the one of an agent that never died.
#[test]
fn restarting_the_agent_at_every_minute_loses_nothing() {
    let path = scenarios().join("microburst-trap.yaml");
    let scenario = tailor::sim::scenario::Scenario::load(&path).expect("scenario");
    let models = tailor::sim::run::load_scenario_models(&scenario, &path).expect("models");
    let calm = tailor::sim::run::run(&scenario, &models, scenario.seed, &|_, _| {}).expect("runs");

    let mut restarting = scenario.clone();
    restarting.agent.restarts = (1..=600)
        .map(|m| tailor::sim::scenario::Offset(std::time::Duration::from_secs(m * 60)))
        .collect();
    let report =
        tailor::sim::run::run(&restarting, &models, scenario.seed, &|_, _| {}).expect("runs");

    assert_eq!(report.duplicate_patches, 0, "{report:#?}");
    assert!(report.max_in_flight <= 1);
    assert!(report.applied >= 1 && report.reverted >= 1, "{report:#?}");
    assert_eq!(
        (
            report.applied,
            report.reverted,
            report.false_reverts,
            report.unreverted_regressions
        ),
        (
            calm.applied,
            calm.reverted,
            calm.false_reverts,
            calm.unreverted_regressions
        ),
        "restarts changed the outcome:\n{report:#?}\nvs\n{calm:#?}"
    );
}

#[test]
fn the_demo_saves_money_with_no_unreverted_regression() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(["demo", "--format", "json"])
        .output()
        .expect("run tailor demo");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let report = &doc["report"];
    let before = report["before"]["requests_usd_per_month"]
        .as_f64()
        .expect("before");
    let after = report["after"]["requests_usd_per_month"]
        .as_f64()
        .expect("after");
    assert!(after < before * 0.8, "savings: {before} → {after}");
    assert_eq!(report["unreverted_regressions"], 0);
    assert_eq!(doc["expectations_failed"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_bad_scenario_names_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "name: x\nhistory: 1d\nduration: 1d\nfleet:\n  - { model: diurnal-web, namespace: a, cuont: 2 }\n")
        .expect("write");
    let err = tailor::sim::scenario::Scenario::load(&path).expect_err("unknown key");
    let text = err.to_string();
    assert!(
        text.contains("fleet[0]") && text.contains("cuont"),
        "{text}"
    );
}

//! `tailor backtest` and `tailor report` against a real Prometheus holding
//! a history whose second half differs from its first: the recommendations
//! are made from the week before T, the replay reads the week after, and
//! this file computes on its own, from the same usage functions, what the
//! replay must count: every memory peak and CPU average per step, held
//! against the values in the JSON output.
//!
//! The history carries what a review reads beyond usage: a team label on
//! every pod, and node labels naming node pools (appended to the generated
//! OpenMetrics as `kube_node_labels`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use serde_json::Value;
use tailor::domain::{Resources, WorkloadKind};
use tailor::report::backtest::BACKTEST_COLUMNS;
use tailor::sim::history::{self, ContainerSpec, HistorySpec, NodeSpec, WorkloadSpec};
use tailor::units::{Bytes, MilliCores};

use crate::recommend::stepped;
use crate::support::prometheus::Prometheus;

/// 2026-10-01T00:00:00Z: recommendations are made here.
pub const T: i64 = 1_790_812_800;
pub const T_TEXT: &str = "2026-10-01T00:00:00Z";
const DAY: i64 = 86_400;
const STEP: i64 = 300;
const SCRAPE: i64 = 60;
const HORIZON: i64 = 7 * DAY;
const MIB: f64 = 1_048_576.0;
/// Prices of the `spot` pool in the config below.
const SPOT_CPU: f64 = 0.0121;
const SPOT_MEMORY: f64 = 0.0013;
/// The default prices (AWS Fargate, us-east-1).
const DEFAULT_CPU: f64 = 0.04048;
const DEFAULT_MEMORY: f64 = 0.004445;

fn values(cpu: u64, cpu_limit: Option<u64>, mem_mib: u64, limit_mib: Option<u64>) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(cpu)),
        cpu_limit: cpu_limit.map(MilliCores),
        memory_request: Some(Bytes::mib(mem_mib)),
        memory_limit: limit_mib.map(Bytes::mib),
    }
}

fn labelled(mut w: WorkloadSpec, team: &str) -> WorkloadSpec {
    w.labels = BTreeMap::from([("team".to_string(), team.to_string())]);
    w
}

/// Nine days before T (an 8-day window: a decrease needs 7 days of
/// samples) and seven after:
/// - `shop/steady` (3 replicas, nodes a, b, c: pool `spot` by two to one):
///   the same usage before and after T;
/// - `shop/growing` (1 replica, node a: pool `on-demand`, not priced in the
///   config, so default prices): CPU spreads higher after T, memory doubles
///   from 200 MiB to 400 MiB three days after T; throttled 5 % of periods;
/// - `batch/worker` (1 replica): OOM-killed two days before T (history) and
///   two days after (replay).
pub fn spec() -> HistorySpec {
    let steady = WorkloadSpec::new(
        "shop",
        WorkloadKind::Deployment,
        "steady",
        3,
        vec![ContainerSpec::new(
            "app",
            values(1000, None, 1024, Some(1024)),
            stepped(0.05, 0.15, 1),
            history::constant(200.0 * MIB),
        )],
    );
    let before = stepped(0.05, 0.15, 2);
    let after = stepped(0.05, 0.30, 2);
    let grows_at = T + 3 * DAY + 30; // between two scrapes
    let mut app = ContainerSpec::new(
        "app",
        values(500, Some(1000), 512, Some(1024)),
        Arc::new(move |t, r| if t <= T { before(t, r) } else { after(t, r) }),
        Arc::new(move |t, _| {
            if t < grows_at {
                200.0 * MIB
            } else {
                400.0 * MIB
            }
        }),
    );
    app.throttled_ratio = 0.05;
    let growing = WorkloadSpec::new("shop", WorkloadKind::Deployment, "growing", 1, vec![app]);
    let mut worker = ContainerSpec::new(
        "worker",
        values(500, None, 256, Some(256)),
        history::constant(0.2),
        history::constant(150.0 * MIB),
    );
    worker.oom_kill_times = vec![T - 2 * DAY, T + 2 * DAY];
    let worker = WorkloadSpec::new("batch", WorkloadKind::Deployment, "worker", 1, vec![worker]);
    let node = |name: &str| NodeSpec {
        name: name.to_string(),
        cpu: MilliCores(8_000),
        memory: Bytes::gib(32),
    };
    HistorySpec {
        start: T - 9 * DAY,
        end: T + HORIZON,
        scrape_interval_s: SCRAPE,
        workloads: vec![
            labelled(steady, "storefront"),
            labelled(growing, "storefront"),
            labelled(worker, "data"),
        ],
        nodes: vec![node("node-a"), node("node-b"), node("node-c")],
    }
}

/// The pool each node belongs to (`karpenter.sh/nodepool`).
const POOLS: [(&str, &str); 3] = [
    ("node-a", "on-demand"),
    ("node-b", "spot"),
    ("node-c", "spot"),
];

/// One Prometheus for every test of the review: the history plus node
/// labels, backfilled once.
pub fn prometheus() -> &'static Prometheus {
    static SERVER: OnceLock<Prometheus> = OnceLock::new();
    SERVER.get_or_init(|| {
        let spec = spec();
        let mut text = Vec::new();
        history::write_openmetrics(&spec, &mut text).expect("writing the history");
        let mut text = String::from_utf8(text).expect("UTF-8");
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
        text.truncate(text.len() - "# EOF\n".len());
        text.push_str("# TYPE kube_node_labels gauge\n");
        for (node, pool) in POOLS {
            for t in (spec.start..=spec.end).step_by(600) {
                text.push_str(&format!(
                    "kube_node_labels{{node=\"{node}\",label_karpenter_sh_nodepool=\"{pool}\",job=\"kube-state-metrics\"}} 1 {t}\n"
                ));
            }
        }
        text.push_str("# EOF\n");
        Prometheus::start_with_openmetrics(&text)
    })
}

/// The config the review runs with: an 8-day window, the `spot` pool
/// priced, teams from the `team` label.
pub fn config_file(dir: &Path) -> PathBuf {
    let path = dir.join("tailor.yaml");
    std::fs::write(
        &path,
        format!(
            "history:\n  window: 8d\n\
             pricing:\n  node_pool_label: karpenter.sh/nodepool\n  node_pools:\n    - name: spot\n      \
             cpu_core_hour_usd: {SPOT_CPU}\n      memory_gib_hour_usd: {SPOT_MEMORY}\n      source: spot prices of the test\n\
             report:\n  team_label: team\n"
        ),
    )
    .expect("writing the config");
    path
}

/// Runs the real binary; returns stdout, panicking with stderr on failure.
pub fn tailor(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(args)
        .output()
        .expect("running tailor");
    assert!(
        output.status.success(),
        "tailor {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// `tailor COMMAND` on the review history as of T, with the review
/// config and `extra` arguments.
pub fn review_command(command: &str, extra: &[&str]) -> String {
    review_command_at(command, T_TEXT, extra)
}

/// [`review_command`] as of `at`.
pub fn review_command_at(command: &str, at: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = config_file(dir.path());
    let url = prometheus().url();
    let mut args = vec![
        command,
        "--no-progress",
        "-c",
        config.to_str().expect("UTF-8 path"),
        "--prometheus-url",
        &url,
        "--at",
        at,
    ];
    args.extend_from_slice(extra);
    tailor(&args)
}

fn backtest(format: &str) -> String {
    review_command("backtest", &["--horizon", "7d", "-o", format])
}

fn find<'a>(doc: &'a Value, workload: &str) -> &'a Value {
    doc["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["workload"] == workload)
        .unwrap_or_else(|| panic!("no {workload} in {doc}"))
}

/// What the replay must count for one container, worked out from the
/// usage functions: per replica and per 5-minute step ending in
/// (T, T + horizon], the CPU average (the mean of the five increments of
/// the counter) and the memory peak (the scrapes in [t − 5m, t]).
#[derive(Debug, Default, PartialEq)]
struct Expected {
    cpu_samples: u64,
    memory_samples: u64,
    memory_over_limit: u64,
    oom_kills: u64,
    memory_over_request: u64,
    cpu_over_limit_s: i64,
    cpu_over_request_s: i64,
}

fn expected(container: &ContainerSpec, replicas: u32, values: &Value) -> Expected {
    let get = |key: &str| values[key].as_f64();
    let (cpu_request, cpu_limit) = (get("cpu_request_millicores"), get("cpu_limit_millicores"));
    let (mem_request, mem_limit) = (get("memory_request_bytes"), get("memory_limit_bytes"));
    let mut e = Expected::default();
    for replica in 0..replicas {
        let mut over_before = false;
        for k in 1..=HORIZON / STEP {
            let t = T + k * STEP;
            let cpu = (0..5)
                .map(|i| (container.cpu_cores)(t - i * SCRAPE, replica))
                .sum::<f64>()
                / 5.0
                * 1000.0;
            let peak = (0..=5)
                .map(|i| (container.memory_bytes)(t - i * SCRAPE, replica))
                .fold(f64::MIN, f64::max);
            e.cpu_samples += 1;
            e.memory_samples += 1;
            if cpu_limit.is_some_and(|l| cpu > l) {
                e.cpu_over_limit_s += STEP;
            }
            if cpu_request.is_some_and(|r| cpu > r) {
                e.cpu_over_request_s += STEP;
            }
            let over = mem_limit.is_some_and(|l| peak > l);
            if over {
                e.memory_over_limit += 1;
                if !over_before {
                    e.oom_kills += 1;
                }
            }
            over_before = over;
            if mem_request.is_some_and(|r| peak > r) {
                e.memory_over_request += 1;
            }
        }
    }
    e
}

fn counted(c: &Value, exposure: &str) -> Expected {
    let x = &c[exposure];
    let n = |v: &Value| v.as_u64().unwrap_or(0);
    let s = |v: &Value| v.as_i64().unwrap_or(0);
    Expected {
        cpu_samples: n(&c["cpu_samples"]),
        memory_samples: n(&c["memory_samples"]),
        memory_over_limit: n(&x["memory_over_limit_samples"]),
        oom_kills: n(&x["would_be_oom_kills"]),
        memory_over_request: n(&x["memory_over_request_samples"]),
        cpu_over_limit_s: s(&x["cpu_over_limit_seconds"]),
        cpu_over_request_s: s(&x["cpu_over_request_seconds"]),
    }
}

/// $ per pod-hour of `values` at these prices.
fn hourly(values: &Value, cpu_price: f64, memory_price: f64) -> f64 {
    values["cpu_request_millicores"].as_f64().unwrap_or(0.0) / 1000.0 * cpu_price
        + values["memory_request_bytes"].as_f64().unwrap_or(0.0) / Bytes::GIB as f64 * memory_price
}

#[test]
fn backtest_counts_what_the_recommendation_would_have_met() {
    let doc: Value = serde_json::from_str(&backtest("json")).expect("JSON");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["at"], T_TEXT);
    assert_eq!(doc["horizon_seconds"], HORIZON);
    assert_eq!(doc["step_seconds"], STEP);
    assert_eq!(doc["history_seconds"], 8 * DAY);
    let spec = spec();
    let mut total_saved = 0.0;
    let mut total_kills = 0;
    for w in &spec.workloads {
        let c = find(&doc, &w.name);
        let container = &w.containers[0];
        assert_eq!(c["container"], container.name.as_str());
        // The values at T are the spec's; the recommendation is tailor's.
        assert_eq!(
            c["current"]["memory_limit_bytes"].as_u64(),
            container.resources.memory_limit.map(|b| b.0)
        );
        for (exposure, values) in [
            ("exposure_recommended", &c["recommended"]),
            ("exposure_current", &c["current"]),
        ] {
            assert_eq!(
                counted(c, exposure),
                expected(container, w.replicas, values),
                "{}: {exposure}",
                w.name
            );
        }
        // Savings over the pod-hours that ran, at the container's prices.
        let (cpu_price, memory_price) = if c["node_pool"] == "spot" {
            (SPOT_CPU, SPOT_MEMORY)
        } else {
            (DEFAULT_CPU, DEFAULT_MEMORY)
        };
        let pod_hours = f64::from(w.replicas) * HORIZON as f64 / 3600.0;
        assert_eq!(c["pod_hours"].as_f64(), Some(pod_hours), "{}", w.name);
        let saved = (hourly(&c["current"], cpu_price, memory_price)
            - hourly(&c["recommended"], cpu_price, memory_price))
            * pod_hours;
        let got = c["saved_usd"].as_f64().expect("saved_usd");
        assert!(
            (got - saved).abs() <= 0.006,
            "{}: saved {got}, expected {saved:.4}",
            w.name
        );
        total_saved += got;
        total_kills += c["exposure_recommended"]["would_be_oom_kills"]
            .as_u64()
            .unwrap_or(0);
    }

    let steady = find(&doc, "steady");
    assert_eq!(
        steady["node_pool"], "spot",
        "two of three pods on spot nodes"
    );
    assert_eq!(steady["team"], "storefront");
    assert_eq!(steady["id"], "shop/deployment-steady");
    assert_eq!(steady["exposure_recommended"]["would_be_oom_kills"], 0);
    assert!(steady["saved_usd"].as_f64().expect("saved") > 0.0);

    // Memory doubled three days after T: the recommended limit (sized on
    // 200 MiB) is crossed for the last four days, once per pod.
    let growing = find(&doc, "growing");
    assert_eq!(growing["node_pool"], "on-demand");
    let limit = growing["recommended"]["memory_limit_bytes"]
        .as_f64()
        .expect("limit");
    assert!((240.0 * MIB..400.0 * MIB).contains(&limit), "{limit}");
    assert_eq!(growing["exposure_recommended"]["would_be_oom_kills"], 1);
    assert_eq!(
        growing["exposure_recommended"]["memory_over_limit_samples"],
        4 * DAY / STEP
    );
    assert_eq!(growing["exposure_current"]["would_be_oom_kills"], 0);
    assert!(
        growing["exposure_recommended"]["cpu_over_request_seconds"]
            .as_i64()
            .expect("seconds")
            > DAY,
        "CPU spread higher after T: {growing}"
    );

    let worker = find(&doc, "worker");
    assert_eq!(worker["observed_oom_kills"], 1, "{worker}");
    assert_eq!(worker["team"], "data");
    assert_eq!(find(&doc, "steady")["observed_oom_kills"], 0);

    let totals = &doc["totals"];
    assert_eq!(totals["containers"], 3);
    assert_eq!(totals["recommended"]["would_be_oom_kills"], total_kills);
    assert_eq!(totals["containers_with_oom_kills"], 1);
    assert_eq!(totals["observed_oom_kills"], 1);
    assert!((totals["saved_usd"].as_f64().expect("total") - total_saved).abs() <= 0.02);
    // Discovery over the replay window (12 queries, every pod running), then one
    // batch of namespaces × 2 metrics × 7 one-day chunks, then restarts and
    // OOM kills: the count does not depend on the number of containers.
    assert_eq!(doc["replay_queries"], 12 + 2 * 7 + 2, "{doc}");
}

#[test]
fn backtest_formats_say_the_same() {
    let doc: Value = serde_json::from_str(&backtest("json")).expect("JSON");
    let totals = &doc["totals"];

    let csv = backtest("csv");
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, BACKTEST_COLUMNS);
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 3);
    let column = |name: &str| {
        BACKTEST_COLUMNS
            .iter()
            .position(|c| *c == name)
            .expect("column")
    };
    let saved: f64 = rows
        .iter()
        .map(|r| r[column("saved_usd")].parse::<f64>().expect("dollars"))
        .sum();
    assert!((saved - totals["saved_usd"].as_f64().expect("total")).abs() <= 0.02);
    let kills: u64 = rows
        .iter()
        .map(|r| {
            r[column("recommended_would_be_oom_kills")]
                .parse::<u64>()
                .unwrap_or(0)
        })
        .sum();
    assert_eq!(kills, totals["recommended"]["would_be_oom_kills"]);

    let table = backtest("table");
    assert!(table.starts_with("WORKLOAD"), "{table}");
    assert!(
        table.contains("Would-be OOM kills: 1 with the recommended values (in 1 of 3 containers)"),
        "{table}"
    );
    let markdown = backtest("markdown");
    assert!(markdown.starts_with("## Backtest"), "{markdown}");
    assert_eq!(
        markdown
            .lines()
            .filter(|l| l.starts_with("| shop/"))
            .count(),
        2
    );

    let html = backtest("html");
    assert!(html.contains("<section id=\"backtest\">"));
    assert!(
        html.contains(&format!(
            "id=\"backtest-saved\" data-usd=\"{:.2}\"",
            totals["saved_usd"].as_f64().expect("total")
        )),
        "{}",
        &html[html.find("backtest-saved").unwrap_or(0)..][..200]
    );
}

#[test]
fn backtest_refuses_a_replay_into_the_future_and_bad_steps() {
    for (args, message) in [
        (
            vec!["--at", "2099-01-01T00:00:00Z"],
            "in the future: there is nothing to replay there",
        ),
        (
            vec!["--at", T_TEXT, "--step", "5s"],
            "--step 5s is outside 15s to 1h",
        ),
        (
            vec!["--at", T_TEXT, "--horizon", "10m"],
            "shorter than an hour",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args(["backtest", "--prometheus-url", "http://127.0.0.1:9"])
            .args(&args)
            .output()
            .expect("running tailor");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

#[test]
fn report_lists_approvals_teams_and_pool_prices() {
    let run = |format: &str| review_command("report", &["-o", format]);
    let doc: Value = serde_json::from_str(&run("json")).expect("JSON");
    assert_eq!(doc["review"]["mode"], "observe");
    assert_eq!(doc["review"]["team_label"], "team");
    assert_eq!(doc["pricing"]["node_pools"][0]["name"], "spot");
    let rec = |name: &str| {
        doc["recommendations"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["workload"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    let steady = rec("steady");
    assert_eq!(steady["approval"]["status"], "needs-approval", "{steady}");
    assert_eq!(
        steady["approval"]["command"],
        "tailor approve shop/deployment/steady"
    );
    assert_eq!(
        steady["approval"]["fingerprint"].as_str().map(str::len),
        Some(12)
    );
    // Spot prices: 3 × (Δcores × 0.0121 + ΔGiB × 0.0013) × 730.
    let delta = |key: &str| {
        (steady["current"][key].as_f64().expect("current")
            - steady["recommended"][key].as_f64().expect("recommended"))
            * 3.0
    };
    let spot_savings = (delta("cpu_request_millicores") / 1000.0 * SPOT_CPU
        + delta("memory_request_bytes") / Bytes::GIB as f64 * SPOT_MEMORY)
        * 730.0;
    let got = steady["savings_per_month_usd"].as_f64().expect("savings");
    assert!(
        (got - spot_savings).abs() <= 0.006,
        "{got} vs {spot_savings}"
    );
    let growing = rec("growing");
    assert_eq!(growing["approval"]["status"], "skipped");
    assert!(
        growing["approval"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("single replica")),
        "{growing}"
    );
    let worker = rec("worker");
    assert_eq!(worker["evidence"]["oom_kills"], 1);
    assert_eq!(worker["approval"]["status"], "fast-path", "{worker}");

    let table = run("table");
    assert!(
        table.contains("tailor approve shop/deployment/steady"),
        "{table}"
    );
    assert!(table.contains("Savings by team (label team): "), "{table}");
    let csv = run("csv");
    assert!(
        csv.lines()
            .next()
            .is_some_and(|h| h.ends_with("approval_status,approval_fingerprint,approve_command")),
        "{csv}"
    );
}

#[test]
fn report_with_backtest_shows_the_replay_of_the_earlier_recommendations() {
    // The end of the history: recommendations now, and the ones made at T
    // replayed over the week since.
    let end = "2026-10-08T00:00:00Z";
    let html = review_command_at("report", end, &["--backtest", "7d", "-o", "html"]);
    assert!(
        html.contains("<title>tailor rightsizing review"),
        "the page is the review"
    );
    assert!(html.contains("<section id=\"backtest\">"));
    assert!(
        html.contains("the recommendations made at <strong>2026-10-01 00:00 UTC</strong>"),
        "the backtest says which recommendations it replays"
    );
    // The growing workload's limit from T is crossed once; the JSON of
    // `tailor backtest` at T says the same.
    let doc: Value = serde_json::from_str(&backtest("json")).expect("JSON");
    let kills = doc["totals"]["recommended"]["would_be_oom_kills"]
        .as_u64()
        .expect("kills");
    assert_eq!(kills, 1);
    assert!(
        html.contains(&format!("id=\"backtest-oom\" data-count=\"{kills}\"")),
        "{}",
        &html[html.find("backtest-oom").unwrap_or(0)..][..120]
    );
    assert!(
        html.contains("Backtest with the values recommended at 2026-10-01 00:00 UTC"),
        "each workload names the values the replay held usage against"
    );

    let output = Command::new(env!("CARGO_BIN_EXE_tailor"))
        .args(["report", "--backtest", "7d", "-o", "json"])
        .args(["--prometheus-url", "http://127.0.0.1:9"])
        .output()
        .expect("running tailor");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--backtest is shown with -o html only"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

//! End to end: the real `tailor run` binary, a real Prometheus scraping the
//! Kubernetes API test server every second, and the cluster of
//! `simulations/e2e/cluster.yaml`. Windows are short (minutes) so the whole
//! loop runs in a few minutes of wall time; the deadlines below are what
//! the product promises, not performance measurements.
//!
//! Checked: an over-provisioned Deployment is right-sized and confirmed; a
//! latency-sensitive Deployment whose CPU limit lands under its bursts is
//! reverted within two minutes of the regression; the HPA-scaled CPU and
//! the GitOps-managed workload are left alone; `kill -9` during a bake
//! loses nothing; with two agents running there is never more than one
//! change in flight.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tailor::sim::apiserver::{ApiServerHandle, load_cluster, start};

use crate::support::prometheus::Prometheus;

struct Agent {
    child: Child,
}

impl Agent {
    fn start(dir: &Path, prometheus_url: &str, name: &str) -> Agent {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_tailor"))
            .args(["run", "--config"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("simulations/e2e/tailor.yaml"))
            .arg("--prometheus-url")
            .arg(prometheus_url)
            .arg("--kubeconfig")
            .arg(dir.join("kubeconfig"))
            .env("HOSTNAME", name)
            .env("TAILOR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start tailor run");
        Agent { child }
    }

    /// `kill -9`: no chance to persist anything more.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.kill();
    }
}

fn recommendations(server: &ApiServerHandle) -> Vec<Value> {
    server.objects("tailor.dev/v1alpha1", "Recommendation", None)
}

fn phase(server: &ApiServerHandle, namespace: &str, name: &str) -> Option<String> {
    server
        .object("tailor.dev/v1alpha1", "Recommendation", namespace, name)
        .and_then(|r| r["status"]["phase"].as_str().map(str::to_string))
}

/// The identity holding the leader Lease.
fn leader(server: &ApiServerHandle) -> Option<String> {
    server
        .object(
            "coordination.k8s.io/v1",
            "Lease",
            "default",
            "tailor-leader",
        )
        .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
}

fn in_flight(server: &ApiServerHandle) -> usize {
    recommendations(server)
        .iter()
        .filter(|r| {
            matches!(
                r["status"]["phase"].as_str(),
                Some("planned" | "rolling-out" | "baking" | "reverting")
            ) && !r["status"]["rollout"]["change"]["fast_path"]
                .as_bool()
                .unwrap_or(false)
        })
        .count()
}

fn template_resources(server: &ApiServerHandle, kind: &str, namespace: &str, name: &str) -> Value {
    let object = server
        .object("apps/v1", kind, namespace, name)
        .expect("workload");
    object["spec"]["template"]["spec"]["containers"][0]["resources"].clone()
}

fn logs(dir: &Path) -> String {
    ["a", "b", "a2"]
        .iter()
        .filter_map(|n| std::fs::read_to_string(dir.join(format!("{n}.log"))).ok())
        .map(|s| s.lines().rev().take(40).collect::<Vec<_>>().join("\n"))
        .collect::<Vec<_>>()
        .join("\n---\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailor_run_right_sizes_reverts_and_survives_kill_9() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cluster =
        load_cluster(&root.join("simulations/e2e/cluster.yaml")).expect("cluster file");
    cluster.tick = Duration::from_millis(500);
    cluster.roll_interval = Duration::from_secs(1);
    let server = start(cluster).await.expect("API test server");
    let dir = tempfile::tempdir().expect("tempdir");
    let dir: PathBuf = dir.keep();
    server
        .write_kubeconfig(&dir.join("kubeconfig"))
        .expect("kubeconfig");
    let target = server.url().trim_start_matches("http://").to_string();
    let prometheus = Prometheus::start_scraping(&target, 1);
    let url = prometheus.url();
    let hpa_cpu_before = template_resources(&server, "Deployment", "search", "search-frontend");
    let gitops_before = template_resources(&server, "Deployment", "internal", "admin-console");

    // Two agents: only the Lease holder acts.
    let mut agents = vec![
        ("a", Agent::start(&dir, &url, "a")),
        ("b", Agent::start(&dir, &url, "b")),
    ];

    let deadline = Instant::now() + Duration::from_secs(1800);
    let mut killed_in_bake = false;
    let mut a2: Option<Agent> = None;
    let mut max_in_flight = 0;
    let mut storefront_confirmed = false;
    let mut checkout_reverted = false;
    while Instant::now() < deadline && !(storefront_confirmed && checkout_reverted) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        max_in_flight = max_in_flight.max(in_flight(&server));
        // kill -9 the leader the first time something bakes; restart it.
        if !killed_in_bake
            && recommendations(&server)
                .iter()
                .any(|r| r["status"]["phase"] == "baking")
            && let Some(holder) = leader(&server)
            && let Some((_, agent)) = agents.iter_mut().find(|(name, _)| *name == holder)
        {
            agent.kill();
            killed_in_bake = true;
            a2 = Some(Agent::start(&dir, &url, "a2"));
        }
        storefront_confirmed =
            phase(&server, "shop", "deployment-storefront").as_deref() == Some("confirmed");
        checkout_reverted =
            phase(&server, "checkout", "deployment-checkout-api").as_deref() == Some("reverted");
    }
    let _ = (a2, agents);
    assert!(killed_in_bake, "nothing ever baked:\n{}", logs(&dir));
    assert!(
        storefront_confirmed,
        "storefront: {:?}\n{}",
        phase(&server, "shop", "deployment-storefront"),
        logs(&dir)
    );
    assert!(
        checkout_reverted,
        "checkout-api: {:?}\n{}",
        phase(&server, "checkout", "deployment-checkout-api"),
        logs(&dir)
    );
    assert!(
        max_in_flight <= 1,
        "{max_in_flight} changes in flight at once"
    );

    // The revert came within two minutes of the regression being seen.
    let rec = server
        .object(
            "tailor.dev/v1alpha1",
            "Recommendation",
            "checkout",
            "deployment-checkout-api",
        )
        .expect("checkout-api recommendation");
    let rollout = &rec["status"]["rollout"];
    let seen = rollout["regression_seen_at"]
        .as_i64()
        .expect("regression seen");
    let reverted = rollout["reverted_at"].as_i64().expect("reverted");
    assert!(reverted - seen <= 120, "revert took {} s", reverted - seen);
    assert!(
        rollout["reason"]
            .as_str()
            .is_some_and(|r| r.contains("regression")),
        "{rollout:#}"
    );

    // Untouched: the HPA-scaled CPU and the GitOps-managed workload.
    let hpa_cpu_after = template_resources(&server, "Deployment", "search", "search-frontend");
    assert_eq!(
        hpa_cpu_after["requests"]["cpu"],
        hpa_cpu_before["requests"]["cpu"]
    );
    assert_eq!(
        template_resources(&server, "Deployment", "internal", "admin-console"),
        gitops_before
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

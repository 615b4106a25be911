//! Approve mode through the real kube-rs client and the Kubernetes API test
//! server: the agent publishes its proposal on the workload's
//! Recommendation, `tailor approve` (the library call behind it) annotates
//! that Recommendation, and only then does the agent change the workload.
//! A GitOps-managed workload is published too, with the reason it is not
//! changed.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use crate::support::ports::{NoSlis, TestClock};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::Value;
use tailor::agent::{Agent, AgentSettings};
use tailor::cluster::kube::{KubeCluster, KubeOptions};
use tailor::domain::{ContainerRef, Resources, WorkloadKind, WorkloadRef};

use tailor::plan::Mode;
use tailor::ports::{PortError, Silent, UsageSource};
use tailor::recommend::{Confidence, ConfidenceLevel, Evidence, Recommendation};
use tailor::sim::apiserver::{ApiServerHandle, load_cluster, start};
use tailor::units::{Bytes, MilliCores};

/// The StatefulSet annotated `tailor.dev/mode: approve` in
/// simulations/e2e/cluster.yaml.
fn ledger() -> WorkloadRef {
    WorkloadRef {
        namespace: "payments".into(),
        kind: WorkloadKind::StatefulSet,
        name: "ledger".into(),
    }
}

/// Requests equal to limits, as the jvm-service model's defaults are.
fn values(cpu_m: u64, mem_mib: u64) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(cpu_m)),
        cpu_limit: Some(MilliCores(cpu_m)),
        memory_request: Some(Bytes::mib(mem_mib)),
        memory_limit: Some(Bytes::mib(mem_mib)),
    }
}

struct OneRecommendation {
    current: Resources,
    recommended: Resources,
}

/// A confident recommendation for `workload`'s `app` container.
fn recommendation_for(
    workload: WorkloadRef,
    current: Resources,
    recommended: Resources,
) -> Recommendation {
    Recommendation {
        target: ContainerRef {
            workload,
            container: "app".into(),
        },
        current,
        recommended,
        confidence: Confidence {
            score: 0.95,
            level: ConfidenceLevel::High,
        },
        savings_per_month_usd: 24.0,
        evidence: Evidence {
            replicas: 3,
            ..Evidence::default()
        },
        skipped_reason: None,
    }
}

/// The Argo CD-managed Deployment of simulations/e2e/cluster.yaml.
fn admin_console() -> WorkloadRef {
    WorkloadRef {
        namespace: "internal".into(),
        kind: WorkloadKind::Deployment,
        name: "admin-console".into(),
    }
}

impl UsageSource for OneRecommendation {
    async fn recommendations(&self, _now: i64) -> Result<Vec<Recommendation>, PortError> {
        Ok(vec![
            recommendation_for(ledger(), self.current, self.recommended),
            // GitOps-managed: recommended, never patched, and the reason shown.
            recommendation_for(admin_console(), values(500, 512), values(100, 256)),
        ])
    }

    async fn urgent(&self, _since: i64, _now: i64) -> Result<Vec<Recommendation>, PortError> {
        Ok(Vec::new())
    }
}

async fn client(server: &ApiServerHandle, dir: &Path) -> Client {
    let path = dir.join("kubeconfig");
    server.write_kubeconfig(&path).expect("kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    Client::try_from(config).expect("client")
}

fn recommendation(server: &ApiServerHandle) -> Value {
    server
        .object(
            "tailor.dev/v1alpha1",
            "Recommendation",
            "payments",
            "statefulset-ledger",
        )
        .expect("the recommendation is published on a Recommendation")
}

fn template_cpu(server: &ApiServerHandle) -> Value {
    server
        .object("apps/v1", "StatefulSet", "payments", "ledger")
        .expect("ledger")["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
        ["cpu"]
        .clone()
}

#[tokio::test]
async fn a_proposal_waits_for_approval_then_applies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cluster =
        load_cluster(&root.join("simulations/e2e/cluster.yaml")).expect("cluster file");
    cluster.tick = std::time::Duration::from_millis(100);
    let server = start(cluster).await.expect("API test server");
    let dir = tempfile::tempdir().expect("tempdir");
    let client = client(&server, dir.path()).await;
    let before = template_cpu(&server);
    let current = values(2000, 2048);

    let mut settings = AgentSettings::default();
    settings.guardrails.mode = Mode::Approve;
    settings.guardrails.allow_single_replica = true;
    let clock = TestClock(Rc::new(Cell::new(1_800_000_000)));
    let mut agent = Agent::start(
        KubeCluster::new(client.clone(), KubeOptions::default()),
        OneRecommendation {
            current,
            recommended: values(1500, 2048),
        },
        NoSlis,
        clock.clone(),
        Silent,
        settings.clone(),
    )
    .await
    .expect("agent");

    agent.tick().await.expect("tick");
    let rec = recommendation(&server);
    let status = &rec["status"];
    assert_eq!(status["phase"], "proposed", "{status:#}");
    assert_eq!(
        status["summary"]["current"], "cpu 2, memory 2Gi",
        "{status:#}"
    );
    assert_eq!(
        status["summary"]["recommended"], "cpu 1500m, memory 2Gi",
        "{status:#}"
    );
    assert_eq!(status["savingsPerMonthUsd"], 24.0);
    let fingerprint = status["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    assert_eq!(
        template_cpu(&server),
        before,
        "nothing applied without approval"
    );
    let gitops = server
        .object(
            "tailor.dev/v1alpha1",
            "Recommendation",
            "internal",
            "deployment-admin-console",
        )
        .expect("a GitOps-managed workload still gets its Recommendation");
    assert_eq!(
        gitops["status"]["phase"], "observing",
        "{:#}",
        gitops["status"]
    );
    assert!(
        gitops["status"]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("managed by GitOps")),
        "{:#}",
        gitops["status"]
    );
    assert_eq!(
        gitops["status"]["summary"]["recommended"],
        "cpu 100m, memory 256Mi"
    );

    // Another plan without approval changes nothing.
    clock.0.set(clock.0.get() + settings.plan_interval_s);
    agent.tick().await.expect("tick");
    assert_eq!(template_cpu(&server), before);

    let (name, approved) = tailor::daemon::revert::approve(&client, "payments/ledger")
        .await
        .expect("approve");
    assert_eq!(name, "payments/statefulset-ledger");
    assert_eq!(approved, fingerprint);

    clock.0.set(clock.0.get() + settings.plan_interval_s);
    agent.tick().await.expect("tick");
    assert_eq!(template_cpu(&server), "1500m", "applied once approved");
    let rec = recommendation(&server);
    assert_eq!(rec["status"]["phase"], "rolling-out", "{:#}", rec["status"]);
    assert_eq!(rec["status"]["fingerprint"], fingerprint.as_str());
    server.shutdown().await;
}

//! The kube-rs adapter (`KubeCluster`, the agent's Cluster port) against the
//! Kubernetes API test server through the real client: listing, patches
//! that pin what they were planned from, conflicts, durable rollout state,
//! events, and revert to the last known good values.

use std::path::Path;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use tailor::cluster::kube::{KubeCluster, KubeOptions};
use tailor::domain::{Resources, WorkloadKind, WorkloadRef};
use tailor::plan::{Change, ChangeReason, ContainerChange};
use tailor::ports::{AgentEvent, Cluster, ContainerPatch, EventKind, PortError, ResourcePatch};
use tailor::rollout::{Phase, RolloutRecord};
use tailor::sim::apiserver::{ApiServerConfig, ApiServerHandle, start};
use tailor::sim::models::load_model;
use tailor::sim::scenario::{FleetEntry, ResourcesYaml};
use tailor::units::{Bytes, MilliCores};

fn web() -> WorkloadRef {
    WorkloadRef {
        namespace: "shop".into(),
        kind: WorkloadKind::Deployment,
        name: "web".into(),
    }
}

fn original() -> Resources {
    Resources {
        cpu_request: Some(MilliCores(1000)),
        cpu_limit: None,
        memory_request: Some(Bytes::gib(1)),
        memory_limit: Some(Bytes::gib(1)),
    }
}

fn smaller() -> Resources {
    Resources {
        cpu_request: Some(MilliCores(750)),
        cpu_limit: None,
        memory_request: Some(Bytes::mib(768)),
        memory_limit: Some(Bytes::mib(900)),
    }
}

async fn server() -> (ApiServerHandle, KubeCluster, tempfile::TempDir) {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/diurnal-web.yaml");
    let model = load_model(&models).expect("model");
    let r = original();
    let config = ApiServerConfig {
        fleet: vec![FleetEntry {
            model: "diurnal-web".into(),
            count: 1,
            namespace: "shop".into(),
            name: Some("web".into()),
            replicas: Some(2),
            resources: Some(ResourcesYaml {
                cpu_request: r.cpu_request,
                cpu_limit: r.cpu_limit,
                memory_request: r.memory_request,
                memory_limit: r.memory_limit,
            }),
            hpa: None,
            mode: None,
            paused: false,
            gitops: false,
        }],
        models: [("diurnal-web".to_string(), model)].into_iter().collect(),
        tick: std::time::Duration::from_millis(100),
        roll_interval: std::time::Duration::from_millis(200),
        ..ApiServerConfig::default()
    };
    let handle = start(config).await.expect("API test server");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    handle.write_kubeconfig(&path).expect("kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("config");
    let client = Client::try_from(config).expect("client");
    let crd = tailor::cluster::crd::crd_yaml();
    let crd: serde_json::Value = serde_yaml_ng::from_str(&crd).expect("CRD YAML");
    let api: kube::Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        kube::Api::all(client.clone());
    api.create(
        &Default::default(),
        &serde_json::from_value(crd).expect("CRD"),
    )
    .await
    .expect("install the CRD");
    (
        handle,
        KubeCluster::new(client, KubeOptions::default()),
        dir,
    )
}

fn patch(id: &str, expect: Resources, set: Resources) -> ResourcePatch {
    ResourcePatch {
        workload: web(),
        change_id: id.into(),
        containers: vec![ContainerPatch {
            container: "app".into(),
            expect,
            set,
        }],
    }
}

fn current(views: &[tailor::plan::WorkloadView]) -> Resources {
    let view = views
        .iter()
        .find(|v| v.workload == web())
        .expect("web is listed");
    view.containers
        .iter()
        .find(|(n, _)| n == "app")
        .expect("app")
        .1
}

#[tokio::test]
async fn patches_pin_their_values_and_never_clobber() {
    let (server, cluster, _dir) = server().await;
    let views = cluster.workloads().await.expect("list");
    assert_eq!(current(&views), original());

    // Applied, annotated, resourceVersion moved.
    cluster
        .apply(&patch("c1", original(), smaller()))
        .await
        .expect("apply");
    let views = cluster.workloads().await.expect("list");
    assert_eq!(current(&views), smaller());
    let object = server
        .object("apps/v1", "Deployment", "shop", "web")
        .expect("web");
    let annotations = &object["metadata"]["annotations"];
    assert_eq!(annotations["tailor.dev/change-id"], "c1");
    assert!(
        annotations["tailor.dev/last-known-good"]
            .as_str()
            .is_some_and(|s| s.contains("1073741824"))
    );

    // The same patch again is a no-op, not an error.
    cluster
        .apply(&patch("c1", original(), smaller()))
        .await
        .expect("retry is a no-op");

    // A plan made from stale values is refused, and nothing changes.
    let stale = cluster.apply(&patch("c2", original(), smaller())).await;
    assert!(matches!(stale, Err(PortError::Conflict(_))), "{stale:?}");
    assert_eq!(
        current(&cluster.workloads().await.expect("list")),
        smaller()
    );

    // The last known good values come back.
    cluster
        .revert_to_last_known_good(&web())
        .await
        .expect("revert");
    assert_eq!(
        current(&cluster.workloads().await.expect("list")),
        original()
    );

    // The rollout completes on the API server's controller.
    let mut complete = false;
    for _ in 0..50 {
        let status = cluster.rollout_status(&web()).await.expect("status");
        if status.complete() {
            complete = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(complete, "the rollout finishes");
    server.shutdown().await;
}

#[tokio::test]
async fn rollout_state_and_events_are_durable() {
    let (server, cluster, _dir) = server().await;
    let change = Change {
        id: "c9".into(),
        fingerprint: "f9".into(),
        workload: web(),
        containers: vec![ContainerChange {
            container: "app".into(),
            from: original(),
            to: smaller(),
        }],
        reason: ChangeReason::Savings,
        savings_per_month_usd: 12.5,
        fast_path: false,
    };
    let mut record = RolloutRecord::new(change, 1_790_000_000);
    cluster.save_rollout(&record).await.expect("save planned");
    record.phase = Phase::Baking;
    record.applied_at = Some(1_790_000_060);
    cluster.save_rollout(&record).await.expect("save baking");
    let loaded = cluster.load_rollouts().await.expect("load");
    assert_eq!(
        loaded,
        vec![record.clone()],
        "what a restarted agent resumes from"
    );
    let rec = server
        .object(
            "tailor.dev/v1alpha1",
            "Recommendation",
            "shop",
            "deployment-web",
        )
        .expect("the Recommendation exists");
    assert_eq!(rec["status"]["phase"], "baking");
    assert_eq!(rec["spec"]["targetRef"]["name"], "web");

    cluster
        .record_event(&AgentEvent {
            at: 1_790_000_120,
            workload: web(),
            change_id: Some("c9".into()),
            kind: EventKind::Reverted,
            message: "reverted: p99 latency 0.4 s vs 0.2 s".into(),
            detail: None,
        })
        .await
        .expect("event");
    let events = server.objects("events.k8s.io/v1", "Event", Some("shop"));
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "Reverted" && e["type"] == "Warning"),
        "{events:#?}"
    );
    server.shutdown().await;
}

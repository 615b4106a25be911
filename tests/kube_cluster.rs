//! The kube-rs adapter (`KubeCluster`, the agent's Cluster port) against the
//! Kubernetes API test server through the real client: listing, patches
//! that pin what they were planned from, conflicts, durable rollout state,
//! events, revert to the last known good values, in-place resizes through
//! `pods/resize` (and when they fall back to the template), and RBAC
//! refusals as the agent sees them.

use std::path::Path;
use std::time::Duration;

use crate::support::ports::{NoSlis, TestClock};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use serde_json::{Value, json};
use tailor::agent::{Agent, AgentSettings};
use tailor::cluster::kube::{KubeCluster, KubeOptions};
use tailor::domain::{ContainerRef, Resources, WorkloadKind, WorkloadRef};
use tailor::guard::{ResourceSample, SliSample};
use tailor::plan::{Change, ChangeReason, ContainerChange, Mode};
use tailor::ports::{
    AgentEvent, Cluster, ContainerPatch, EventKind, PortError, ResourcePatch, Silent, SloSource,
    UsageSource,
};
use tailor::recommend::{Confidence, ConfidenceLevel, Evidence, Recommendation};
use tailor::rollout::{Phase, RolloutRecord};
use tailor::sim::apiserver::{
    ApiServerConfig, ApiServerHandle, Fault, FaultAction, RbacDeny, start,
};
use tailor::sim::models::load_model;
use tailor::sim::scenario::{FleetEntry, ResourcesYaml};
use tailor::units::{Bytes, MilliCores};

use crate::apiserver::{eventually, resize};

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
    let env = start_with(|_| {}).await;
    (env.server, env.cluster, env.dir)
}

/// A running API test server with `shop/web` (2 replicas of the
/// diurnal-web model at [`original`]), the CRD installed, and a client.
struct Env {
    server: ApiServerHandle,
    cluster: KubeCluster,
    client: Client,
    dir: tempfile::TempDir,
}

async fn start_with(edit: impl FnOnce(&mut ApiServerConfig)) -> Env {
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/diurnal-web.yaml");
    let model = load_model(&models).expect("model");
    let r = original();
    let mut config = ApiServerConfig {
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
    edit(&mut config);
    let server = start(config).await.expect("API test server");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).expect("kubeconfig");
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
    Env {
        server,
        cluster: KubeCluster::new(client.clone(), KubeOptions::default()),
        client,
        dir,
    }
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

// In-place resize (`tailor.dev/apply: in-place`).

fn with_cpu(millicores: u64) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(millicores)),
        ..original()
    }
}

/// Waits for `shop/<kind>/<name>` to finish rolling out.
async fn settled(cluster: &KubeCluster, workload: &WorkloadRef) {
    eventually(
        "the rollout to complete",
        Duration::from_secs(20),
        || async {
            cluster
                .rollout_status(workload)
                .await
                .is_ok_and(|s| s.complete())
        },
    )
    .await;
}

/// Annotates a workload (and merges `spec`, when given).
async fn annotate_in_place<K>(api: &Api<K>, name: &str, spec: Value)
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned,
{
    let mut body = json!({"metadata": {"annotations": {"tailor.dev/apply": "in-place"}}});
    if !spec.is_null() {
        body["spec"] = spec;
    }
    api.patch(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
        .expect("annotate");
}

async fn pods(client: &Client, labels: &str) -> Vec<Pod> {
    let api: Api<Pod> = Api::namespaced(client.clone(), "shop");
    let mut pods = api
        .list(&ListParams::default().labels(labels))
        .await
        .expect("list pods")
        .items;
    pods.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    pods
}

fn uids(pods: &[Pod]) -> Vec<String> {
    pods.iter()
        .map(|p| p.metadata.uid.clone().expect("uid"))
        .collect()
}

/// The first container's CPU request: in the spec, and as actuated.
fn cpu(pod: &Pod) -> (String, String) {
    let text = |r: Option<&k8s_openapi::api::core::v1::ResourceRequirements>| {
        r.and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("cpu"))
            .map(|q| q.0.clone())
            .unwrap_or_default()
    };
    let spec = text(
        pod.spec.as_ref().expect("spec").containers[0]
            .resources
            .as_ref(),
    );
    let status = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.first())
        .and_then(|s| s.resources.as_ref());
    (spec, text(status))
}

fn restarts(pods: &[Pod]) -> i32 {
    pods.iter()
        .flat_map(|p| {
            p.status
                .iter()
                .flat_map(|s| s.container_statuses.iter().flatten())
        })
        .map(|s| s.restart_count)
        .sum()
}

fn template_cpu(server: &ApiServerHandle, kind: &str, name: &str) -> Value {
    server
        .object("apps/v1", kind, "shop", name)
        .expect("workload")
        .pointer("/spec/template/spec/containers/0/resources/requests/cpu")
        .cloned()
        .unwrap_or(Value::Null)
}

fn resize_calls(server: &ApiServerHandle) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.uri.contains("/resize"))
        .count()
}

fn fallback_events(server: &ApiServerHandle) -> Vec<String> {
    server
        .objects("events.k8s.io/v1", "Event", Some("shop"))
        .iter()
        .filter(|e| e["reason"] == "InPlaceFallback" && e["type"] == "Warning")
        .filter_map(|e| e["note"].as_str().map(str::to_string))
        .collect()
}

/// `shop/web` rolled out, then annotated `tailor.dev/apply: in-place`.
async fn in_place_web(edit: impl FnOnce(&mut ApiServerConfig)) -> (Env, Api<Deployment>) {
    let env = start_with(edit).await;
    settled(&env.cluster, &web()).await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), "shop");
    annotate_in_place(&deployments, "web", Value::Null).await;
    (env, deployments)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_place_resize_keeps_the_pods_and_the_template() {
    // The kubelet takes 20 ticks (2 s) to actuate: the rollout is seen
    // in progress first.
    let (env, deployments) = in_place_web(|c| c.resize_ticks = 20).await;
    let before = pods(&env.client, "app=web").await;
    assert_eq!(before.len(), 2);
    let generation = deployments
        .get("web")
        .await
        .expect("web")
        .metadata
        .generation;
    let template = template_cpu(&env.server, "Deployment", "web");

    env.cluster
        .apply(&patch("c1", original(), with_cpu(750)))
        .await
        .expect("resized");
    let status = env.cluster.rollout_status(&web()).await.expect("status");
    assert_eq!((status.replicas, status.updated), (2, 0), "{status:?}");
    assert!(!status.complete());
    let views = env.cluster.workloads().await.expect("list");
    let view = views.iter().find(|v| v.workload == web()).expect("web");
    assert!(view.rolling_out, "a resize in progress is a rollout");
    assert_eq!(
        current(&views),
        with_cpu(750),
        "current values come from the pods"
    );

    settled(&env.cluster, &web()).await;
    let after = pods(&env.client, "app=web").await;
    assert_eq!(uids(&after), uids(&before), "no pod was replaced");
    assert_eq!(restarts(&after), 0, "no container restarted");
    for pod in &after {
        assert_eq!(
            cpu(pod),
            ("750m".into(), "750m".into()),
            "desired and actuated"
        );
    }
    let d = deployments.get("web").await.expect("web");
    assert_eq!(
        d.metadata.generation, generation,
        "the template is untouched"
    );
    assert_eq!(template_cpu(&env.server, "Deployment", "web"), template);
    let annotations = d.metadata.annotations.expect("annotations");
    assert_eq!(annotations["tailor.dev/change-id"], "c1");
    let record: Value =
        serde_json::from_str(&annotations["tailor.dev/in-place"]).expect("in-place record");
    assert_eq!(record["changeId"], "c1");
    assert_eq!(record["containers"]["app"]["cpuRequestMillicores"], 750);
    assert!(annotations["tailor.dev/last-known-good"].contains("\"cpuRequestMillicores\":1000"));
    let views = env.cluster.workloads().await.expect("list");
    assert_eq!(current(&views), with_cpu(750));
    assert!(!views.iter().any(|v| v.workload == web() && v.rolling_out));

    // The same change again sends nothing.
    let calls = env.server.requests().len();
    env.cluster
        .apply(&patch("c1", original(), with_cpu(750)))
        .await
        .expect("a retry is a no-op");
    let writes = env.server.requests()[calls..]
        .iter()
        .filter(|r| r.method == "PATCH")
        .count();
    assert_eq!(writes, 0);
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_recreated_from_the_template_is_resized_too() {
    let (env, _) = in_place_web(|_| {}).await;
    env.cluster
        .apply(&patch("c1", original(), with_cpu(750)))
        .await
        .expect("resized");
    settled(&env.cluster, &web()).await;
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), "shop");
    let evicted = pods(&env.client, "app=web").await[0]
        .metadata
        .name
        .clone()
        .expect("name");
    pod_api
        .delete(&evicted, &Default::default())
        .await
        .expect("evict");
    eventually(
        "a replacement from the template",
        Duration::from_secs(10),
        || async {
            let now = pods(&env.client, "app=web").await;
            now.len() == 2 && now.iter().any(|p| cpu(p).0 == "1")
        },
    )
    .await;
    // Still the change's values: a pod has them, the other is the
    // controller's own doing.
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        with_cpu(750)
    );
    settled(&env.cluster, &web()).await;
    let now = pods(&env.client, "app=web").await;
    assert!(
        now.iter().all(|p| cpu(p) == ("750m".into(), "750m".into())),
        "{now:?}"
    );
    assert_eq!(resize_calls(&env.server), 3);
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_resizes_back_in_place() {
    let (env, deployments) = in_place_web(|_| {}).await;
    let before = uids(&pods(&env.client, "app=web").await);
    let generation = deployments
        .get("web")
        .await
        .expect("web")
        .metadata
        .generation;

    // The agent's revert: the same change id, values swapped.
    env.cluster
        .apply(&patch("c1", original(), with_cpu(750)))
        .await
        .expect("resized");
    settled(&env.cluster, &web()).await;
    env.cluster
        .apply(&patch("c1", with_cpu(750), original()))
        .await
        .expect("reverted");
    settled(&env.cluster, &web()).await;
    let now = pods(&env.client, "app=web").await;
    assert_eq!(uids(&now), before);
    assert!(
        now.iter().all(|p| cpu(p).0 == "1" && cpu(p).1 == "1"),
        "{now:?}"
    );
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        original()
    );
    let record: Value = serde_json::from_str(
        &deployments
            .get("web")
            .await
            .expect("web")
            .metadata
            .annotations
            .expect("annotations")["tailor.dev/in-place"],
    )
    .expect("record");
    assert_eq!(
        record["containers"],
        json!({}),
        "the pods match the template again"
    );

    // `tailor revert`: last known good, in place too.
    env.cluster
        .apply(&patch("c2", original(), with_cpu(800)))
        .await
        .expect("resized");
    settled(&env.cluster, &web()).await;
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        with_cpu(800)
    );
    env.cluster
        .revert_to_last_known_good(&web())
        .await
        .expect("reverted to last known good");
    settled(&env.cluster, &web()).await;
    let now = pods(&env.client, "app=web").await;
    assert_eq!(uids(&now), before, "still the same pods");
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        original()
    );
    let d = deployments.get("web").await.expect("web");
    assert_eq!(
        d.metadata.generation, generation,
        "the template was never patched"
    );
    assert!(fallback_events(&env.server).is_empty());
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_infeasible_resize_goes_to_the_template() {
    let (env, deployments) = in_place_web(|_| {}).await;
    let before = uids(&pods(&env.client, "app=web").await);

    // 9 cores on 8-core nodes: the API server accepts it, the kubelet not.
    let huge = with_cpu(9_000);
    env.cluster
        .apply(&patch("c1", original(), huge))
        .await
        .expect("the API server accepts the resize");
    assert_eq!(resize_calls(&env.server), 2);
    settled(&env.cluster, &web()).await;

    assert_eq!(template_cpu(&env.server, "Deployment", "web"), json!("9"));
    let now = pods(&env.client, "app=web").await;
    assert!(
        uids(&now).iter().all(|u| !before.contains(u)),
        "the controller replaced every pod"
    );
    assert!(now.iter().all(|p| cpu(p) == ("9".into(), "9".into())));
    let notes = fallback_events(&env.server);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("infeasible") && n.contains("(change c1)")),
        "{notes:?}"
    );
    let annotations = deployments
        .get("web")
        .await
        .expect("web")
        .metadata
        .annotations
        .expect("annotations");
    let record: Value = serde_json::from_str(&annotations["tailor.dev/in-place"]).expect("record");
    assert!(
        record["fallback"]
            .as_str()
            .is_some_and(|f| f.contains("Node didn't have enough capacity: cpu")),
        "{record}"
    );
    assert_eq!(current(&env.cluster.workloads().await.expect("list")), huge);

    // Its revert follows it to the template.
    let resizes = resize_calls(&env.server);
    env.cluster
        .apply(&patch("c1", huge, original()))
        .await
        .expect("reverted");
    assert_eq!(
        resize_calls(&env.server),
        resizes,
        "no resize for the revert"
    );
    assert_eq!(template_cpu(&env.server, "Deployment", "web"), json!("1"));
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_cluster_gets_a_template_patch() {
    let (env, _) = in_place_web(|c| c.minor_version = 32).await;
    assert_eq!(env.cluster.server_version().await, Ok((1, 32)));

    env.cluster
        .apply(&patch("c1", original(), with_cpu(750)))
        .await
        .expect("patched");
    assert_eq!(resize_calls(&env.server), 0);
    assert_eq!(
        template_cpu(&env.server, "Deployment", "web"),
        json!("750m")
    );
    let notes = fallback_events(&env.server);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Kubernetes 1.32") && n.contains("1.33 or later")),
        "{notes:?}"
    );
    settled(&env.cluster, &web()).await;
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        with_cpu(750)
    );
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_memory_limit_goes_to_the_template() {
    let (env, _) = in_place_web(|_| {}).await;
    // 1Gi → 900Mi limit with the default resizePolicy: 1.33 refuses it.
    env.cluster
        .apply(&patch("c1", original(), smaller()))
        .await
        .expect("patched");
    assert_eq!(resize_calls(&env.server), 0);
    let notes = fallback_events(&env.server);
    assert!(
        notes.iter().any(|n| n.contains("memory limit goes down")),
        "{notes:?}"
    );
    settled(&env.cluster, &web()).await;
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        smaller()
    );
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn someone_elses_resize_is_never_clobbered() {
    let (env, _) = in_place_web(|_| {}).await;
    let pod_api: Api<Pod> = Api::namespaced(env.client.clone(), "shop");
    let names: Vec<String> = pods(&env.client, "app=web")
        .await
        .iter()
        .map(|p| p.metadata.name.clone().expect("name"))
        .collect();
    let theirs = json!({"requests": {"cpu": "800m"}});

    // Before tailor reads: the plan's values are gone from one pod.
    resize(&pod_api, &names[0], theirs.clone())
        .await
        .expect("their resize");
    let err = env
        .cluster
        .apply(&patch("c1", original(), with_cpu(750)))
        .await
        .expect_err("conflict");
    assert!(
        matches!(&err, PortError::Conflict(m) if m.contains("someone else resized it")),
        "{err:?}"
    );
    assert_eq!(resize_calls(&env.server), 1, "only theirs");

    // Between tailor's read and its write: the `test` ops refuse it.
    let back = json!({"requests": {"cpu": "1"}});
    resize(&pod_api, &names[0], back.clone())
        .await
        .expect("put back");
    env.server.inject(Fault {
        method: Some(axum::http::Method::PATCH),
        path_prefix: format!("/api/v1/namespaces/shop/pods/{}/resize", names[1]),
        times: 1,
        action: FaultAction::Hang(Duration::from_millis(1500)),
    });
    let c2 = patch("c2", original(), with_cpu(750));
    let tailor = env.cluster.apply(&c2);
    let someone = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        resize(&pod_api, &names[1], theirs.clone())
            .await
            .expect("their resize while tailor waits");
    };
    let (outcome, ()) = tokio::join!(tailor, someone);
    assert!(
        matches!(&outcome, Err(PortError::Conflict(_))),
        "{outcome:?}"
    );
    let second = pod_api.get(&names[1]).await.expect("pod");
    assert_eq!(cpu(&second).0, "800m", "their value stays");
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_delete_statefulsets_get_the_template_too() {
    let env = start_with(|c| {
        let mut db = c.fleet[0].clone();
        db.name = Some("db".into());
        c.statefulsets = vec![db];
        c.fleet.clear();
    })
    .await;
    let db = WorkloadRef {
        namespace: "shop".into(),
        kind: WorkloadKind::StatefulSet,
        name: "db".into(),
    };
    settled(&env.cluster, &db).await;
    let sets: Api<StatefulSet> = Api::namespaced(env.client.clone(), "shop");
    annotate_in_place(&sets, "db", json!({"updateStrategy": {"type": "OnDelete"}})).await;
    let before = uids(&pods(&env.client, "app=db").await);
    let change = ResourcePatch {
        workload: db.clone(),
        ..patch("c1", original(), with_cpu(750))
    };
    env.cluster.apply(&change).await.expect("resized");
    assert_eq!(
        template_cpu(&env.server, "StatefulSet", "db"),
        json!("750m")
    );
    settled(&env.cluster, &db).await;
    let now = pods(&env.client, "app=db").await;
    assert_eq!(
        uids(&now),
        before,
        "OnDelete: the controller restarts nothing"
    );
    assert!(now.iter().all(|p| cpu(p) == ("750m".into(), "750m".into())));
    let views = env.cluster.workloads().await.expect("list");
    let view = views.iter().find(|v| v.workload == db).expect("db");
    assert_eq!(view.containers[0].1, with_cpu(750));
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_rolls_an_in_place_change_out_and_bakes_it() {
    let (env, deployments) = in_place_web(|_| {}).await;
    let before = uids(&pods(&env.client, "app=web").await);
    let (clock, mut agent) = agent_on(&env, NoSlis).await;
    // Virtual minutes for the agent, real time for the kubelet.
    for _ in 0..50 {
        agent.tick().await.expect("tick");
        if agent
            .records()
            .first()
            .is_some_and(|r| r.phase == Phase::Baking)
        {
            break;
        }
        clock.0.set(clock.0.get() + 60);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = agent.records().first().expect("a change");
    assert_eq!(record.phase, Phase::Baking, "{record:?}");
    assert_eq!(resize_calls(&env.server), 2);
    assert_eq!(uids(&pods(&env.client, "app=web").await), before);
    let d = deployments.get("web").await.expect("web");
    assert_eq!(d.metadata.generation, Some(1), "the template is untouched");
    env.server.shutdown().await;
}

// RBAC refusals.

fn forbidding_patch() -> impl FnOnce(&mut ApiServerConfig) {
    |c| {
        c.rbac_deny = vec![RbacDeny {
            namespace: Some("shop".into()),
            ..RbacDeny::new("patch", "apps", "deployments")
        }]
    }
}

const MISSING: &str =
    "cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_patch_names_the_missing_permission() {
    let env = start_with(forbidding_patch()).await;
    let err = env
        .cluster
        .apply(&patch("c1", original(), with_cpu(750)))
        .await
        .expect_err("forbidden");
    let PortError::Forbidden(message) = &err else {
        panic!("not Forbidden: {err:?}");
    };
    assert!(
        message.starts_with("RBAC: tailor may not patch deployments.apps in namespace shop: "),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:tailor:tailor\" {MISSING}"
        )),
        "{message}"
    );
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        original()
    );
    env.server.shutdown().await;
}

/// Recommends `to` for shop/web's app container, with full confidence.
struct Recommends(Resources);

impl UsageSource for Recommends {
    async fn recommendations(&self, _now: i64) -> Result<Vec<Recommendation>, PortError> {
        Ok(vec![Recommendation {
            target: ContainerRef {
                workload: web(),
                container: "app".into(),
            },
            current: original(),
            recommended: self.0,
            confidence: Confidence {
                score: 1.0,
                level: ConfidenceLevel::High,
            },
            savings_per_month_usd: 20.0,
            evidence: Evidence {
                replicas: 2,
                history_hours: 24.0 * 14.0,
                coverage: 1.0,
                ..Evidence::default()
            },
            skipped_reason: None,
        }])
    }
    async fn urgent(&self, _since: i64, _now: i64) -> Result<Vec<Recommendation>, PortError> {
        Ok(Vec::new())
    }
}

fn auto() -> AgentSettings {
    let mut settings = AgentSettings::default();
    settings.guardrails.mode = Mode::Auto;
    settings
}

fn deployment_patches(server: &ApiServerHandle) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| {
            r.method == "PATCH"
                && r.uri
                    .starts_with("/apis/apps/v1/namespaces/shop/deployments/web")
        })
        .count()
}

/// An agent in auto mode over `env`'s cluster, recommending 750m for
/// shop/web, on a virtual clock at 1_790_000_000.
async fn agent_on<S: SloSource>(
    env: &Env,
    slo: S,
) -> (
    TestClock,
    Agent<KubeCluster, Recommends, S, TestClock, Silent>,
) {
    let clock = TestClock::default();
    clock.0.set(1_790_000_000);
    let agent = Agent::start(
        env.cluster.clone(),
        Recommends(with_cpu(750)),
        slo,
        clock.clone(),
        Silent,
        auto(),
    )
    .await
    .expect("agent");
    (clock, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_records_a_forbidden_patch_and_does_not_retry_at_once() {
    let env = start_with(forbidding_patch()).await;
    settled(&env.cluster, &web()).await;
    let (clock, mut agent) = agent_on(&env, NoSlis).await;
    agent.tick().await.expect("tick");
    assert_eq!(deployment_patches(&env.server), 1, "one attempt");
    let record = &agent.records()[0];
    assert_eq!(record.phase, Phase::Abandoned);
    assert!(
        record
            .reason
            .as_deref()
            .is_some_and(|r| r.contains(MISSING)),
        "{record:?}"
    );
    let events = env
        .server
        .objects("events.k8s.io/v1", "Event", Some("shop"));
    let named: Vec<&Value> = events
        .iter()
        .filter(|e| {
            e["type"] == "Warning" && e["note"].as_str().is_some_and(|n| n.contains(MISSING))
        })
        .collect();
    assert_eq!(
        named.len(),
        1,
        "one Warning event naming the permission: {events:#?}"
    );
    assert_eq!(named[0]["regarding"]["name"], "web");
    // The next minutes' ticks (plans every 5) do not send it again.
    for _ in 0..9 {
        clock.0.set(clock.0.get() + 60);
        agent.tick().await.expect("tick");
    }
    assert_eq!(deployment_patches(&env.server), 1, "no blind retry");
    env.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_workload_is_held_until_the_permission_may_have_changed() {
    let env = start_with(forbidding_patch()).await;
    settled(&env.cluster, &web()).await;
    let (clock, mut agent) = agent_on(&env, NoSlis).await;
    for _ in 0..60 {
        agent.tick().await.expect("tick");
        clock.0.set(clock.0.get() + 60);
    }
    assert_eq!(
        deployment_patches(&env.server),
        1,
        "one attempt an hour at most"
    );
    env.server.shutdown().await;
}

/// Half the requests fail after `since`; none before.
struct FailingAfter(i64);

impl SloSource for FailingAfter {
    async fn slis(
        &self,
        _w: &WorkloadRef,
        from: i64,
        to: i64,
    ) -> Result<Option<Vec<SliSample>>, PortError> {
        let first = from - from.rem_euclid(60) + 60;
        Ok(Some(
            (first..=to)
                .step_by(60)
                .map(|t| SliSample {
                    t,
                    requests: 1000.0,
                    errors: if t > self.0 { 500.0 } else { 1.0 },
                    latency_p95_s: None,
                    latency_p99_s: None,
                })
                .collect(),
        ))
    }
    async fn resource_signals(
        &self,
        _w: &WorkloadRef,
        _from: i64,
        _to: i64,
    ) -> Result<Vec<ResourceSample>, PortError> {
        Ok(Vec::new())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revert_rbac_refuses_is_retried_until_allowed() {
    let env = start_with(|_| {}).await;
    settled(&env.cluster, &web()).await;
    let (clock, mut agent) = agent_on(&env, FailingAfter(1_790_000_000)).await;
    agent.tick().await.expect("tick");
    assert_eq!(agent.records()[0].phase, Phase::RollingOut);
    // From now on the first two patches of the workload are refused.
    env.server.inject(Fault {
        method: Some(axum::http::Method::PATCH),
        path_prefix: "/apis/apps/v1/namespaces/shop/deployments/web".into(),
        times: 2,
        action: FaultAction::Status(403),
    });
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        clock.0.set(clock.0.get() + 60);
        agent.tick().await.expect("tick");
        if agent.records()[0].phase.is_terminal() {
            break;
        }
    }
    let record = &agent.records()[0];
    assert_eq!(record.phase, Phase::Reverted, "{record:?}");
    let refused = env
        .server
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH" && r.uri.contains("/deployments/web") && r.code == 403)
        .count();
    assert_eq!(refused, 2, "both refusals were retried past");
    assert_eq!(
        current(&env.cluster.workloads().await.expect("list")),
        original()
    );
    let troubles: Vec<Value> = env
        .server
        .objects("events.k8s.io/v1", "Event", Some("shop"))
        .into_iter()
        .filter(|e| {
            e["note"]
                .as_str()
                .is_some_and(|n| n.starts_with("revert refused"))
        })
        .collect();
    assert_eq!(troubles.len(), 1, "said once: {troubles:#?}");
    env.server.shutdown().await;
}

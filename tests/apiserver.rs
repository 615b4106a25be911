//! The Kubernetes API test server (`tailor::sim::apiserver`) against the
//! real kube-rs client, reached through the kubeconfig the server writes:
//! each API semantic tailor relies on, the controllers, and `/metrics`.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use serde_json::{Value, json};
use tailor::sim::apiserver::{
    ApiServerConfig, ApiServerHandle, Fault, FaultAction, RbacDeny, load_cluster, start,
};
use tailor::sim::models::load_model;
use tailor::sim::scenario::FleetEntry;

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

async fn kube_client(server: &ApiServerHandle) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("kubeconfig");
    server.write_kubeconfig(&path).expect("write kubeconfig");
    let kubeconfig = Kubeconfig::read_from(&path).expect("read kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kube config");
    (Client::try_from(config).expect("client"), dir)
}

fn quick() -> ApiServerConfig {
    ApiServerConfig {
        tick: Duration::from_millis(100),
        roll_interval: Duration::from_millis(200),
        bookmark_interval: Duration::from_millis(200),
        ..ApiServerConfig::default()
    }
}

fn pod(name: &str, cpu: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "shop", "tier": "web"}},
        "spec": {"containers": [{"name": "app", "image": "shop:1", "resources": {
            "requests": {"cpu": cpu, "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}}]},
    }))
    .expect("pod")
}

fn cpu_request(pod: &Pod) -> String {
    let c = &pod.spec.as_ref().expect("spec").containers[0];
    let requests = c.resources.as_ref().and_then(|r| r.requests.as_ref());
    requests
        .and_then(|r| r.get("cpu"))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

fn api_code(err: &kube::Error) -> Option<(u16, String)> {
    match err {
        kube::Error::Api(status) => Some((status.code, status.reason.clone())),
        _ => None,
    }
}

pub(crate) async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < timeout {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_and_discovery() {
    let server = start(quick()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let version = client.apiserver_version().await.expect("version");
    assert_eq!(
        (version.major.as_str(), version.minor.as_str()),
        ("1", "33")
    );
    assert_eq!(version.git_version, "v1.33.0");
    let discovery = kube::Discovery::new(client).run().await.expect("discovery");
    for group in [
        "apps",
        "autoscaling",
        "coordination.k8s.io",
        "tailor.dev",
        "",
    ] {
        assert!(discovery.has_group(group), "group {group:?}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_get_list_replace_and_conflicts() {
    let server = start(quick()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let created = pods
        .create(&PostParams::default(), &pod("web-1", "100m"))
        .await
        .expect("create");
    assert!(created.metadata.uid.is_some() && created.metadata.creation_timestamp.is_some());
    let duplicate = pods
        .create(&PostParams::default(), &pod("web-1", "100m"))
        .await
        .expect_err("dup");
    assert_eq!(api_code(&duplicate), Some((409, "AlreadyExists".into())));
    pods.create(&PostParams::default(), &pod("db-1", "100m"))
        .await
        .expect("create");

    let got = pods.get("web-1").await.expect("get");
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );
    let listed = pods
        .list(&ListParams::default().labels("app=shop,tier in (web)"))
        .await
        .expect("list");
    let names: Vec<String> = listed
        .items
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    assert_eq!(names, ["db-1", "web-1"]);
    assert!(listed.metadata.resource_version.is_some());
    let by_field = pods
        .list(&ListParams::default().fields("metadata.name=db-1"))
        .await
        .expect("list");
    assert_eq!(by_field.items.len(), 1);
    let missing = pods.get("nope").await.expect_err("missing");
    assert_eq!(api_code(&missing), Some((404, "NotFound".into())));

    let mut fresh = got.clone();
    fresh
        .metadata
        .labels
        .get_or_insert_default()
        .insert("version".into(), "2".into());
    let replaced = pods
        .replace("web-1", &PostParams::default(), &fresh)
        .await
        .expect("replace");
    assert_ne!(
        replaced.metadata.resource_version,
        got.metadata.resource_version
    );
    let stale = pods
        .replace("web-1", &PostParams::default(), &fresh)
        .await
        .expect_err("stale");
    assert_eq!(api_code(&stale), Some((409, "Conflict".into())));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patches_in_every_format_and_status() {
    let server = start(quick()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("web-1", "100m"))
        .await
        .expect("create");
    let before = server
        .object("v1", "Pod", "default", "web-1")
        .expect("stored");

    // A failed `test` is 422 and nothing changes.
    let failing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/containers/0/resources/requests/cpu", "value": "999m"},
        {"op": "replace", "path": "/spec/containers/0/resources/requests/cpu", "value": "200m"},
    ]))
    .expect("patch");
    let err = pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Json::<()>(failing),
        )
        .await
        .expect_err("test fails");
    assert_eq!(api_code(&err), Some((422, "Invalid".into())));
    assert_eq!(server.object("v1", "Pod", "default", "web-1"), Some(before));

    let passing: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/spec/containers/0/resources/requests/cpu", "value": "100m"},
        {"op": "replace", "path": "/spec/containers/0/resources/requests/cpu", "value": "200m"},
    ]))
    .expect("patch");
    let p = pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Json::<()>(passing),
        )
        .await
        .expect("json");
    assert_eq!(cpu_request(&p), "200m");

    let merge = json!({"metadata": {"annotations": {"tailor.dev/change-id": "c1"}}});
    let p = pods
        .patch("web-1", &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .expect("merge");
    assert_eq!(
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("tailor.dev/change-id"))
            .map(String::as_str),
        Some("c1")
    );

    let strategic = json!({"spec": {"containers": [{"name": "app", "resources": {"requests": {"cpu": "300m"}}}]}});
    let p = pods
        .patch(
            "web-1",
            &PatchParams::default(),
            &Patch::Strategic(&strategic),
        )
        .await
        .expect("strategic");
    assert_eq!(cpu_request(&p), "300m");
    let c = &p.spec.as_ref().expect("spec").containers[0];
    assert_eq!(
        c.image.as_deref(),
        Some("shop:1"),
        "the list merged by name"
    );

    let apply = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web-1", "labels": {"owner": "tailor"}}});
    let p = pods
        .patch(
            "web-1",
            &PatchParams::apply("tailor"),
            &Patch::Apply(&apply),
        )
        .await
        .expect("apply");
    assert_eq!(
        p.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get("owner"))
            .map(String::as_str),
        Some("tailor")
    );

    // The main resource ignores status; the status subresource changes only status.
    let with_status = json!({"status": {"phase": "Failed"}, "metadata": {"labels": {"x": "y"}}});
    let p = pods
        .patch_status(
            "web-1",
            &PatchParams::default(),
            &Patch::Merge(&with_status),
        )
        .await
        .expect("status");
    assert_eq!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed")
    );
    assert!(
        p.metadata
            .labels
            .as_ref()
            .is_none_or(|l| !l.contains_key("x"))
    );
    let main = json!({"status": {"phase": "Running"}});
    let p = pods
        .patch("web-1", &PatchParams::default(), &Patch::Merge(&main))
        .await
        .expect("main");
    assert_eq!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Failed")
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_replays_after_a_resource_version_then_streams_and_bookmarks() {
    let server = start(quick()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let first = pods
        .create(&PostParams::default(), &pod("a", "100m"))
        .await
        .expect("create");
    let since = first.metadata.resource_version.clone().expect("rv");
    pods.create(&PostParams::default(), &pod("b", "100m"))
        .await
        .expect("create");
    let stream = pods
        .watch(&WatchParams::default().timeout(10), &since)
        .await
        .expect("watch");
    let mut stream = stream.boxed();
    let merge = json!({"metadata": {"labels": {"touched": "yes"}}});
    pods.patch("a", &PatchParams::default(), &Patch::Merge(&merge))
        .await
        .expect("patch");
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let Ok(Some(event)) = tokio::time::timeout(Duration::from_secs(2), stream.try_next())
            .await
            .map(|e| e.expect("event"))
        else {
            break;
        };
        let label = match &event {
            WatchEvent::Added(p) => {
                format!("ADDED {}", p.metadata.name.clone().unwrap_or_default())
            }
            // The kubelet's status writes are MODIFIED events too; the
            // label says which one is the patch below.
            WatchEvent::Modified(p) => {
                let touched = p
                    .metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.contains_key("touched"));
                let name = p.metadata.name.clone().unwrap_or_default();
                if touched {
                    format!("MODIFIED {name} touched")
                } else {
                    format!("MODIFIED {name}")
                }
            }
            WatchEvent::Deleted(p) => {
                format!("DELETED {}", p.metadata.name.clone().unwrap_or_default())
            }
            WatchEvent::Bookmark(_) => "BOOKMARK".to_string(),
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        let done = label == "BOOKMARK";
        seen.push(label);
        if done {
            break;
        }
    }
    let at = |label: &str| seen.iter().position(|s| s == label);
    let added = at("ADDED b").expect("the replay sends b's creation");
    let patched = at("MODIFIED a touched").expect("the live patch arrives");
    assert!(added < patched, "in resourceVersion order: {seen:?}");
    assert!(
        !seen.iter().any(|s| s == "ADDED a"),
        "a is older than `since`: {seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("BOOKMARK"),
        "{seen:?}"
    );

    // Too old: an ERROR event with 410 Expired.
    let small = ApiServerConfig {
        history_limit: 2,
        ..quick()
    };
    let tiny = start(small).await.expect("start");
    let (tiny_client, _dir2) = kube_client(&tiny).await;
    let pods: Api<Pod> = Api::namespaced(tiny_client, "default");
    for name in ["a", "b", "c", "d"] {
        pods.create(&PostParams::default(), &pod(name, "100m"))
            .await
            .expect("create");
    }
    let mut stream = pods
        .watch(&WatchParams::default(), "1")
        .await
        .expect("watch")
        .boxed();
    match stream.try_next().await.expect("event") {
        Some(WatchEvent::Error(e)) => assert_eq!(e.code, 410),
        _ => panic!("want a 410 ERROR event"),
    }
    tiny.shutdown().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_watcher_receives_events() {
    let server = start(quick()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(&PostParams::default(), &pod("before", "100m"))
        .await
        .expect("create");
    let mut events = watcher(pods.clone(), watcher::Config::default()).boxed();
    let mut names = Vec::new();
    let mut created_later = false;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && !names.contains(&"after".to_string()) {
        let event = tokio::time::timeout(Duration::from_secs(5), events.try_next())
            .await
            .expect("an event in time")
            .expect("watcher ok")
            .expect("stream open");
        match event {
            watcher::Event::InitApply(p) | watcher::Event::Apply(p) => {
                names.push(p.metadata.name.unwrap_or_default());
            }
            watcher::Event::InitDone if !created_later => {
                created_later = true;
                pods.create(&PostParams::default(), &pod("after", "100m"))
                    .await
                    .expect("create");
            }
            _ => {}
        }
    }
    assert!(
        names.contains(&"before".to_string()) && names.contains(&"after".to_string()),
        "{names:?}"
    );
    server.shutdown().await;
}

fn web_fleet() -> ApiServerConfig {
    let entry: FleetEntry =
        serde_yaml_ng::from_str("model: diurnal-web\nnamespace: shop\nname: web\nreplicas: 3\n")
            .expect("entry");
    ApiServerConfig {
        fleet: vec![entry],
        models: [(
            "diurnal-web".to_string(),
            load_model(&repo("models/diurnal-web.yaml")).expect("model"),
        )]
        .into(),
        ..quick()
    }
}

async fn deployment_status(deployments: &Api<Deployment>) -> (i64, i32, i32, String) {
    let d = deployments.get("web").await.expect("deployment");
    let status = d.status.unwrap_or_default();
    let progressing = status
        .conditions
        .unwrap_or_default()
        .into_iter()
        .find(|c| c.type_ == "Progressing")
        .and_then(|c| c.reason)
        .unwrap_or_default();
    (
        status.observed_generation.unwrap_or(0),
        status.updated_replicas.unwrap_or(0),
        status.replicas.unwrap_or(0),
        progressing,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_change_rolls_the_pods() {
    let server = start(web_fleet()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    eventually("3 running pods", Duration::from_secs(10), || async {
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .map(|l| l.items.len() == 3)
            .unwrap_or(false)
    })
    .await;
    let patch = json!({"spec": {"template": {"spec": {"containers": [
        {"name": "app", "resources": {"requests": {"cpu": "400m"}}}]}}}});
    let patched = deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch");
    let generation = patched.metadata.generation.expect("generation");
    assert_eq!(generation, 2);
    eventually("the rollout to finish", Duration::from_secs(15), || async {
        let (observed, updated, replicas, reason) = deployment_status(&deployments).await;
        observed == generation
            && updated == 3
            && replicas == 3
            && reason == "NewReplicaSetAvailable"
    })
    .await;
    let now = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list");
    assert_eq!(now.items.len(), 3);
    assert!(now.items.iter().all(|p| cpu_request(p) == "400m"));
    let sets = server.objects("apps/v1", "ReplicaSet", Some("shop"));
    assert_eq!(sets.len(), 2, "one ReplicaSet per template");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_limit_below_demand_is_oom_killed() {
    let server = start(web_fleet()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    eventually("3 running pods", Duration::from_secs(10), || async {
        pods.list(&ListParams::default())
            .await
            .map(|l| l.items.len() == 3)
            .unwrap_or(false)
    })
    .await;
    // diurnal-web needs 280Mi at rest.
    let patch = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "resources": {
        "requests": {"memory": "100Mi"}, "limits": {"memory": "100Mi"}}}]}}}});
    deployments
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .expect("patch");
    let oom_killed = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| {
                cs.iter().any(|c| {
                    c.restart_count >= 1
                        && c.last_state
                            .as_ref()
                            .and_then(|l| l.terminated.as_ref())
                            .and_then(|t| t.reason.as_deref())
                            == Some("OOMKilled")
                })
            })
    };
    eventually("an OOM kill", Duration::from_secs(15), || async {
        pods.list(&ListParams::default())
            .await
            .map(|l| l.items.iter().any(oom_killed))
            .unwrap_or(false)
    })
    .await;
    let text = reqwest::get(format!("{}/metrics", server.url()))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    assert!(
        text.lines().any(
            |l| l.starts_with("kube_pod_container_status_last_terminated_reason{")
                && l.contains("namespace=\"shop\"")
                && l.contains("reason=\"OOMKilled\"")
        ),
        "{text}"
    );
    assert!(
        text.lines().any(
            |l| l.starts_with("kube_pod_container_status_restarts_total{") && l.ends_with(" 1")
        )
    );
    // The rollout stalls on the crashing pod: old pods keep serving.
    let (_, updated, replicas, _) = deployment_status(&deployments).await;
    assert!(
        updated < 3 && replicas >= 3,
        "updated {updated} of {replicas}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_the_models() {
    let server = start(web_fleet()).await.expect("start");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let text = server.metrics_text();
    for family in [
        "container_cpu_usage_seconds_total{",
        "container_memory_working_set_bytes{",
        "kube_pod_owner{",
        "kube_replicaset_owner{",
        "kube_pod_container_info{",
        "kube_pod_container_resource_requests{",
        "kube_pod_container_resource_limits{",
        "kube_pod_start_time{",
        "kube_node_status_allocatable{",
        "http_requests_total{",
        "http_request_duration_seconds_bucket{",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(family)),
            "{family} missing:\n{text}"
        );
    }
    assert!(
        text.contains("owner_kind=\"ReplicaSet\"") && text.contains("owner_kind=\"Deployment\"")
    );
    let cpu: f64 = text
        .lines()
        .filter(|l| l.starts_with("container_cpu_usage_seconds_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(cpu > 0.0, "CPU is used");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_faults_fail_then_clear() {
    let server = start(quick()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    // kube-rs retries 429s itself (after Retry-After): the raw answer, then
    // a list that goes through once two faults are spent.
    server.inject(Fault {
        method: None,
        path_prefix: "/api/v1/namespaces/default/pods".into(),
        times: 1,
        action: FaultAction::Status(429),
    });
    let raw = reqwest::get(format!("{}/api/v1/namespaces/default/pods", server.url()))
        .await
        .expect("get");
    assert_eq!(raw.status().as_u16(), 429);
    assert_eq!(
        raw.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    let status: Value = raw.json().await.expect("status");
    assert_eq!(
        (
            status["kind"].as_str(),
            status["reason"].as_str(),
            status["code"].as_u64()
        ),
        (Some("Status"), Some("TooManyRequests"), Some(429))
    );
    server.inject(Fault {
        method: Some(axum::http::Method::GET),
        path_prefix: "/api/v1/namespaces/default/pods".into(),
        times: 2,
        action: FaultAction::Status(429),
    });
    pods.list(&ListParams::default())
        .await
        .expect("retried through the 429s");
    for code in [500, 403, 409, 422] {
        server.inject(Fault {
            method: Some(axum::http::Method::GET),
            path_prefix: "/api/v1/namespaces/default/pods".into(),
            times: 1,
            action: FaultAction::Status(code),
        });
        let err = pods.list(&ListParams::default()).await.expect_err("fault");
        assert_eq!(api_code(&err).map(|(c, _)| c), Some(code), "{err:?}");
        pods.list(&ListParams::default()).await.expect("cleared");
    }
    server.inject(Fault {
        method: None,
        path_prefix: "/api/v1/namespaces/default/pods".into(),
        times: 1,
        action: FaultAction::Hang(Duration::from_millis(300)),
    });
    let start = Instant::now();
    pods.list(&ListParams::default())
        .await
        .expect("slow but fine");
    assert!(start.elapsed() >= Duration::from_millis(300));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_e2e_cluster_file_loads() {
    let mut config = load_cluster(&repo("simulations/e2e/cluster.yaml")).expect("cluster file");
    config.tick = Duration::from_millis(100);
    let server = start(config).await.expect("start");
    let deployments = server.objects("apps/v1", "Deployment", None);
    assert!(deployments.len() >= 4, "{} deployments", deployments.len());
    let gitops = deployments.iter().any(|d| {
        d.pointer("/metadata/annotations")
            .and_then(Value::as_object)
            .is_some_and(|a| a.contains_key("argocd.argoproj.io/tracking-id"))
    });
    assert!(gitops, "a GitOps-managed Deployment");
    assert!(
        !server
            .objects("autoscaling/v2", "HorizontalPodAutoscaler", None)
            .is_empty()
    );
    assert!(!server.objects("apps/v1", "StatefulSet", None).is_empty());
    eventually(
        "pods for every workload",
        Duration::from_secs(10),
        || async { !server.objects("v1", "Pod", None).is_empty() },
    )
    .await;
    server.shutdown().await;
}

// In-place resize, as Kubernetes 1.33 serves and actuates it.

fn bare_pod(name: &str, resources: Value, resize_policy: Option<&str>) -> Pod {
    let mut container = json!({"name": "app", "image": "shop:1", "resources": resources});
    if let Some(policy) = resize_policy {
        container["resizePolicy"] = json!([{"resourceName": "memory", "restartPolicy": policy}]);
    }
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "shop"}},
        "spec": {"containers": [container]},
    }))
    .expect("pod")
}

fn condition(pod: &Pod, kind: &str) -> Option<(String, String)> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind && c.status == "True")
        .map(|c| {
            (
                c.reason.clone().unwrap_or_default(),
                c.message.clone().unwrap_or_default(),
            )
        })
}

/// What the container runs with (`status.containerStatuses[0].resources`).
fn actual_cpu(pod: &Pod) -> String {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.first())
        .and_then(|s| s.resources.as_ref())
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("cpu"))
        .map(|q| q.0.clone())
        .unwrap_or_default()
}

fn restart_count(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.first())
        .map_or(0, |s| s.restart_count)
}

/// `pods/{name}/resize` of the `app` container (a strategic merge patch).
pub(crate) async fn resize(
    pods: &Api<Pod>,
    name: &str,
    resources: Value,
) -> Result<Pod, kube::Error> {
    let body = json!({"spec": {"containers": [{"name": "app", "resources": resources}]}});
    pods.patch_subresource(
        "resize",
        name,
        &PatchParams::default(),
        &Patch::Strategic(&body),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resize_is_validated_like_1_33() {
    let server = start(quick()).await.expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let resources = json!({"requests": {"cpu": "100m", "memory": "128Mi"},
                           "limits": {"cpu": "1", "memory": "256Mi"}});
    pods.create(&PostParams::default(), &bare_pod("web-1", resources, None))
        .await
        .expect("create");
    let rows = [
        (
            json!({"limits": {"memory": "200Mi"}}),
            "spec.containers[0].resources.limits[memory]: Forbidden: memory limits cannot be \
             decreased unless resizePolicy is RestartContainer",
        ),
        (
            json!({"limits": {"cpu": null}}),
            "spec.containers[0].resources.limits[cpu]: Forbidden: resource limits cannot be removed",
        ),
        (
            json!({"requests": {"cpu": "1", "memory": "256Mi"}}),
            "spec: Forbidden: Pod QOS Class may not change as a result of resizing",
        ),
        (
            json!({"requests": {"cpu": "2"}}),
            "must be less than or equal to cpu limit",
        ),
    ];
    for (change, message) in rows {
        let err = resize(&pods, "web-1", change.clone())
            .await
            .expect_err("refused");
        let kube::Error::Api(status) = &err else {
            panic!("{err:?}");
        };
        assert_eq!(
            (status.code, status.reason.as_str()),
            (422, "Invalid"),
            "{change}"
        );
        assert!(
            status.message.contains(message),
            "{change}: {}",
            status.message
        );
    }
    let pod = pods.get("web-1").await.expect("pod");
    assert_eq!(cpu_request(&pod), "100m", "nothing changed");
    // Only resources change through the subresource.
    let body = json!({"metadata": {"labels": {"x": "y"}}, "spec": {"containers": [
        {"name": "app", "image": "other:2", "resources": {"requests": {"cpu": "150m"}}}]}});
    let pod = pods
        .patch_subresource(
            "resize",
            "web-1",
            &PatchParams::default(),
            &Patch::Strategic(&body),
        )
        .await
        .expect("resize");
    assert_eq!(cpu_request(&pod), "150m");
    let spec = pod.spec.expect("spec");
    assert_eq!(spec.containers[0].image.as_deref(), Some("shop:1"));
    assert!(!pod.metadata.labels.expect("labels").contains_key("x"));
    server.shutdown().await;

    // Before 1.33 the subresource is not served.
    let old = start(ApiServerConfig {
        minor_version: 32,
        ..quick()
    })
    .await
    .expect("start");
    let (client, _dir) = kube_client(&old).await;
    assert_eq!(
        client.apiserver_version().await.expect("version").minor,
        "32"
    );
    let pods: Api<Pod> = Api::namespaced(client, "default");
    pods.create(
        &PostParams::default(),
        &bare_pod("web-1", json!({"requests": {"cpu": "100m"}}), None),
    )
    .await
    .expect("create");
    let err = resize(&pods, "web-1", json!({"requests": {"cpu": "200m"}}))
        .await
        .expect_err("not served");
    assert_eq!(api_code(&err).map(|(c, _)| c), Some(404));
    old.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kubelet_actuates_defers_or_refuses_a_resize() {
    let server = start(ApiServerConfig {
        nodes: vec!["node-a".into()],
        node_cpu: tailor::units::MilliCores(4_000),
        resize_ticks: 3,
        ..quick()
    })
    .await
    .expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let resources = json!({"requests": {"cpu": "500m", "memory": "128Mi"},
                           "limits": {"cpu": "4", "memory": "256Mi"}});
    let created = pods
        .create(
            &PostParams::default(),
            &bare_pod("web-1", resources, Some("RestartContainer")),
        )
        .await
        .expect("create");
    let uid = created.metadata.uid.clone();
    eventually("web-1 running", Duration::from_secs(5), || async {
        pods.get("web-1")
            .await
            .is_ok_and(|p| actual_cpu(&p) == "500m")
    })
    .await;

    // Accepted: in progress for a few ticks, then actuated, no restart.
    let pod = resize(&pods, "web-1", json!({"requests": {"cpu": "1"}}))
        .await
        .expect("resize");
    assert_eq!(
        (cpu_request(&pod), actual_cpu(&pod)),
        ("1".into(), "500m".into())
    );
    eventually("PodResizeInProgress", Duration::from_secs(5), || async {
        pods.get("web-1")
            .await
            .is_ok_and(|p| condition(&p, "PodResizeInProgress").is_some())
    })
    .await;
    eventually("the resize actuated", Duration::from_secs(5), || async {
        pods.get("web-1")
            .await
            .is_ok_and(|p| actual_cpu(&p) == "1" && condition(&p, "PodResizeInProgress").is_none())
    })
    .await;
    let pod = pods.get("web-1").await.expect("pod");
    assert_eq!(pod.metadata.uid, uid);
    assert_eq!(restart_count(&pod), 0);
    let allocated = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|s| s.first())
        .and_then(|s| s.allocated_resources.as_ref())
        .and_then(|a| a.get("cpu"))
        .map(|q| q.0.clone());
    assert_eq!(allocated.as_deref(), Some("1"));

    // More than the node has: Infeasible, and nothing is actuated.
    resize(
        &pods,
        "web-1",
        json!({"requests": {"cpu": "5"}, "limits": {"cpu": "6"}}),
    )
    .await
    .expect("the API server accepts it");
    eventually("Infeasible", Duration::from_secs(5), || async {
        pods.get("web-1").await.is_ok_and(|p| {
            condition(&p, "PodResizePending")
                == Some((
                    "Infeasible".into(),
                    "Node didn't have enough capacity: cpu, requested: 5000, capacity: 4000".into(),
                ))
        })
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(actual_cpu(&pods.get("web-1").await.expect("pod")), "1");

    // Fits the node, not next to another pod: Deferred until it leaves.
    pods.create(
        &PostParams::default(),
        &bare_pod("batch", json!({"requests": {"cpu": "2500m"}}), None),
    )
    .await
    .expect("create");
    eventually("batch running", Duration::from_secs(5), || async {
        pods.get("batch")
            .await
            .is_ok_and(|p| actual_cpu(&p) == "2500m")
    })
    .await;
    resize(
        &pods,
        "web-1",
        json!({"requests": {"cpu": "2"}, "limits": {"cpu": "4"}}),
    )
    .await
    .expect("resize");
    eventually("Deferred", Duration::from_secs(5), || async {
        pods.get("web-1").await.is_ok_and(|p| {
            condition(&p, "PodResizePending")
                == Some((
                    "Deferred".into(),
                    "Node didn't have enough resource: cpu, requested: 2000, used: 2500, capacity: 4000".into(),
                ))
        })
    })
    .await;
    pods.delete("batch", &Default::default())
        .await
        .expect("delete");
    eventually(
        "the deferred resize actuated",
        Duration::from_secs(5),
        || async {
            pods.get("web-1")
                .await
                .is_ok_and(|p| actual_cpu(&p) == "2" && condition(&p, "PodResizePending").is_none())
        },
    )
    .await;
    assert_eq!(restart_count(&pods.get("web-1").await.expect("pod")), 0);

    // A memory change under `RestartContainer` restarts the container,
    // not the pod.
    resize(
        &pods,
        "web-1",
        json!({"requests": {"memory": "100Mi"}, "limits": {"memory": "200Mi"}}),
    )
    .await
    .expect("lower memory with RestartContainer");
    eventually("a container restart", Duration::from_secs(5), || async {
        pods.get("web-1")
            .await
            .is_ok_and(|p| restart_count(&p) == 1)
    })
    .await;
    assert_eq!(pods.get("web-1").await.expect("pod").metadata.uid, uid);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_run_on_the_actuated_limits() {
    let server = start(ApiServerConfig {
        resize_ticks: 10,
        ..web_fleet()
    })
    .await
    .expect("start");
    let (client, _dir) = kube_client(&server).await;
    let pods: Api<Pod> = Api::namespaced(client, "shop");
    eventually("3 running pods", Duration::from_secs(10), || async {
        pods.list(&ListParams::default().labels("app=web"))
            .await
            .is_ok_and(|l| l.items.len() == 3)
    })
    .await;
    let name = pods
        .list(&ListParams::default().labels("app=web"))
        .await
        .expect("list")
        .items[0]
        .metadata
        .name
        .clone()
        .expect("name");
    // diurnal-web needs at least 30m: a 20m limit throttles it.
    resize(
        &pods,
        &name,
        json!({"requests": {"cpu": "10m"}, "limits": {"cpu": "20m"}}),
    )
    .await
    .expect("resize");
    let throttled = |text: &str| -> Option<f64> {
        text.lines()
            .find(|l| {
                l.starts_with("container_cpu_cfs_throttled_periods_total{")
                    && l.contains(&format!("pod=\"{name}\""))
            })
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    };
    assert_eq!(
        throttled(&server.metrics_text()),
        None,
        "no CFS quota until the kubelet actuates the resize"
    );
    eventually(
        "throttling under the new limit",
        Duration::from_secs(10),
        || async { throttled(&server.metrics_text()).is_some_and(|t| t > 0.0) },
    )
    .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_refusals_read_like_the_real_authorizer() {
    let server = start(ApiServerConfig {
        rbac_deny: vec![
            RbacDeny {
                namespace: Some("shop".into()),
                ..RbacDeny::new("patch", "apps", "deployments")
            },
            RbacDeny::new("list", "", "pods"),
            RbacDeny::new("patch", "", "pods/resize"),
        ],
        ..web_fleet()
    })
    .await
    .expect("start");
    let (client, _dir) = kube_client(&server).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "shop");
    let body = json!({"metadata": {"labels": {"x": "y"}}});
    let err = deployments
        .patch("web", &PatchParams::default(), &Patch::Merge(&body))
        .await
        .expect_err("forbidden");
    let kube::Error::Api(status) = &err else {
        panic!("{err:?}");
    };
    assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
    assert_eq!(
        status.message,
        "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:tailor:tailor\" \
         cannot patch resource \"deployments\" in API group \"apps\" in the namespace \"shop\""
    );
    let raw: Value = reqwest::Client::new()
        .patch(format!(
            "{}/apis/apps/v1/namespaces/shop/deployments/web",
            server.url()
        ))
        .header("content-type", "application/merge-patch+json")
        .body(body.to_string())
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("status");
    assert_eq!(
        raw["details"],
        json!({"name": "web", "group": "apps", "kind": "deployments"})
    );
    // Reads stay allowed; other namespaces too.
    deployments.get("web").await.expect("get is allowed");
    let pods: Api<Pod> = Api::all(client.clone());
    let err = pods
        .list(&ListParams::default())
        .await
        .expect_err("forbidden");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.message == "pods is forbidden: User \"system:serviceaccount:tailor:tailor\" \
            cannot list resource \"pods\" in API group \"\" at the cluster scope"),
        "{err:?}"
    );
    let shop: Api<Pod> = Api::namespaced(client, "shop");
    let err = resize(&shop, "anything", json!({"requests": {"cpu": "1"}}))
        .await
        .expect_err("forbidden");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 403 && s.message.contains("cannot patch resource \"pods/resize\" in API group \"\" in the namespace \"shop\"")),
        "{err:?}"
    );
    let refused = server.requests().iter().filter(|r| r.code == 403).count();
    assert_eq!(refused, 4, "{:?}", server.requests());
    server.shutdown().await;
}

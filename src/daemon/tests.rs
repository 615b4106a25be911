//! The loop over in-memory ports on a paused clock, and the endpoints over
//! real HTTP.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::domain::WorkloadRef;
use crate::plan::WorkloadView;
use crate::ports::{AgentEvent, NoSlis, PortError, ResourcePatch, RolloutStatus, Silent};
use crate::recommend::Recommendation;
use crate::rollout::RolloutRecord;

#[derive(Default)]
struct Calls {
    workloads: Cell<u32>,
    applies: Cell<u32>,
    load_rollouts: Cell<u32>,
    recommendations: Cell<u32>,
    urgent: Cell<u32>,
}

struct FakeCluster(Rc<Calls>);

impl Cluster for FakeCluster {
    async fn workloads(&self) -> Result<Vec<WorkloadView>, PortError> {
        self.0.workloads.set(self.0.workloads.get() + 1);
        Ok(Vec::new())
    }
    async fn apply(&self, _patch: &ResourcePatch) -> Result<(), PortError> {
        self.0.applies.set(self.0.applies.get() + 1);
        Ok(())
    }
    async fn rollout_status(&self, w: &WorkloadRef) -> Result<RolloutStatus, PortError> {
        Err(PortError::NotFound(w.to_string()))
    }
    async fn load_rollouts(&self) -> Result<Vec<RolloutRecord>, PortError> {
        self.0.load_rollouts.set(self.0.load_rollouts.get() + 1);
        Ok(Vec::new())
    }
    async fn save_rollout(&self, _record: &RolloutRecord) -> Result<(), PortError> {
        Ok(())
    }
    async fn record_event(&self, _event: &AgentEvent) -> Result<(), PortError> {
        Ok(())
    }
}

struct FakeUsage(Rc<Calls>);

impl UsageSource for FakeUsage {
    async fn recommendations(&self, _now: i64) -> Result<Vec<Recommendation>, PortError> {
        self.0.recommendations.set(self.0.recommendations.get() + 1);
        Ok(Vec::new())
    }
    async fn urgent(&self, _since: i64, _now: i64) -> Result<Vec<Recommendation>, PortError> {
        self.0.urgent.set(self.0.urgent.get() + 1);
        Ok(Vec::new())
    }
}

fn options() -> RunOptions {
    RunOptions::new(
        Duration::from_secs(60),
        "127.0.0.1:0".parse().expect("address"),
    )
}

async fn run_for(
    calls: &Rc<Calls>,
    elector: Option<LeaderElector>,
    for_s: u64,
) -> Result<RunSummary, DaemonError> {
    run(
        FakeCluster(calls.clone()),
        FakeUsage(calls.clone()),
        NoSlis,
        Silent,
        AgentSettings::default(),
        elector,
        options(),
        tokio::time::sleep(Duration::from_secs(for_s)),
    )
    .await
}

fn elector(client: kube::Client, me: &str) -> LeaderElector {
    LeaderElector::new(
        client,
        "tailor",
        "tailor-leader",
        me,
        Duration::from_secs(15),
        Duration::from_secs(5),
    )
}

#[tokio::test(start_paused = true)]
async fn the_leader_ticks_every_tick() {
    let calls = Rc::new(Calls::default());
    // Ticks at 0, 60, …, 300 s; the shutdown comes at 330 s.
    let summary = run_for(&calls, None, 330).await.expect("runs");
    assert_eq!(summary.ticks, 6);
    assert_eq!(summary.tick_errors, 0);
    assert_eq!(summary.leader_terms, 1);
    assert_eq!(
        calls.load_rollouts.get(),
        1,
        "persisted rollouts loaded once"
    );
    assert_eq!(
        calls.recommendations.get() + calls.urgent.get(),
        6,
        "each tick asks for recommendations"
    );
}

#[tokio::test(start_paused = true)]
async fn once_runs_a_single_tick() {
    let calls = Rc::new(Calls::default());
    let mut o = options();
    o.once = true;
    let summary = run(
        FakeCluster(calls.clone()),
        FakeUsage(calls.clone()),
        NoSlis,
        Silent,
        AgentSettings::default(),
        None,
        o,
        std::future::pending(),
    )
    .await
    .expect("runs");
    assert_eq!(summary.ticks, 1);
}

#[tokio::test(start_paused = true)]
async fn a_follower_never_acts() {
    let store = fake_api::store_with(Some(fake_api::lease("pod-b", 0, 3600, 0)));
    let (client, _) = fake_api::start(store.clone()).await;
    let calls = Rc::new(Calls::default());
    let summary = run_for(&calls, Some(elector(client, "pod-a")), 330)
        .await
        .expect("runs");
    assert_eq!(summary.ticks, 0);
    assert_eq!(summary.leader_terms, 0);
    assert!(!summary.lease_released, "not ours to release");
    assert_eq!(calls.applies.get(), 0);
    assert_eq!(calls.load_rollouts.get(), 0, "no agent started");
    assert_eq!(calls.recommendations.get() + calls.urgent.get(), 0);
    assert!(calls.workloads.get() >= 1, "followers check they can list");
    let s = store.lock().expect("lock");
    assert_eq!(s.holder().as_deref(), Some("pod-b"));
    assert!(s.writes.is_empty());
}

#[tokio::test(start_paused = true)]
async fn shutdown_releases_the_lease() {
    let store = fake_api::store_with(None);
    let (client, _) = fake_api::start(store.clone()).await;
    let calls = Rc::new(Calls::default());
    let summary = run_for(&calls, Some(elector(client, "pod-a")), 130)
        .await
        .expect("runs");
    assert_eq!(summary.leader_terms, 1);
    assert_eq!(summary.ticks, 3);
    assert!(summary.lease_released);
    let s = store.lock().expect("lock");
    assert_eq!(s.holder(), None, "holderIdentity cleared");
    assert_eq!(s.writes.first().map(|w| w.0.as_str()), Some("POST"));
    assert!(s.writes.len() > 3, "renewed while running: {:?}", s.writes);
}

#[tokio::test(start_paused = true)]
async fn taking_the_lease_from_an_expired_leader_starts_the_agent() {
    let store = fake_api::store_with(Some(fake_api::lease("pod-b", 0, 20, 0)));
    let (client, _) = fake_api::start(store.clone()).await;
    let calls = Rc::new(Calls::default());
    // pod-b's lease is judged by the wall clock, which a paused tokio clock
    // does not move: wait for it in real time.
    let summary = run(
        FakeCluster(calls.clone()),
        FakeUsage(calls.clone()),
        NoSlis,
        Silent,
        AgentSettings::default(),
        Some(elector(client, "pod-a")),
        options(),
        async {
            while store.lock().expect("lock").holder().as_deref() != Some("pod-a") {
                tokio::time::sleep(Duration::from_secs(5)).await;
                std::thread::sleep(Duration::from_millis(100));
                let mut s = store.lock().expect("lock");
                // Age pod-b's lease instead of waiting 20 real seconds.
                if s.holder().as_deref() == Some("pod-b") {
                    s.lease = Some(fake_api::lease("pod-b", 60, 20, 0));
                    s.version += 1;
                    let v = s.version.to_string();
                    if let Some(l) = s.lease.as_mut() {
                        l["metadata"]["resourceVersion"] = v.into();
                    }
                }
            }
            tokio::time::sleep(Duration::from_secs(90)).await;
        },
    )
    .await
    .expect("runs");
    assert_eq!(summary.leader_terms, 1);
    assert!(summary.ticks >= 1);
    assert_eq!(calls.load_rollouts.get(), 1);
}

fn recommendation(ns: &str, name: &str, savings: f64) -> Recommendation {
    use crate::domain::{ContainerRef, Resources, WorkloadKind};
    use crate::recommend::{Confidence, ConfidenceLevel, Evidence};
    use crate::units::{Bytes, MilliCores};
    Recommendation {
        target: ContainerRef {
            workload: WorkloadRef {
                namespace: ns.into(),
                kind: WorkloadKind::Deployment,
                name: name.into(),
            },
            container: "app".into(),
        },
        current: Resources {
            cpu_request: Some(MilliCores(1000)),
            memory_request: Some(Bytes::gib(1)),
            ..Resources::default()
        },
        recommended: Resources {
            cpu_request: Some(MilliCores(250)),
            memory_request: Some(Bytes::mib(512)),
            ..Resources::default()
        },
        confidence: Confidence {
            score: 0.9,
            level: ConfidenceLevel::High,
        },
        savings_per_month_usd: savings,
        evidence: Evidence::default(),
        skipped_reason: None,
    }
}

#[test]
fn the_top_workloads_by_savings_are_kept() {
    let all: Vec<Recommendation> = (0..250)
        .map(|i| recommendation("shop", &format!("w{i:03}"), f64::from(i)))
        .collect();
    let top = state::top_by_savings(&all, 200);
    assert_eq!(top.len(), 200);
    assert!(top.iter().all(|r| r.savings_per_month_usd >= 50.0));
}

async fn get(address: std::net::SocketAddr, path: &str) -> (u16, String) {
    let response = reqwest::get(format!("http://{address}{path}"))
        .await
        .expect("a response");
    let code = response.status().as_u16();
    (code, response.text().await.expect("a body"))
}

#[tokio::test]
async fn the_endpoints_report_health_readiness_and_metrics() {
    let state = Arc::new(DaemonState::new(
        Duration::from_secs(300),
        Some(Arc::new(|| QueryTotals {
            queries: 42,
            failures: 2,
        })),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(server::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));

    assert_eq!(get(address, "/healthz").await.0, 503);
    state.set_running(true);
    assert_eq!(get(address, "/healthz").await.0, 200);
    let (code, body) = get(address, "/readyz").await;
    assert_eq!((code, body.trim()), (503, "leadership not known yet"));
    state.set_leadership(Leadership::Leader);
    let (code, body) = get(address, "/readyz").await;
    assert_eq!(
        (code, body.trim()),
        (503, "waiting for the first successful workload list")
    );
    state.set_workloads_listed();
    assert_eq!(get(address, "/readyz").await.0, 200);

    state.set_recommendations(vec![recommendation("shop", "web", 12.5)]);
    let before = crate::agent::AgentStats::default();
    let after = crate::agent::AgentStats {
        applied: 2,
        reverted: 1,
        fast_paths: 1,
        ..before.clone()
    };
    state.count_stats(&before, &after);
    state.observe_tick(Duration::from_millis(30));
    let (code, text) = get(address, "/metrics").await;
    assert_eq!(code, 200);
    for name in [
        "tailor_changes_total{outcome=\"applied\"} 2",
        "tailor_changes_total{outcome=\"reverted\"} 1",
        "tailor_fast_paths_total 1",
        "tailor_verdicts_total{verdict=\"breach\"} 0",
        "tailor_changes_total{outcome=\"confirmed\"} 0",
        "tailor_leader 1",
        "tailor_loop_duration_seconds_count 1",
        "tailor_loop_errors_total 0",
        "tailor_prometheus_queries_total 42",
        "tailor_prometheus_query_errors_total 2",
        "# TYPE tailor_prometheus_query_duration_seconds histogram",
        "tailor_recommendation_cpu_millicores{namespace=\"shop\",workload=\"web\",workload_kind=\"Deployment\",container=\"app\",kind=\"recommended\"} 250",
        "tailor_recommendation_memory_bytes{namespace=\"shop\",workload=\"web\",workload_kind=\"Deployment\",container=\"app\",kind=\"current\"} 1073741824",
        "bounded cardinality",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let (code, body) = get(address, "/api/v1/recommendations").await;
    assert_eq!(code, 200);
    let json: serde_json::Value = serde_json::from_str(&body).expect("json");
    assert_eq!(json["leader"], true);
    assert_eq!(
        json["recommendations"][0]["target"]["workload"]["name"],
        "web"
    );
}

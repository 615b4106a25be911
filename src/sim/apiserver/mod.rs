//! A Kubernetes API test server: plain HTTP on loopback that the real
//! kube-rs client talks to through a kubeconfig, serving the subset of the
//! API tailor uses with the semantics tailor depends on (DESIGN §10).
//!
//! - **Objects** live in memory as JSON: namespaces, nodes, pods (with
//!   `status` and `resize`), events, LimitRanges, Deployments, StatefulSets,
//!   DaemonSets, ReplicaSets, HPAs, PDBs, Leases, `events.k8s.io` events,
//!   CRDs and tailor's `Recommendation`s. Every write bumps a global
//!   `resourceVersion`; a stale one on PUT is 409 Conflict; JSON Patch `test`
//!   failures are 422 and change nothing; watches replay a bounded history.
//! - **Controllers** (a tokio task on the wall clock) own ReplicaSets and
//!   pods, roll template changes one pod at a time, and run each pod's
//!   workload model every tick, so a lowered limit throttles or OOM-kills.
//! - **`/metrics`** serves what Prometheus would scrape from cAdvisor,
//!   kube-state-metrics and the apps' own request counters and histograms.
//! - **Faults**: the next N matching requests fail or hang ([`Fault`]);
//!   RBAC refusals ([`RbacDeny`]) answer 403 as the real authorizer does.
//! - **In-place resize** (`pods/{name}/resize`) with 1.33's validation and
//!   a kubelet that admits, defers or refuses it against node capacity.
//!
//! It is test infrastructure and a local playground (`tailor run` against
//! it with nothing installed). It is not a Kubernetes: no authentication,
//! no TLS, no admission, no scheduler, no garbage collection beyond the
//! workloads it runs. `docs/testing.md` lists what it keeps and what it
//! does not.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tailor::sim::apiserver::{ApiServerConfig, start};
//! let server = start(ApiServerConfig::default()).await?;
//! server.write_kubeconfig(std::path::Path::new("/tmp/kubeconfig"))?;
//! println!("{}", server.url());
//! server.shutdown().await;
//! # Ok(()) }
//! ```

mod controllers;
mod fixture;
mod http;
mod metrics;
mod resize;
mod resources;
mod selector;
mod store;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::Method;
use serde_json::Value;
use tokio::task::JoinHandle;

pub use fixture::{ClusterFile, load_cluster};
pub use store::ApiError;

use crate::sim::models::ModelSpec;
use crate::sim::scenario::FleetEntry;
use crate::units::{Bytes, MilliCores};

/// Everything the server starts with.
#[derive(Clone, Debug)]
pub struct ApiServerConfig {
    /// Deployments to create, one per entry (or `count`), from `models`.
    pub fleet: Vec<FleetEntry>,
    /// StatefulSets, built like `fleet` entries.
    pub statefulsets: Vec<FleetEntry>,
    /// DaemonSets: one pod per node.
    pub daemonsets: Vec<FleetEntry>,
    /// Extra objects (namespaces, LimitRanges, PDBs…) created as given.
    pub objects: Vec<Value>,
    /// Workload models by name (the file stem in `models/`).
    pub models: BTreeMap<String, ModelSpec>,
    /// Node names: pods spread over them, DaemonSets run one pod on each.
    pub nodes: Vec<String>,
    /// Allocatable CPU and memory of every node.
    pub node_cpu: MilliCores,
    pub node_memory: Bytes,
    /// How often controllers and pod models run.
    pub tick: Duration,
    /// Time between two pod replacements of a rollout.
    pub roll_interval: Duration,
    /// How often watches that asked for them get a BOOKMARK.
    pub bookmark_interval: Duration,
    /// Watch events kept for replay; older resource versions are 410 Expired.
    pub history_limit: usize,
    /// Seeds the models' noise and the generated UIDs.
    pub seed: u64,
    /// Port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// The Kubernetes minor version `/version` reports (1.x). Below 33 the
    /// server does not serve `pods/resize`, like a cluster whose
    /// `InPlacePodVerticalScaling` gate is off by default.
    pub minor_version: u32,
    /// Ticks a resize the kubelet admitted stays `PodResizeInProgress`
    /// before it is actuated.
    pub resize_ticks: u32,
    /// Verbs the server's RBAC refuses: 403 Forbidden, worded as the real
    /// authorizer words it for [`ApiServerConfig::user`].
    pub rbac_deny: Vec<RbacDeny>,
    /// Who the server says is calling, in RBAC refusals.
    pub user: String,
}

/// One refusal of the test server's RBAC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RbacDeny {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, or `*`.
    pub verb: String,
    /// API group: `apps`, or empty for the core group.
    pub group: String,
    /// Plural, with the subresource when there is one: `deployments`,
    /// `pods/resize`, `recommendations/status`.
    pub resource: String,
    /// Only in this namespace; `None`: everywhere.
    pub namespace: Option<String>,
}

impl RbacDeny {
    /// Refuses `verb` on `group`/`resource` everywhere.
    pub fn new(verb: &str, group: &str, resource: &str) -> RbacDeny {
        RbacDeny {
            verb: verb.into(),
            group: group.into(),
            resource: resource.into(),
            namespace: None,
        }
    }
}

/// One request the server answered, for tests that count calls.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub method: String,
    /// Path and query, as sent.
    pub uri: String,
    pub code: u16,
}

/// Requests kept in the audit log; older ones are dropped.
const AUDIT_LIMIT: usize = 10_000;

impl Default for ApiServerConfig {
    fn default() -> Self {
        ApiServerConfig {
            fleet: Vec::new(),
            statefulsets: Vec::new(),
            daemonsets: Vec::new(),
            objects: Vec::new(),
            models: BTreeMap::new(),
            nodes: vec!["node-a".into(), "node-b".into()],
            node_cpu: MilliCores(8_000),
            node_memory: Bytes(32 << 30),
            tick: Duration::from_secs(1),
            roll_interval: Duration::from_secs(2),
            bookmark_interval: Duration::from_secs(5),
            history_limit: 10_000,
            seed: 1,
            port: 0,
            minor_version: resize::MIN_MINOR,
            resize_ticks: 2,
            rbac_deny: Vec::new(),
            user: "system:serviceaccount:tailor:tailor".into(),
        }
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: io::Error },
    #[error("cannot serve: {0}")]
    Serve(io::Error),
    #[error("cannot read the cluster file {path}: {message}")]
    Cluster { path: String, message: String },
    #[error(transparent)]
    Model(#[from] crate::sim::models::ModelError),
    #[error("cannot create the fixture's {what}: {source}")]
    Fixture { what: String, source: ApiError },
}

/// What an injected fault does to a matching request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// Answer with this status (409, 422, 429, 500, 403…) as a `Status`.
    Status(u16),
    /// Wait this long, then serve the request normally.
    Hang(Duration),
}

/// Makes the next `times` requests matching `method` (any when `None`) and
/// a path starting with `path_prefix` fail or hang.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub method: Option<Method>,
    pub path_prefix: String,
    pub times: u32,
    pub action: FaultAction,
}

/// State behind the server's one lock: the objects and the pods' models.
pub(crate) struct ClusterState {
    pub store: store::Store,
    pub sim: controllers::Sim,
}

pub(crate) struct Shared {
    pub state: Mutex<ClusterState>,
    faults: Mutex<Vec<Fault>>,
    audit: Mutex<std::collections::VecDeque<AuditEntry>>,
    pub config: ApiServerConfig,
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// Locks, recovering from a panicked holder: the store stays usable for
/// the rest of a test run.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    fn take_fault(&self, method: &Method, path: &str) -> Option<FaultAction> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|f| {
            f.times > 0
                && f.method.as_ref().is_none_or(|m| m == method)
                && path.starts_with(&f.path_prefix)
        })?;
        let fault = &mut faults[index];
        fault.times -= 1;
        let action = fault.action;
        if fault.times == 0 {
            faults.remove(index);
        }
        Some(action)
    }

    fn audit(&self, entry: AuditEntry) {
        let mut log = lock(&self.audit);
        if log.len() == AUDIT_LIMIT {
            log.pop_front();
        }
        log.push_back(entry);
    }
}

/// A running server.
pub struct ApiServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<io::Result<()>>,
    controllers: JoinHandle<()>,
}

impl ApiServerHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A kubeconfig whose current context reaches this server as a user
    /// with no credentials.
    pub fn write_kubeconfig(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, kubeconfig(&self.url()))
    }

    /// Every request answered so far (the latest 10,000), oldest first.
    pub fn requests(&self) -> Vec<AuditEntry> {
        lock(&self.shared.audit).iter().cloned().collect()
    }

    /// Arms a fault; faults fire in the order they were injected.
    pub fn inject(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// The stored object, for assertions. `api_version` is `v1` or
    /// `apps/v1`; `namespace` is ignored for cluster-scoped types.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let rt = resources::by_kind(api_version, kind)?;
        lock(&self.shared.state)
            .store
            .lookup(rt, namespace, name)
            .cloned()
    }

    /// Every stored object of a type in a namespace (all when `None`).
    pub fn objects(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let Some(rt) = resources::by_kind(api_version, kind) else {
            return Vec::new();
        };
        lock(&self.shared.state)
            .store
            .iter(rt, namespace)
            .cloned()
            .collect()
    }

    /// The `/metrics` text as a scrape would read it now.
    pub fn metrics_text(&self) -> String {
        metrics::render(&lock(&self.shared.state), self.shared.config.tick)
    }

    /// Stops the controllers, ends open watches and waits for the server.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        self.controllers.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.server).await;
    }
}

/// The kubeconfig text for a server at `url`.
pub fn kubeconfig(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: tailor-sim\n  cluster:\n    server: {url}\n\
         users:\n- name: tailor-sim\n  user: {{}}\ncontexts:\n- name: tailor-sim\n  context:\n    \
         cluster: tailor-sim\n    user: tailor-sim\n    namespace: default\n\
         current-context: tailor-sim\n"
    )
}

/// Binds 127.0.0.1 on `config.port` (0: any free port), creates the
/// fixture's objects and starts the controllers.
pub async fn start(config: ApiServerConfig) -> Result<ApiServerHandle, ApiServerError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], config.port));
    start_on(config, addr).await
}

async fn start_on(
    config: ApiServerConfig,
    addr: SocketAddr,
) -> Result<ApiServerHandle, ApiServerError> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ApiServerError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ApiServerError::Bind { addr, source })?;
    let mut state = ClusterState {
        store: store::Store::new(config.seed, config.history_limit),
        sim: controllers::Sim::default(),
    };
    fixture::populate(&mut state.store, &config)?;
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
        faults: Mutex::new(Vec::new()),
        audit: Mutex::new(std::collections::VecDeque::new()),
        config,
        shutdown: shutdown.clone(),
    });
    let router = axum::Router::new()
        .fallback(http::handle)
        .with_state(Arc::clone(&shared));
    let mut graceful = shutdown.clone();
    let server = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = graceful.wait_for(|stop| *stop).await;
            })
            .await
    });
    let controllers = tokio::spawn(controllers::run(Arc::clone(&shared)));
    tracing::info!(url = %format!("http://{addr}"), "Kubernetes API test server listening");
    Ok(ApiServerHandle {
        addr,
        shared,
        stop,
        server,
        controllers,
    })
}

/// Serves on `addr` until the process ends (what a CLI calls).
pub async fn serve_forever(
    config: ApiServerConfig,
    addr: SocketAddr,
) -> Result<(), ApiServerError> {
    let handle = start_on(config, addr).await?;
    match handle.server.await {
        Ok(result) => result.map_err(ApiServerError::Serve),
        Err(e) => Err(ApiServerError::Serve(io::Error::other(e))),
    }
}

//! A tiny stand-in for the Kubernetes API serving one namespace's Leases
//! over real HTTP (resourceVersion, 404, 409), for the election and loop
//! tests. The project's full API test server replaces it in wire tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

#[derive(Default)]
pub struct Store {
    pub lease: Option<Value>,
    pub version: u64,
    /// The next PUT fails with 409 (another candidate wrote first).
    pub conflict_next_put: bool,
    /// Every accepted write: (method, holderIdentity written).
    pub writes: Vec<(String, Option<String>)>,
}

impl Store {
    pub fn holder(&self) -> Option<String> {
        self.lease
            .as_ref()?
            .pointer("/spec/holderIdentity")?
            .as_str()
            .map(str::to_string)
    }
}

pub type Shared = Arc<Mutex<Store>>;

fn status(code: u16, reason: &str) -> Response {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": reason, "reason": reason, "code": code});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(body),
    )
        .into_response()
}

async fn read(State(store): State<Shared>, Path(_): Path<(String, String)>) -> Response {
    let store = store.lock().expect("store lock");
    match &store.lease {
        Some(lease) => Json(lease.clone()).into_response(),
        None => status(404, "NotFound"),
    }
}

async fn replace(
    State(store): State<Shared>,
    Path(_): Path<(String, String)>,
    Json(mut lease): Json<Value>,
) -> Response {
    let mut store = store.lock().expect("store lock");
    let sent = lease
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_string);
    if store.lease.is_none() {
        return status(404, "NotFound");
    }
    if std::mem::take(&mut store.conflict_next_put) || sent != Some(store.version.to_string()) {
        return status(409, "Conflict");
    }
    store.version += 1;
    lease["metadata"]["resourceVersion"] = json!(store.version.to_string());
    store.lease = Some(lease.clone());
    let holder = store.holder();
    store.writes.push(("PUT".into(), holder));
    Json(lease).into_response()
}

async fn create(
    State(store): State<Shared>,
    Path(_): Path<String>,
    Json(mut lease): Json<Value>,
) -> Response {
    let mut store = store.lock().expect("store lock");
    if store.lease.is_some() {
        return status(409, "AlreadyExists");
    }
    store.version += 1;
    lease["metadata"]["resourceVersion"] = json!(store.version.to_string());
    store.lease = Some(lease.clone());
    let holder = store.holder();
    store.writes.push(("POST".into(), holder));
    (StatusCode::CREATED, Json(lease)).into_response()
}

/// Serves `store` on a free loopback port; returns a client for it.
pub async fn start(store: Shared) -> (kube::Client, SocketAddr) {
    let app = Router::new()
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
            get(read).put(replace),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            post(create),
        )
        .with_state(store);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut config = kube::Config::new(format!("http://{address}").parse().expect("uri"));
    // No client-side timers: the loop tests run on a paused clock.
    config.connect_timeout = None;
    config.read_timeout = None;
    config.write_timeout = None;
    let client = kube::Client::try_from(config).expect("client");
    (client, address)
}

/// A Lease held by `holder`, renewed `age_s` seconds ago, for `duration_s`.
pub fn lease(holder: &str, age_s: i64, duration_s: i32, transitions: i32) -> Value {
    let renewed =
        k8s_openapi::jiff::Timestamp::now() - k8s_openapi::jiff::SignedDuration::from_secs(age_s);
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": "tailor-leader", "namespace": "tailor", "resourceVersion": "1"},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_s,
            "acquireTime": renewed.to_string(),
            "renewTime": renewed.to_string(),
            "leaseTransitions": transitions
        }
    })
}

pub fn store_with(lease: Option<Value>) -> Shared {
    Arc::new(Mutex::new(Store {
        version: u64::from(lease.is_some()),
        lease,
        ..Store::default()
    }))
}

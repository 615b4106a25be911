//! The daemon's HTTP endpoints (read-only, served by leader and followers):
//! `/healthz`, `/readyz`, `/metrics` (Prometheus text) and
//! `/api/v1/recommendations` (JSON). They read [`DaemonState`] only.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;

use super::state::{DaemonState, Leadership};
use crate::recommend::Recommendation;

/// The endpoints over `state`.
pub fn router(state: Arc<DaemonState>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/v1/recommendations", get(recommendations))
        .with_state(state)
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<DaemonState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

fn verdict(result: Result<(), String>) -> Response {
    match result {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response(),
    }
}

async fn healthz(State(state): State<Arc<DaemonState>>) -> Response {
    verdict(state.health())
}

async fn readyz(State(state): State<Arc<DaemonState>>) -> Response {
    verdict(state.readiness())
}

async fn metrics(State(state): State<Arc<DaemonState>>) -> Response {
    match state.encode_metrics() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

/// The body of `/api/v1/recommendations`.
#[derive(Serialize)]
pub struct RecommendationsBody {
    /// Whether this replica leads (followers have none: only the leader
    /// asks the metrics backend).
    pub leader: bool,
    pub recommendations: Vec<Recommendation>,
}

async fn recommendations(State(state): State<Arc<DaemonState>>) -> Response {
    axum::Json(RecommendationsBody {
        leader: state.leadership() == Leadership::Leader,
        recommendations: state.recommendations(),
    })
    .into_response()
}

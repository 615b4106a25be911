//! The Prometheus adapter: discovers workloads from kube-state-metrics and
//! reads their usage from cAdvisor series, in a number of queries that does
//! not depend on the number of containers.
//!
//! - [`promql`]: query text with escaped label values.
//! - [`client`]: HTTP, auth, retries, rate limit, streaming decode.
//! - [`discovery`]: pods → workloads, current resources, HPAs, nodes.
//! - [`collect`]: usage history, chunked by namespace, metric and time,
//!   folded straight into the estimators.
//! - [`source`]: the agent's usage and SLO source (SLI templates, resource
//!   signals, urgent news).

pub mod client;
pub mod collect;
pub mod discovery;
pub mod promql;
pub mod source;

use std::time::Duration;

pub use client::{PromClient, QueryCounts};

/// Why talking to the metrics backend failed.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("cannot set up the Prometheus client: {0}")]
    Setup(String),
    #[error(
        "Prometheus at {url} is unreachable: {detail} (check prometheus.url / --prometheus-url and network policy)"
    )]
    Unreachable { url: String, detail: String },
    #[error(
        "Prometheus at {url} did not answer within {timeout:?} (raise prometheus.timeout, or narrow --namespace)"
    )]
    Timeout { url: String, timeout: Duration },
    #[error("Prometheus at {url} answered HTTP {status}: {body}")]
    Http {
        url: String,
        status: u16,
        body: String,
    },
    #[error("Prometheus at {url} rejected a query ({kind}: {message}); query: {query}")]
    Query {
        url: String,
        query: String,
        kind: String,
        message: String,
    },
    #[error(
        "Prometheus at {url} sent a response that is not the Prometheus API's JSON: {detail} (is the URL the Prometheus API root?)"
    )]
    Malformed { url: String, detail: String },
}

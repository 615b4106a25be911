//! tailor keeps Kubernetes CPU and memory requests and limits right.
//!
//! It reads container usage from Prometheus (or any Prometheus-compatible
//! backend), computes recommendations inside safety bounds, and reports what
//! each change would save. The core is free of I/O: `recommend` turns usage
//! into [`recommend::Recommendation`]s with pure functions; `metrics` is the
//! adapter that fetches usage from Prometheus in batched, chunked queries;
//! `report` renders results. `docs/architecture.md` is the map for newcomers.

pub mod agent;
pub mod app;
pub mod backtest;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod domain;
pub mod guard;
pub mod metrics;
pub mod notify;
pub mod plan;
pub mod ports;
pub mod recommend;
pub mod report;
pub mod rollout;
pub mod scan;
pub mod sim;
pub mod units;

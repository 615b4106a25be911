//! What the integration tests need around tailor: real Prometheus and
//! VictoriaMetrics servers filled with generated history
//! ([`tailor::sim::history`]), started on free loopback ports in temp dirs and
//! killed on drop, and a tiny blocking HTTP client to query them.
//!
//! The servers are the Debian packages `prometheus` (with `promtool`) and
//! `victoria-metrics`; `scripts/test` installs them. Nothing here needs a
//! tokio runtime, so it works from plain and `#[tokio::test]` tests alike.

#![allow(dead_code)] // Each test module uses a different part of the harness.

pub mod http;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod specs;
pub mod victoria;

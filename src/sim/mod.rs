//! Simulation: everything tailor needs to run without a real cluster.
//!
//! - [`history`] writes the weeks of cAdvisor and kube-state-metrics series
//!   a real cluster would have left in Prometheus, so tests and demos can
//!   backfill a real Prometheus or VictoriaMetrics; [`fleet`] is the demo
//!   fleet `scripts/demo` uses.
//! - [`models`] are workload archetypes and how they respond to resources;
//!   [`cluster`] is a simulated cluster implementing the agent's ports;
//!   [`scenario`] and [`run`] load scenario files and run them, with
//!   [`builtin`] the default scenario `tailor demo` runs.
//! - [`compare`] scores tailor against VPA, KRR and a clairvoyant oracle on
//!   the models and on real traces (`tailor simulate --compare`).
//!
//! Nothing here sleeps or reads the wall clock: time is whatever the caller
//! says it is.

pub mod apiserver;
pub mod builtin;
pub mod cluster;
pub mod compare;
pub mod fleet;
pub mod history;
pub mod models;
pub mod run;
pub mod scenario;

//! Simulation: everything tailor needs to run without a real cluster.
//!
//! [`history`] writes the weeks of cAdvisor and kube-state-metrics series a
//! real cluster would have left in Prometheus, so tests and demos can backfill
//! a real Prometheus or VictoriaMetrics with usage whose distribution is known.
//! [`fleet`] is the demo fleet those demos use. Nothing here sleeps or reads
//! the wall clock: time is whatever the caller says it is.

pub mod fleet;
pub mod history;
pub mod models;

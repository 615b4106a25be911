//! tailor's one integration-test binary (one link on a 2-core CI; Cargo.toml
//! sets `autotests = false`): each module below is a group of tests, and
//! `support` is the harness they share.

mod support;

mod apiserver;
mod approve;
mod backtest;
mod compare;
mod discovery;
mod e2e;
mod faults;
mod harness;
mod kube_cluster;
mod notify;
mod recommend;
mod report_html;
mod simulations;
mod slo_source;

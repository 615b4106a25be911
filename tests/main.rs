//! tailor's one integration-test binary (one link on a 2-core CI): each
//! module below is a group of tests; `support` is the harness they share.

mod support;

// The harness' own tests: the servers hold what the generator wrote. The file
// sits under support/ because Cargo would build any other tests/*.rs as a
// test binary of its own (Cargo.toml has no `autotests = false`).
#[path = "support/harness.rs"]
mod harness;

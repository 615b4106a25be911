//! A real VictoriaMetrics (single-node) holding a generated history: started
//! empty on a free loopback port, fed through `/api/v1/import/prometheus` in
//! one streamed request, flushed, and checked until every series is visible.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::thread::sleep;
use std::time::{Duration, Instant};

use tailor::sim::history::{self, HistorySpec, WriteStats};
use tempfile::TempDir;

use super::http;
use super::process::{self, Server};

const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// After the flush, data shows up in searches within a second or two.
const VISIBLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug)]
pub struct Timings {
    pub start: Duration,
    /// Generating and sending the history (they overlap: it streams).
    pub import: Duration,
    /// Flushing and waiting until a search sees every series.
    pub visible: Duration,
}

pub struct VictoriaMetrics {
    // Fields drop in order: the server dies before its directory goes.
    server: Server,
    stats: WriteStats,
    timings: Timings,
    dir: TempDir,
}

impl VictoriaMetrics {
    /// Starts VictoriaMetrics and imports `spec`; panics with the reason (and
    /// the server's log) if anything fails.
    pub fn start_with_history(spec: &HistorySpec) -> VictoriaMetrics {
        process::require("victoria-metrics", "victoria-metrics");
        let dir = tempfile::Builder::new()
            .prefix("tailor-victoria-")
            .tempdir()
            .expect("creating a temp dir");
        let data = dir.path().join("data");

        let started = Instant::now();
        let server = Server::start(
            "victoria-metrics",
            dir.path(),
            READY_TIMEOUT,
            |port| {
                let mut cmd = Command::new("victoria-metrics");
                cmd.arg(format!("-storageDataPath={}", data.display()))
                    .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
                    .arg("-retentionPeriod=100y")
                    // Backfilled history must not meet answers cached
                    // before it arrived.
                    .arg("-search.disableCache")
                    .arg("-loggerLevel=WARN");
                cmd
            },
            |url| http::get(url, "/health").is_ok_and(|r| r.status == 200),
        );
        let start = started.elapsed();

        let started = Instant::now();
        let url = server.url();
        let mut stats = WriteStats::default();
        let response =
            http::post_streaming(&url, "/api/v1/import/prometheus", "text/plain", |out| {
                stats = history::write_prometheus_import(spec, out)?;
                Ok(())
            })
            .unwrap_or_else(|e| {
                panic!("importing into VictoriaMetrics: {e}\n{}", server.log_tail())
            });
        assert!(
            response.status == 204 || response.status == 200,
            "VictoriaMetrics refused the import: HTTP {}: {}\n{}",
            response.status,
            response.text(),
            server.log_tail()
        );
        let import = started.elapsed();

        let started = Instant::now();
        let flushed = http::get(&url, "/internal/force_flush").map(|r| r.status);
        assert!(
            matches!(flushed, Ok(200)),
            "VictoriaMetrics force_flush: {flushed:?}\n{}",
            server.log_tail()
        );
        wait_until_visible(&server, spec, stats.series);
        let timings = Timings {
            start,
            import,
            visible: started.elapsed(),
        };
        VictoriaMetrics {
            server,
            stats,
            timings,
            dir,
        }
    }

    /// One server per `name` for the whole test binary, started with
    /// `spec()` on first use, so tests can share weeks of history that take
    /// seconds to load. Never dropped: when the binary exits, the server's
    /// watchdog stops it and removes its directory.
    pub fn shared(name: &'static str, spec: fn() -> HistorySpec) -> &'static VictoriaMetrics {
        static SHARED: Mutex<BTreeMap<&'static str, &'static VictoriaMetrics>> =
            Mutex::new(BTreeMap::new());
        // A test that panicked while starting one leaves the map as it was.
        let mut all = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
        all.entry(name)
            .or_insert_with(|| Box::leak(Box::new(Self::start_with_history(&spec()))))
    }

    /// `http://127.0.0.1:<port>`, no trailing slash.
    pub fn url(&self) -> String {
        self.server.url()
    }

    /// What the generator wrote: the series and samples VictoriaMetrics holds.
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

fn wait_until_visible(server: &Server, spec: &HistorySpec, expected: usize) {
    let deadline = Instant::now() + VISIBLE_TIMEOUT;
    let url = server.url();
    loop {
        let seen = http::series(&url, r#"{__name__=~".+"}"#, spec.start, spec.end).len();
        if seen >= expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "VictoriaMetrics shows {seen} of {expected} imported series after {VISIBLE_TIMEOUT:?}\n{}",
            server.log_tail()
        );
        sleep(Duration::from_millis(200));
    }
}

//! A real Prometheus whose TSDB holds a generated history: the history is
//! written as OpenMetrics, turned into blocks by `promtool tsdb
//! create-blocks-from openmetrics`, and served by `prometheus` on a free
//! loopback port.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::process::Command;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use tailor::sim::history::{self, HistorySpec, WriteStats};
use tempfile::TempDir;

use super::http;
use super::process::{self, Server};

/// promtool reads the whole input once for its time range and once more per
/// block, so fewer, longer blocks backfill faster: 1458h (60¾ days, one of
/// Prometheus' block ranges, 2h × 3^k) puts weeks in one or two blocks. For 14
/// days: 380 s with the default 2h, 49 s with 24h, 11 s with 486h, 8.5 s here.
const MAX_BLOCK_DURATION: &str = "1458h";

/// Loading blocks is quick; the bound only turns a hang into a message.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the time of [`Prometheus::start_with_history`] went.
#[derive(Clone, Copy, Debug)]
pub struct Timings {
    pub write: Duration,
    pub backfill: Duration,
    pub start: Duration,
}

pub struct Prometheus {
    // Fields drop in order: the server dies before its directory goes.
    server: Server,
    stats: WriteStats,
    timings: Timings,
    dir: TempDir,
}

impl Prometheus {
    /// Backfills `spec` and starts Prometheus on it; panics with the reason
    /// (and Prometheus' log) if anything fails.
    pub fn start_with_history(spec: &HistorySpec) -> Prometheus {
        process::require("prometheus", "prometheus");
        process::require("promtool", "prometheus");
        let dir = tempfile::Builder::new()
            .prefix("tailor-prometheus-")
            .tempdir()
            .expect("creating a temp dir");
        let input = dir.path().join("history.om");

        let started = Instant::now();
        let stats = {
            let file = File::create(&input).expect("creating the OpenMetrics file");
            let mut out = BufWriter::with_capacity(1 << 20, file);
            history::write_openmetrics(spec, &mut out).expect("writing the OpenMetrics file")
        };
        let write = started.elapsed();
        Self::backfill_and_serve(dir, stats, write)
    }

    /// Backfills an OpenMetrics text (ending in `# EOF`) and starts
    /// Prometheus on it, for series the history generator does not write
    /// (HTTP SLIs, readiness); panics with the reason if anything fails.
    pub fn start_with_openmetrics(text: &str) -> Prometheus {
        process::require("prometheus", "prometheus");
        process::require("promtool", "prometheus");
        let dir = tempfile::Builder::new()
            .prefix("tailor-prometheus-")
            .tempdir()
            .expect("creating a temp dir");
        let started = Instant::now();
        std::fs::write(dir.path().join("history.om"), text).expect("writing the OpenMetrics file");
        let write = started.elapsed();
        Self::backfill_and_serve(dir, WriteStats::default(), write)
    }

    /// Turns `dir/history.om` into blocks and serves them.
    fn backfill_and_serve(dir: TempDir, stats: WriteStats, write: Duration) -> Prometheus {
        let input = dir.path().join("history.om");
        let tsdb = dir.path().join("tsdb");
        let config = dir.path().join("prometheus.yml");
        let started = Instant::now();
        process::run(
            "backfilling Prometheus",
            Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
                .arg(format!("--max-block-duration={MAX_BLOCK_DURATION}"))
                .arg(&input)
                .arg(&tsdb),
        );
        let backfill = started.elapsed();
        // The text is in the blocks now; don't keep gigabytes around.
        let _ = std::fs::remove_file(&input);

        std::fs::write(&config, "scrape_configs: []\n").expect("writing the Prometheus config");
        let started = Instant::now();
        let server = serve(dir.path(), &config, &tsdb);
        let timings = Timings {
            write,
            backfill,
            start: started.elapsed(),
        };
        Prometheus {
            server,
            stats,
            timings,
            dir,
        }
    }

    /// An empty Prometheus scraping `target` (`host:port`, path `/metrics`)
    /// every `interval_s` seconds: the live setup of the end-to-end test.
    pub fn start_scraping(target: &str, interval_s: u32) -> Prometheus {
        process::require("prometheus", "prometheus");
        let dir = tempfile::Builder::new()
            .prefix("tailor-prometheus-")
            .tempdir()
            .expect("creating a temp dir");
        let config = dir.path().join("prometheus.yml");
        let tsdb = dir.path().join("tsdb");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: {interval_s}s\n  evaluation_interval: {interval_s}s\n\
                 scrape_configs:\n  - job_name: cluster\n    static_configs:\n      - targets: [\"{target}\"]\n"
            ),
        )
        .expect("writing the Prometheus config");
        let started = Instant::now();
        let server = serve(dir.path(), &config, &tsdb);
        let timings = Timings {
            write: Duration::ZERO,
            backfill: Duration::ZERO,
            start: started.elapsed(),
        };
        Prometheus {
            server,
            stats: WriteStats::default(),
            timings,
            dir,
        }
    }

    /// One server per `name` for the whole test binary, started with
    /// `spec()` on first use, so tests can share weeks of history that take
    /// seconds to load. Never dropped: when the binary exits, the server's
    /// watchdog stops it and removes its directory.
    pub fn shared(name: &'static str, spec: fn() -> HistorySpec) -> &'static Prometheus {
        static SHARED: Mutex<BTreeMap<&'static str, &'static Prometheus>> =
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

    /// What the generator wrote: the series and samples Prometheus holds.
    pub fn stats(&self) -> WriteStats {
        self.stats
    }

    pub fn timings(&self) -> Timings {
        self.timings
    }

    /// The server's log so far (its last lines), for assertion messages.
    pub fn log_tail(&self) -> String {
        self.server.log_tail()
    }

    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// Starts `prometheus` with `config` on `tsdb` in `dir`, on a free port,
/// and waits until it is ready.
fn serve(dir: &std::path::Path, config: &std::path::Path, tsdb: &std::path::Path) -> Server {
    Server::start(
        "prometheus",
        dir,
        READY_TIMEOUT,
        |port| {
            let mut cmd = Command::new("prometheus");
            cmd.arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", tsdb.display()))
                .arg("--storage.tsdb.retention.time=100y")
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--web.enable-admin-api");
            cmd
        },
        |url| http::get(url, "/-/ready").is_ok_and(|r| r.status == 200),
    )
}

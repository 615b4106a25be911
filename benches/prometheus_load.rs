//! What tailor costs a real Prometheus, side by side with KRR's documented
//! query pattern (issue "prove it side by side").
//!
//! A real Prometheus (Debian `prometheus`) is backfilled with N pod
//! containers × D days of 1-minute cAdvisor and kube-state-metrics samples
//! (default 1,000 × 14), in 18-hour chunks so neither the text nor promtool
//! ever holds more than one chunk. Then, each on a freshly started
//! Prometheus over the same blocks, it measures:
//!
//! - **tailor, full run**: discovery and 14 days of usage (`scan`), what
//!   `tailor recommend` and every hourly refresh of `tailor run` do;
//! - **tailor run, steady-state tick**: the per-minute check for news
//!   (`UsageSource::urgent` over the last minute);
//! - **KRR pattern**: per workload `kube_replicaset_owner{…}[14d]`,
//!   `last_over_time(kube_pod_owner{…}[14d])`, `kube_pod_status_phase{…} == 1`,
//!   then per container `quantile_over_time(0.95, …[14d:75s])`,
//!   `max_over_time(…[14d:75s])` and two `count_over_time(…[14d:75s])`,
//!   50 pods per regex, 10 queries in flight (robusta-dev/krr,
//!   `prometheus_metrics_service.py` and `metrics/{cpu,memory}.py`);
//! - **tailor recommend** as its own process: the agent's resident memory
//!   and CPU for one full run.
//!
//! For each: queries, wall time, Prometheus CPU seconds (utime + stime from
//! `/proc/<pid>/stat`), Prometheus peak heap (`go_memstats_heap_inuse_bytes`
//! sampled every 100 ms) and peak RSS (`VmHWM`, reset before the phase),
//! samples touched (`stats=all`) and bytes returned.
//!
//! Run: `scripts/bench-prometheus-load` (or `cargo bench --bench
//! prometheus_load -- --containers 1000 --days 14 --dir DIR`). With `--dir`
//! the TSDB is kept and reused by the next run with the same size
//! (`--backfill-only` stops after the backfill; `--no-krr` leaves KRR's
//! pattern out); `--repeat 3` reports the median run of each phase (by
//! Prometheus CPU). Under
//! `cargo test` (no `--bench`) it does nothing: it takes tens of minutes.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tailor::config::Config;
use tailor::domain::{Resources, WorkloadKind};
use tailor::metrics::PromClient;
use tailor::metrics::source::PrometheusSource;
use tailor::ports::UsageSource;
use tailor::sim::fleet::{diurnal, noise};
use tailor::sim::history::{self, ContainerSpec, HistorySpec, NodeSpec, WorkloadSpec};
use tailor::units::{Bytes, MilliCores};

const DAY: i64 = 86_400;
/// Chunks line up with Prometheus' 18 h block range (2 h × 3²), which is
/// also the largest block a 15-day retention compacts to: one block per
/// chunk, nothing to compact afterwards. `--chunk-hours 6` (or 2) bounds
/// the text of large fleets; Prometheus then compacts once, which the
/// backfill waits for.
const DEFAULT_CHUNK_HOURS: i64 = 18;
const SCRAPE_S: i64 = 60;
const DEPLOYMENTS_PER_NAMESPACE: usize = 25;
const REPLICAS: u32 = 2;
/// KRR: `pods_batch_size` (metrics/base.py) and the executor's workers.
const KRR_PODS_PER_QUERY: usize = 50;
const KRR_CONCURRENCY: usize = 10;
/// KRR's `timeframe_duration` (1.25 minutes) as the subquery step.
const KRR_STEP: &str = "75s";

struct Args {
    containers: usize,
    days: i64,
    dir: Option<PathBuf>,
    repeat: usize,
    /// Backfill (or check the kept TSDB) and stop.
    backfill_only: bool,
    /// Leave out KRR's pattern (35,000 queries at 10,000 containers).
    no_krr: bool,
    chunk_s: i64,
}

fn parse_args() -> Option<Args> {
    let argv: Vec<String> = std::env::args().collect();
    if !argv.iter().any(|a| a == "--bench") {
        println!(
            "prometheus_load: skipped (tens of minutes; run scripts/bench-prometheus-load or \
             cargo bench --bench prometheus_load)"
        );
        return None;
    }
    let value = |flag: &str| {
        argv.iter()
            .position(|a| a == flag)
            .and_then(|i| argv.get(i + 1))
            .cloned()
    };
    let number = |flag: &str, default: usize| {
        value(flag).map_or(default, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{flag} {v:?} is not a whole number"))
        })
    };
    Some(Args {
        containers: number("--containers", 1000),
        days: number("--days", 14) as i64,
        dir: value("--dir").map(PathBuf::from),
        repeat: number("--repeat", 1).max(1),
        backfill_only: argv.iter().any(|a| a == "--backfill-only"),
        no_krr: argv.iter().any(|a| a == "--no-krr"),
        chunk_s: match number("--chunk-hours", DEFAULT_CHUNK_HOURS as usize) {
            h @ (2 | 6 | 18) => h as i64 * 3600,
            h => panic!("--chunk-hours {h}: write 2, 6 or 18 (a Prometheus block range)"),
        },
    })
}

/// `containers` pod containers: Deployments of two replicas, one container
/// each, 25 Deployments per namespace, spread over m5.2xlarge-like nodes.
fn fleet(containers: usize, start: i64, end: i64) -> HistorySpec {
    let deployments = containers.div_ceil(REPLICAS as usize);
    let mut workloads = Vec::with_capacity(deployments);
    for d in 0..deployments {
        let namespace = format!("ns-{:03}", d / DEPLOYMENTS_PER_NAMESPACE);
        let salt = d as u64;
        let low = 0.02 + 0.2 * noise(0, salt);
        let base_memory = (150.0 + 600.0 * noise(60, salt)) * 1_048_576.0;
        let memory: history::UsageFn = Arc::new(move |t, replica| {
            base_memory * (1.0 + 0.1 * noise(t, salt.wrapping_add(u64::from(replica) << 32)))
        });
        let app = ContainerSpec::new(
            "app",
            Resources {
                cpu_request: Some(MilliCores(500)),
                cpu_limit: None,
                memory_request: Some(Bytes::mib(1024)),
                memory_limit: Some(Bytes::mib(1024)),
            },
            diurnal(low, low * 4.0, (d % 24) as f64, 0.2, salt),
            memory,
        );
        workloads.push(WorkloadSpec::new(
            &namespace,
            WorkloadKind::Deployment,
            &format!("svc-{:04}", d),
            REPLICAS,
            vec![app],
        ));
    }
    let nodes = (0..containers.div_ceil(30).max(1))
        .map(|i| NodeSpec {
            name: format!("node-{i:03}"),
            cpu: MilliCores(8000),
            memory: Bytes::gib(32),
        })
        .collect();
    HistorySpec {
        start,
        end,
        scrape_interval_s: SCRAPE_S,
        workloads,
        nodes,
    }
}

/// Passes through only the sample lines stamped in `[from, to)` (and the
/// `# TYPE` lines); drops `# EOF`, which the caller writes once at the end.
struct TimeFilter<W: Write> {
    out: W,
    from: i64,
    to: i64,
    partial: Vec<u8>,
    kept: u64,
}

impl<W: Write> TimeFilter<W> {
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        let keep = if line.starts_with(b"#") {
            line != b"# EOF"
        } else {
            let t = line
                .iter()
                .rposition(|&b| b == b' ')
                .and_then(|i| std::str::from_utf8(&line[i + 1..]).ok())
                .and_then(|s| s.parse::<i64>().ok());
            let keep = t.is_some_and(|t| t >= self.from && t < self.to);
            self.kept += u64::from(keep);
            keep
        };
        if keep {
            self.out.write_all(line)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }
}

impl<W: Write> Write for TimeFilter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&rest[..i])?;
            } else {
                self.partial.extend_from_slice(&rest[..i]);
                let line = std::mem::take(&mut self.partial);
                self.line(&line)?;
            }
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// `kube_pod_status_phase{phase="Running"}` for every pod (the history
/// generator does not write it; KRR's pod listing reads it).
fn write_phase(spec: &HistorySpec, from: i64, to: i64, out: &mut impl Write) -> io::Result<u64> {
    writeln!(out, "# TYPE kube_pod_status_phase gauge")?;
    let mut samples = 0;
    for w in &spec.workloads {
        for pod in history::pods(w, spec.start, spec.end) {
            let first = from.max(pod.start);
            let first = spec.start + (first - spec.start + SCRAPE_S - 1) / SCRAPE_S * SCRAPE_S;
            let mut t = first;
            while t < to.min(pod.end) {
                writeln!(
                    out,
                    "kube_pod_status_phase{{namespace=\"{}\",pod=\"{}\",uid=\"{}\",phase=\"Running\",\
                     job=\"kube-state-metrics\",instance=\"kube-state-metrics:8080\"}} 1 {t}",
                    w.namespace, pod.name, pod.uid
                )?;
                samples += 1;
                t += SCRAPE_S;
            }
        }
    }
    Ok(samples)
}

fn run(what: &str, cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot start {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes and imports the history chunk by chunk; returns samples written.
fn backfill(spec: &HistorySpec, work: &Path, tsdb: &Path, chunk_s: i64) -> u64 {
    let mut total = 0u64;
    let mut from = spec.start - spec.start.rem_euclid(chunk_s);
    let chunks = (spec.end - from + chunk_s - 1) / chunk_s;
    let started = Instant::now();
    for k in 0..chunks {
        let to = from + chunk_s;
        let input = work.join("chunk.om");
        let mut part = spec.clone();
        part.end = to.min(spec.end);
        {
            let file = File::create(&input).expect("create chunk file");
            let mut filter = TimeFilter {
                out: BufWriter::with_capacity(1 << 20, file),
                from: from.max(spec.start),
                to,
                partial: Vec::new(),
                kept: 0,
            };
            history::write_openmetrics(&part, &mut filter).expect("write history");
            total += filter.kept;
            total += write_phase(&part, from.max(spec.start), to, &mut filter.out).expect("phase");
            filter.out.write_all(b"# EOF\n").expect("write EOF");
            filter.out.flush().expect("flush chunk");
        }
        run(
            "promtool",
            Command::new("promtool")
                .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
                .arg(format!("--max-block-duration={}h", chunk_s / 3600))
                .arg(&input)
                .arg(tsdb),
        );
        let _ = std::fs::remove_file(&input);
        eprintln!(
            "  chunk {}/{chunks}: {total} samples so far, {:.0} s",
            k + 1,
            started.elapsed().as_secs_f64()
        );
        from = to;
    }
    total
}

/// A Prometheus we started; killed (by its pid) on drop.
struct Prometheus {
    child: Child,
    url: String,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

async fn start_prometheus(dir: &Path, http: &reqwest::Client) -> Prometheus {
    let config = dir.join("prometheus.yml");
    std::fs::write(&config, "scrape_configs: []\n").expect("write config");
    let port = free_port();
    let log = File::create(dir.join("prometheus.log")).expect("log file");
    let child = Command::new("prometheus")
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("tsdb").display()
        ))
        .arg("--storage.tsdb.retention.time=15d")
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus (apt-get install prometheus)");
    let p = Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let ready = http
            .get(format!("{}/-/ready", p.url))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "prometheus never got ready");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Let start-up work (block loading, the first head compaction check) settle.
    tokio::time::sleep(Duration::from_secs(5)).await;
    p
}

/// Starts Prometheus on the new blocks once and waits until it has no more
/// compaction to do (none with 18-hour chunks), so no measured phase pays
/// for it.
async fn settle(dir: &Path) {
    let http = reqwest::Client::new();
    let p = start_prometheus(dir, &http).await;
    let compactions = |text: String| {
        text.lines()
            .find(|l| l.starts_with("prometheus_tsdb_compactions_total "))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let mut last = -1.0;
    // The compactor first looks a minute after start, then every minute.
    tokio::time::sleep(Duration::from_secs(70)).await;
    loop {
        let text = match http.get(format!("{}/metrics", p.url)).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let now = compactions(text);
        if now == last {
            break;
        }
        eprintln!("  waiting for Prometheus to compact the backfilled blocks ({now} so far)");
        last = now;
        tokio::time::sleep(Duration::from_secs(70)).await;
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// utime + stime of a process, in seconds.
fn cpu_seconds(pid: u32, ticks: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // Fields after the command (which may hold spaces) start at field 3.
    let after = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let utime: f64 = fields[11].parse().expect("utime");
    let stime: f64 = fields[12].parse().expect("stime");
    (utime + stime) / ticks
}

fn status_kib(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Samples Prometheus' Go heap every 100 ms until stopped; keeps the peak.
struct HeapSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

async fn heap_inuse(http: &reqwest::Client, url: &str) -> Option<u64> {
    let text = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with("go_memstats_heap_inuse_bytes "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map(|v| v as u64)
}

impl HeapSampler {
    fn start(http: reqwest::Client, url: String) -> HeapSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(0));
        let (s, p) = (stop.clone(), peak.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                if let Some(v) = heap_inuse(&http, &url).await {
                    p.fetch_max(v, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        HeapSampler { stop, peak, task }
    }

    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        self.peak.load(Ordering::Relaxed)
    }
}

/// What one phase cost.
#[derive(Clone, Debug, Default, serde::Serialize)]
struct Cost {
    queries: u64,
    wall_s: f64,
    prometheus_cpu_s: f64,
    heap_before_mib: f64,
    peak_heap_mib: f64,
    peak_rss_mib: f64,
    samples_touched: u64,
    response_mib: f64,
    /// The agent process (tailor recommend), when measured.
    agent_cpu_s: Option<f64>,
    agent_max_rss_mib: Option<f64>,
}

const MIB: f64 = 1_048_576.0;

struct Measure<'a> {
    prometheus: &'a Prometheus,
    http: &'a reqwest::Client,
    ticks: f64,
}

impl Measure<'_> {
    /// Runs `phase` against the Prometheus and returns its cost; `phase`
    /// returns (queries, samples touched, bytes).
    async fn cost<F, Fut>(&self, phase: F) -> Cost
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = (u64, u64, u64, Option<(f64, f64)>)>,
    {
        let pid = self.prometheus.child.id();
        let heap_before = heap_inuse(self.http, &self.prometheus.url)
            .await
            .unwrap_or(0);
        let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
        let sampler = HeapSampler::start(self.http.clone(), self.prometheus.url.clone());
        let cpu_before = cpu_seconds(pid, self.ticks);
        let started = Instant::now();
        let (queries, samples, bytes, agent) = phase().await;
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(pid, self.ticks) - cpu_before;
        let peak_heap = sampler.finish().await;
        Cost {
            queries,
            wall_s: wall,
            prometheus_cpu_s: cpu,
            heap_before_mib: heap_before as f64 / MIB,
            peak_heap_mib: peak_heap.max(heap_before) as f64 / MIB,
            peak_rss_mib: status_kib(pid, "VmHWM:") as f64 / 1024.0,
            samples_touched: samples,
            response_mib: bytes as f64 / MIB,
            agent_cpu_s: agent.map(|a| a.0),
            agent_max_rss_mib: agent.map(|a| a.1).filter(|rss| rss.is_finite()),
        }
    }
}

fn tailor_config(url: &str) -> Config {
    let mut config = Config::default();
    config.prometheus.url = url.to_string();
    config.prometheus.timeout = Duration::from_secs(600);
    config
}

fn client(url: &str) -> PromClient {
    let mut config = tailor_config(url).prometheus;
    config.max_queries_per_second = 100_000;
    PromClient::new(&config)
        .expect("client")
        .with_backend_stats()
}

async fn tailor_full(url: &str, end: i64) -> (u64, u64, u64, Option<(f64, f64)>) {
    let c = client(url);
    let outcome = tailor::scan::scan_with(&c, &tailor_config(url), end, &|_, _| {})
        .await
        .expect("tailor scan");
    assert!(
        !outcome.recommendations.is_empty(),
        "tailor found no containers"
    );
    let n = c.counts();
    (n.queries, n.samples_touched, n.response_bytes, None)
}

async fn tailor_tick(url: &str, end: i64) -> (u64, u64, u64, Option<(f64, f64)>) {
    let c = client(url);
    let source = PrometheusSource::new(c.clone(), tailor_config(url)).expect("source");
    let urgent = source.urgent(end - 60, end).await.expect("urgent");
    assert!(urgent.is_empty(), "no news expected in the steady state");
    let n = c.counts();
    (n.queries, n.samples_touched, n.response_bytes, None)
}

/// A daemon's source that has already read the whole window up to an
/// hour before `end` (not measured).
async fn tailor_before_refresh(url: &str, end: i64) -> (PromClient, PrometheusSource) {
    let c = client(url);
    let source = PrometheusSource::new(c.clone(), tailor_config(url)).expect("source");
    source
        .recommendations(end - 3600)
        .await
        .expect("whole-window read");
    (c, source)
}

/// The daemon's hourly refresh: only the hour since the previous one.
async fn tailor_refresh(
    (c, source): (PromClient, PrometheusSource),
    end: i64,
) -> (u64, u64, u64, Option<(f64, f64)>) {
    let before = c.counts();
    // This process's CPU: the refresh is all it does meanwhile, but for
    // the heap sampler's requests every 100 ms. Its RSS holds the fleet
    // spec too, so none is reported.
    let (me, ticks) = (std::process::id(), clock_ticks());
    let cpu_before = cpu_seconds(me, ticks);
    let all = source.recommendations(end).await.expect("refresh");
    let cpu = cpu_seconds(me, ticks) - cpu_before;
    assert!(!all.is_empty(), "tailor found no containers");
    let n = c.counts();
    (
        n.queries - before.queries,
        n.samples_touched - before.samples_touched,
        n.response_bytes - before.response_bytes,
        Some((cpu, f64::NAN)),
    )
}

/// `tailor recommend` as its own process, timed by GNU time, reading
/// `history` (e.g. `14d`).
async fn tailor_process(
    url: &str,
    end: i64,
    work: &Path,
    history: &str,
) -> (u64, u64, u64, Option<(f64, f64)>) {
    let times = work.join("time.txt");
    let at = chrono::DateTime::from_timestamp(end, 0)
        .expect("end")
        .to_rfc3339();
    // A shorter window needs a policy that allows it (min_history ≤ window).
    let config = work.join(format!("tailor-{history}.yaml"));
    std::fs::write(
        &config,
        format!("history:\n  window: {history}\ndefault_policy:\n  min_history: {history}\n"),
    )
    .expect("write the tailor config");
    let mut cmd = Command::new("/usr/bin/time");
    cmd.arg("-f")
        .arg("%U %S %M")
        .arg("-o")
        .arg(&times)
        .arg(env!("CARGO_BIN_EXE_tailor"))
        .args(["recommend", "--no-progress", "-o", "json"])
        .arg("--config")
        .arg(&config)
        .args(["--prometheus-url", url, "--at", &at]);
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .expect("join")
        .expect("run tailor recommend (needs /usr/bin/time)");
    assert!(
        out.status.success(),
        "tailor recommend: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let queries = doc["queries"].as_u64().unwrap_or(0);
    let text = std::fs::read_to_string(&times).expect("time output");
    let v: Vec<f64> = text
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    let (user, sys, max_rss_kib) = (v[0], v[1], v[2]);
    (queries, 0, 0, Some((user + sys, max_rss_kib / 1024.0)))
}

/// KRR's queries for the fleet, 10 in flight.
async fn krr(url: &str, spec: &HistorySpec, end: i64) -> (u64, u64, u64, Option<(f64, f64)>) {
    let c = client(url);
    let days = (spec.end - spec.start) / DAY;
    let period = format!("{days}d");
    let mut queries: Vec<String> = Vec::new();
    for w in &spec.workloads {
        let ns = &w.namespace;
        let rs = history::replicaset_name(w).expect("a Deployment");
        let pods: Vec<String> = history::pods(w, spec.start, spec.end)
            .into_iter()
            .map(|p| p.name)
            .collect();
        queries.push(format!(
            "kube_replicaset_owner{{owner_name=\"{}\",owner_kind=\"Deployment\",namespace=\"{ns}\"}}[{period}]",
            w.name
        ));
        queries.push(format!(
            "last_over_time(kube_pod_owner{{owner_name=~\"{rs}\",owner_kind=\"ReplicaSet\",namespace=\"{ns}\"}}[{period}])"
        ));
        queries.push(format!(
            "kube_pod_status_phase{{phase=\"Running\",pod=~\"{}\",namespace=\"{ns}\"}} == 1",
            pods.join("|")
        ));
        for container in &w.containers {
            for batch in pods.chunks(KRR_PODS_PER_QUERY) {
                let sel = format!(
                    "namespace=\"{ns}\",pod=~\"{}\",container=\"{}\"",
                    batch.join("|"),
                    container.name
                );
                let range = format!("[{period}:{KRR_STEP}]");
                queries.push(format!(
                    "quantile_over_time(0.95, max(rate(container_cpu_usage_seconds_total{{{sel}}}[{KRR_STEP}])) by (container, pod, job){range})"
                ));
                queries.push(format!(
                    "max_over_time(max(container_memory_working_set_bytes{{{sel}}}) by (container, pod, job){range})"
                ));
                queries.push(format!(
                    "count_over_time(max(container_cpu_usage_seconds_total{{{sel}}}) by (container, pod, job){range})"
                ));
                queries.push(format!(
                    "count_over_time(max(container_memory_working_set_bytes{{{sel}}}) by (container, pod, job){range})"
                ));
            }
        }
    }
    let semaphore = Arc::new(tokio::sync::Semaphore::new(KRR_CONCURRENCY));
    let mut tasks = tokio::task::JoinSet::new();
    for q in queries {
        let (c, semaphore) = (c.clone(), semaphore.clone());
        tasks.spawn(async move {
            let _permit = semaphore.acquire().await.expect("semaphore");
            let mut series = 0u64;
            c.instant(&q, end, |_, _| series += 1)
                .await
                .unwrap_or_else(|e| panic!("{q}: {e}"));
            series
        });
    }
    let mut series = 0;
    while let Some(done) = tasks.join_next().await {
        series += done.expect("query task");
    }
    assert!(series > 0, "KRR's queries found nothing");
    let n = c.counts();
    (n.queries, n.samples_touched, n.response_bytes, None)
}

fn median(mut costs: Vec<Cost>) -> Cost {
    costs.sort_by(|a, b| a.prometheus_cpu_s.total_cmp(&b.prometheus_cpu_s));
    costs[costs.len() / 2].clone()
}

fn print_table(rows: &[(String, Cost)]) {
    println!(
        "| phase | queries | wall s | Prometheus CPU s | heap before → peak MiB | peak RSS MiB | samples touched | response MiB | agent CPU s | agent max RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("—".to_string(), |v| format!("{v:.digits$}"));
    for (name, c) in rows {
        println!(
            "| {name} | {} | {:.2} | {:.2} | {:.0} → {:.0} | {:.0} | {} | {:.1} | {} | {} |",
            c.queries,
            c.wall_s,
            c.prometheus_cpu_s,
            c.heap_before_mib,
            c.peak_heap_mib,
            c.peak_rss_mib,
            if c.samples_touched > 0 {
                format!("{:.1} M", c.samples_touched as f64 / 1e6)
            } else {
                "—".into()
            },
            c.response_mib,
            opt(c.agent_cpu_s, 2),
            opt(c.agent_max_rss_mib, 0),
        );
    }
}

fn main() {
    let Some(args) = parse_args() else { return };
    for binary in ["prometheus", "promtool", "/usr/bin/time"] {
        let found = Command::new(binary).arg("--version").output().is_ok();
        assert!(
            found,
            "{binary} is missing: apt-get install prometheus time (scripts/bench-prometheus-load does)"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(bench(args));
}

async fn bench(args: Args) {
    let temp;
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => {
            temp = tempfile::tempdir().expect("temp dir");
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&dir).expect("create the work dir");
    let meta_path = dir.join("bench-meta.json");
    let key = format!("{} containers × {} days", args.containers, args.days);
    let meta: Option<serde_json::Value> = std::fs::read(&meta_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    let end = match meta.filter(|m| m["size"] == key.as_str()) {
        Some(m) => {
            let end = m["end"].as_i64().expect("end");
            eprintln!("reusing the TSDB in {} ({key})", dir.display());
            end
        }
        None => {
            let now = chrono::Utc::now().timestamp();
            let end = now - now.rem_euclid(3600);
            let spec = fleet(args.containers, end - args.days * DAY, end);
            let tsdb = dir.join("tsdb");
            let _ = std::fs::remove_dir_all(&tsdb);
            std::fs::create_dir_all(&tsdb).expect("tsdb dir");
            eprintln!("backfilling {key} into {}", tsdb.display());
            let started = Instant::now();
            let samples = backfill(&spec, &dir, &tsdb, args.chunk_s);
            let took = started.elapsed().as_secs_f64();
            eprintln!("backfilled {samples} samples in {took:.0} s");
            settle(&dir).await;
            std::fs::write(
                &meta_path,
                serde_json::json!({ "size": key, "end": end, "samples": samples, "backfill_s": took })
                    .to_string(),
            )
            .expect("write meta");
            end
        }
    };
    if args.backfill_only {
        return;
    }
    let spec = fleet(args.containers, end - args.days * DAY, end);
    let http = reqwest::Client::new();
    let ticks = clock_ticks();

    // Warm the page cache once, so no phase pays for the first disk read.
    {
        let p = start_prometheus(&dir, &http).await;
        tailor_full(&p.url, end).await;
        if !args.no_krr {
            krr(&p.url, &spec, end).await;
        }
    }

    #[derive(Clone, Copy)]
    enum Phase {
        Full,
        Refresh,
        Tick,
        Krr,
        Process,
        ProcessOneDay,
    }
    let phases = [
        (
            "tailor, full 14-day run (recommend; the first refresh of tailor run)".to_string(),
            Phase::Full,
        ),
        (
            "tailor run, hourly refresh (the hour since the previous one)".to_string(),
            Phase::Refresh,
        ),
        (
            "tailor run, steady-state tick (news of the last minute)".to_string(),
            Phase::Tick,
        ),
        (
            format!(
                "KRR pattern ({KRR_PODS_PER_QUERY} pods per regex, {KRR_CONCURRENCY} in flight)"
            ),
            Phase::Krr,
        ),
        (
            "tailor recommend as a process, 14 days (agent footprint)".to_string(),
            Phase::Process,
        ),
        (
            "tailor recommend as a process, --history 1d".to_string(),
            Phase::ProcessOneDay,
        ),
    ];
    let mut rows = Vec::new();
    for (name, phase) in phases {
        if args.no_krr && matches!(phase, Phase::Krr) {
            continue;
        }
        let mut costs = Vec::new();
        for _ in 0..args.repeat {
            let p = start_prometheus(&dir, &http).await;
            let m = Measure {
                prometheus: &p,
                http: &http,
                ticks,
            };
            let url = p.url.as_str();
            let mut prepared = match phase {
                Phase::Refresh => Some(tailor_before_refresh(url, end).await),
                _ => None,
            };
            let cost = m
                .cost(|| async {
                    match phase {
                        Phase::Full => tailor_full(url, end).await,
                        Phase::Refresh => {
                            tailor_refresh(prepared.take().expect("prepared"), end).await
                        }
                        Phase::Tick => tailor_tick(url, end).await,
                        Phase::Krr => krr(url, &spec, end).await,
                        Phase::Process => tailor_process(url, end, &dir, "14d").await,
                        Phase::ProcessOneDay => tailor_process(url, end, &dir, "1d").await,
                    }
                })
                .await;
            costs.push(cost);
        }
        let cost = median(costs);
        eprintln!("  {name}: {cost:?}");
        rows.push((name, cost));
    }

    println!();
    println!(
        "Prometheus load: {key} of 1-minute samples, {} workloads, {} series-days",
        spec.workloads.len(),
        args.containers as i64 * args.days
    );
    print_table(&rows);
    let results: BTreeMap<&str, &Cost> = rows.iter().map(|(n, c)| (n.as_str(), c)).collect();
    let out = dir.join("results.json");
    std::fs::write(&out, serde_json::to_string_pretty(&results).expect("json"))
        .expect("write results");
    eprintln!("results in {}", out.display());
}

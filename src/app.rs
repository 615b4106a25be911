//! Wiring: the command line, logging, the runtime, and the calls into the
//! library. `main.rs` only calls [`main`]; no decision is made here.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand};

use crate::config::{CliOverrides, Config, duration_text};
use crate::report::{self, Format, PricingSummary, RenderOptions, Report, SkippedSeries};
use crate::scan;

/// tailor: right-size Kubernetes CPU and memory from Prometheus usage.
#[derive(Debug, Parser)]
#[command(name = "tailor", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Recommend requests and limits for every workload (reads Prometheus only).
    Recommend(RecommendArgs),
    /// The FinOps review: recommendations with dollars by namespace and team,
    /// node-pool prices, risks and what to approve (`-o html`: one
    /// self-contained page; see docs/report.md).
    Report(ReportArgs),
    /// Recommend as of --at from the history before it, then replay the
    /// horizon after it: would-be OOM kills, CPU above request and limit,
    /// dollars saved (see docs/backtest.md).
    Backtest(BacktestArgs),
    /// Run the closed loop on the built-in simulated cluster (default scenario).
    Demo(DemoArgs),
    /// Run a simulation scenario file (see simulations/).
    Simulate(SimulateArgs),
    /// Run the agent in the cluster: leader election, a tick every minute,
    /// /healthz /readyz /metrics (see docs/daemon.md).
    Run(RunArgs),
    /// Approve the change tailor proposes for a workload (NAMESPACE/WORKLOAD).
    Approve(ApproveArgs),
    /// Put back the last-known-good resources of one workload, or of all.
    Revert(RevertArgs),
    /// Print the Recommendation CustomResourceDefinition as YAML.
    Crd,
    /// Notifications (Slack, webhook, Teams; see docs/notifications.md).
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Work with config files.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Developer tools (synthetic history for demos and tests).
    #[command(subcommand, hide = true)]
    Dev(DevCommand),
}

#[derive(Debug, Args)]
pub struct RecommendArgs {
    /// Config file (YAML); every key has a default.
    #[arg(long, short = 'c', env = "TAILOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Prometheus-compatible API root (overrides prometheus.url).
    #[arg(long, env = "TAILOR_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Namespace regex to include (repeatable; overrides selection.namespaces).
    #[arg(long = "namespace", short = 'n')]
    pub namespaces: Vec<String>,
    /// Pod label selector, e.g. `app=web,tier!=db` (overrides selection.selector).
    #[arg(long)]
    pub selector: Option<String>,
    /// History window, e.g. 14d (overrides history.window).
    #[arg(long, value_parser = parse_duration)]
    pub history: Option<Duration>,
    /// Evaluate as of this RFC 3339 instant, using only history before it.
    #[arg(long, value_parser = parse_instant)]
    pub at: Option<DateTime<Utc>>,
    /// Output format.
    #[arg(long, short = 'o', default_value = "table")]
    pub format: Format,
    /// Write the output to this file instead of stdout.
    #[arg(long)]
    pub output: Option<PathBuf>,
    /// Never draw a progress bar.
    #[arg(long)]
    pub no_progress: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    #[command(flatten)]
    pub common: RecommendArgs,
    /// With -o html: also backtest the recommendations made this long
    /// before --at over the time since, e.g. 14d (see docs/backtest.md).
    #[arg(long, value_parser = parse_duration)]
    pub backtest: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct BacktestArgs {
    #[command(flatten)]
    pub common: RecommendArgs,
    /// Length of the replay after --at (default --at: now minus this).
    #[arg(long, value_parser = parse_duration, default_value = "14d")]
    pub horizon: Duration,
    /// Step of the replay's range queries (default: history.resolution).
    #[arg(long, value_parser = parse_duration)]
    pub step: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Config file (YAML); every key has a default.
    #[arg(long, short = 'c', env = "TAILOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// Kubeconfig file (default: the in-cluster service account, else
    /// $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "TAILOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// Prometheus-compatible API root (overrides prometheus.url).
    #[arg(long, env = "TAILOR_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// One tick (if this replica leads), then exit; no HTTP server.
    #[arg(long)]
    pub once: bool,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// NAMESPACE/WORKLOAD, or NAMESPACE/KIND/NAME when the name is ambiguous.
    pub workload: String,
    /// Kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "TAILOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RevertArgs {
    /// NAMESPACE/KIND/NAME, e.g. shop/deployment/web.
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub workload: Option<String>,
    /// Every workload with a tailor.dev/last-known-good annotation.
    #[arg(long)]
    pub all: bool,
    /// Kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config).
    #[arg(long, env = "TAILOR_KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the simulation (same seed, same numbers).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output format.
    #[arg(long, short = 'o', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Scenario file (YAML); optional with --traces.
    #[arg(required_unless_present = "traces")]
    pub file: Option<PathBuf>,
    /// Seed of the simulation (default: the scenario's).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Output format.
    #[arg(long, short = 'o', default_value = "table", value_parser = ["table", "json"])]
    pub format: String,
    /// Compare recommenders side by side instead (vpa, krr, tailor):
    /// trained on the scenario's history, scored on its duration, against
    /// a clairvoyant oracle (see docs/benchmarks.md).
    #[arg(long, value_name = "LIST")]
    pub compare: Option<String>,
    /// With --compare: one workload per vm-NNN.csv.gz of this folder (the
    /// Bitbrains traces) instead of the scenario's fleet; 14 days of
    /// training and 14 of evaluation unless a scenario file says otherwise.
    #[arg(long, value_name = "DIR", requires = "compare")]
    pub traces: Option<PathBuf>,
    /// With --compare: also write the tables as CSV files into this folder.
    #[arg(long, value_name = "DIR", requires = "compare")]
    pub csv: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a sample of each notification to the configured sinks, or to
    /// the ones given by flags; exit 1 if any was not delivered.
    Test(NotifyTestArgs),
}

#[derive(Debug, Args)]
pub struct NotifyTestArgs {
    /// Config file (YAML): its notifications.sinks, links and delivery.
    #[arg(long, short = 'c', env = "TAILOR_CONFIG")]
    pub config: Option<PathBuf>,
    /// A generic webhook receiver (needs --webhook-secret-file).
    #[arg(long)]
    pub webhook_url: Option<String>,
    /// File holding the webhook's HMAC-SHA256 signing secret.
    #[arg(long, requires = "webhook_url")]
    pub webhook_secret_file: Option<PathBuf>,
    /// A Slack incoming webhook URL.
    #[arg(long)]
    pub slack_url: Option<String>,
    /// A Microsoft Teams workflow webhook URL.
    #[arg(long)]
    pub teams_url: Option<String>,
    /// Give up on undelivered samples after this long.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub wait: Duration,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file; names the exact key and the fix on error.
    Check { file: PathBuf },
    /// Print the default configuration as YAML.
    Default,
}

#[derive(Debug, Subcommand)]
pub enum DevCommand {
    /// Write the demo fleet's synthetic history as OpenMetrics (for promtool).
    WriteHistory {
        /// Output file.
        #[arg(long)]
        out: PathBuf,
        /// Days of history ending at --end.
        #[arg(long, default_value_t = 14)]
        days: i64,
        /// Last instant of the history (RFC 3339); default: now, rounded to the hour.
        #[arg(long, value_parser = parse_instant)]
        end: Option<DateTime<Utc>>,
    },
    /// Serve the Kubernetes API test server with a cluster file until Ctrl-C
    /// (a local trial of `tailor run`; see docs/testing.md).
    Apiserver {
        /// Cluster file (e.g. simulations/e2e/cluster.yaml).
        #[arg(long, default_value = "simulations/e2e/cluster.yaml")]
        cluster: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:6443")]
        listen: std::net::SocketAddr,
        /// Write a kubeconfig for the server here.
        #[arg(long)]
        kubeconfig: Option<PathBuf>,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    duration_text::parse(text)
}

fn parse_instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{text:?} is not an RFC 3339 instant ({e}); write it like 2026-11-01T00:00:00Z")
        })
}

/// Runs the command line; the exit code is 0 on success, 1 when the work
/// failed, 2 when the input (flags, config) was wrong.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tailor: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        // `tailor … | head` closing the pipe early is not a failure.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tailor: error: {}", one_line(&e));
            ExitCode::from(1)
        }
    }
}

fn one_line(e: &anyhow::Error) -> String {
    e.chain()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TAILOR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Recommend(args) => recommend(args).await,
        Command::Report(args) => review(args).await,
        Command::Backtest(args) => backtest(args).await,
        Command::Demo(args) => {
            let scenario = crate::sim::builtin::default_scenario()?;
            let models = crate::sim::builtin::models()?;
            simulate(&scenario, &models, args.seed, &args.format)
        }
        Command::Simulate(args) => {
            let scenario = match &args.file {
                Some(file) => match crate::sim::scenario::Scenario::load(file) {
                    Ok(s) => Some((s, file.clone())),
                    Err(e) => {
                        eprintln!("tailor: error: {e}");
                        return Ok(ExitCode::from(2));
                    }
                },
                None => None,
            };
            if let Some(list) = &args.compare {
                return compare(&args, list, scenario);
            }
            let Some((scenario, file)) = scenario else {
                bail!("a scenario file is needed without --compare");
            };
            let models = crate::sim::run::load_scenario_models(&scenario, &file)?;
            simulate(&scenario, &models, args.seed, &args.format)
        }
        Command::Run(args) => run_daemon(args).await,
        Command::Approve(args) => approve(args).await,
        Command::Revert(args) => revert(args).await,
        Command::Crd => {
            use kube::CustomResourceExt;
            let crd = crate::cluster::crd::Recommendation::crd();
            print!(
                "{}",
                serde_yaml_ng::to_string(&crd).context("rendering the CRD")?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Notify(NotifyCommand::Test(args)) => notify_test(args).await,
        Command::Config(ConfigCommand::Check { file }) => Ok(config_check(&file)),
        Command::Config(ConfigCommand::Default) => {
            let text = serde_yaml_ng::to_string(&Config::default())
                .context("rendering the default config")?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev(DevCommand::Apiserver {
            cluster,
            listen,
            kubeconfig,
        }) => {
            let config = crate::sim::apiserver::load_cluster(&cluster)
                .with_context(|| format!("loading {}", cluster.display()))?;
            if let Some(path) = &kubeconfig {
                std::fs::write(
                    path,
                    crate::sim::apiserver::kubeconfig(&format!("http://{listen}")),
                )
                .with_context(|| format!("writing {}", path.display()))?;
                eprintln!("kubeconfig written to {}", path.display());
            }
            eprintln!(
                "Kubernetes API test server on http://{listen} (metrics at /metrics); Ctrl-C stops it"
            );
            tokio::select! {
                served = crate::sim::apiserver::serve_forever(config, listen) => served?,
                _ = crate::daemon::shutdown_signal() => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Dev(DevCommand::WriteHistory { out, days, end }) => {
            let end = end.unwrap_or_else(Utc::now).timestamp();
            let end = end - end.rem_euclid(3600);
            let spec = crate::sim::fleet::demo_fleet(end - days * 86_400, end);
            let file = std::fs::File::create(&out)
                .with_context(|| format!("creating {}", out.display()))?;
            let mut writer = std::io::BufWriter::new(file);
            let stats = crate::sim::history::write_openmetrics(&spec, &mut writer)
                .and_then(|s| writer.flush().map(|()| s))
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!(
                "wrote {} series, {} samples to {} (history ends {end})",
                stats.series,
                stats.samples,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A progress bar on stderr, only when it is a terminal and `wanted`.
fn progress_bar(wanted: bool, template: &str) -> Option<indicatif::ProgressBar> {
    (wanted && std::io::stderr().is_terminal()).then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template(template)
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    })
}

fn advance(bar: &Option<indicatif::ProgressBar>, done: u64, total: u64) {
    if let Some(bar) = bar {
        bar.set_length(total);
        bar.set_position(done);
    }
}

/// Runs a scenario with a progress bar; exit 1 when expectations fail.
fn simulate(
    scenario: &crate::sim::scenario::Scenario,
    models: &std::collections::BTreeMap<String, crate::sim::models::ModelSpec>,
    seed: Option<u64>,
    format: &str,
) -> anyhow::Result<ExitCode> {
    let bar = progress_bar(true, "{spinner} simulating {bar:30} {percent}% {elapsed}");
    let progress = |done: u64, total: u64| advance(&bar, done, total);
    let seed = seed.unwrap_or(scenario.seed);
    let report = crate::sim::run::run(scenario, models, seed, &progress)?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let failures = crate::sim::run::check(scenario, &report);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if format == "json" {
        let doc = serde_json::json!({ "report": report, "expectations_failed": failures });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        crate::sim::run::render_table(&report, &failures, &mut out)?;
    }
    Ok(if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `tailor simulate --compare`: the side-by-side benchmark on a scenario's
/// fleet or on a folder of traces; exit 2 when the list or folder is wrong.
fn compare(
    args: &SimulateArgs,
    list: &str,
    scenario: Option<(crate::sim::scenario::Scenario, PathBuf)>,
) -> anyhow::Result<ExitCode> {
    use crate::sim::compare::{render, suite};
    let outcome = match (&args.traces, &scenario) {
        (Some(dir), _) => {
            let (history, duration, policy, pricing) = match &scenario {
                Some((s, _)) => (s.history, s.duration, s.policy.clone(), s.pricing.clone()),
                None => (
                    Duration::from_secs(14 * 86_400),
                    Duration::from_secs(14 * 86_400),
                    crate::config::Policy::default(),
                    crate::config::PricingConfig::default(),
                ),
            };
            suite::compare_traces(dir, history, duration, &policy, &pricing, list)
        }
        (None, Some((scenario, file))) => {
            let mut scenario = scenario.clone();
            if let Some(seed) = args.seed {
                scenario.seed = seed;
            }
            let models = crate::sim::run::load_scenario_models(&scenario, file)?;
            suite::compare_scenario(&scenario, &models, list)
        }
        (None, None) => bail!("--compare needs a scenario file or --traces DIR"),
    };
    let (comparison, agent) = match outcome {
        Ok(found) => found,
        Err(
            e @ (suite::CompareError::Recommenders(_)
            | suite::CompareError::Traces { .. }
            | suite::CompareError::NoTraces(_)),
        ) => {
            eprintln!("tailor: error: {e}");
            return Ok(ExitCode::from(2));
        }
        Err(e) => return Err(e.into()),
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    if args.format == "json" {
        let doc = serde_json::json!({ "comparison": comparison, "agent": agent });
        serde_json::to_writer_pretty(&mut out, &doc)?;
        writeln!(out)?;
    } else {
        render::render_table(&comparison, &mut out)?;
    }
    if let Some(dir) = &args.csv {
        let paths = render::write_csv(&comparison, dir)
            .with_context(|| format!("writing CSV files into {}", dir.display()))?;
        for p in paths {
            eprintln!("wrote {}", p.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn config_check(file: &Path) -> ExitCode {
    match Config::load(file) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tailor: error: {e}");
            ExitCode::from(2)
        }
    }
}

fn load_config(args: &RecommendArgs) -> Result<Config, ExitCode> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| {
            eprintln!("tailor: error: {e}");
            ExitCode::from(2)
        })?,
        None => Config::default(),
    };
    config.merge_cli_overrides(&CliOverrides {
        prometheus_url: args.prometheus_url.clone(),
        namespaces: args.namespaces.clone(),
        selector: args.selector.clone(),
        history: args.history,
    });
    config.validate("command line").map_err(|e| {
        eprintln!("tailor: error: {e}");
        ExitCode::from(2)
    })?;
    Ok(config)
}

/// The config and the evaluation instant (`--at`, else now); exit code 2
/// with the reason on stderr when either is wrong.
fn config_and_at(args: &RecommendArgs) -> Result<(Config, DateTime<Utc>), ExitCode> {
    let config = load_config(args)?;
    if let Some(at) = args.at
        && let Err(e) = check_at(at)
    {
        eprintln!("tailor: error: {e}");
        return Err(ExitCode::from(2));
    }
    Ok((config, args.at.unwrap_or_else(Utc::now)))
}

async fn recommend(args: RecommendArgs) -> anyhow::Result<ExitCode> {
    let (config, at) = match config_and_at(&args) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let bar = progress_bar(
        !args.no_progress,
        "{spinner} reading usage {bar:30} {pos}/{len} queries {elapsed}",
    );
    let progress = |done: u64, total: u64| advance(&bar, done, total);
    let outcome = scan::scan(&config, at.timestamp(), &progress).await?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let report = Report {
        generated_at: Utc::now(),
        at: DateTime::from_timestamp(outcome.at, 0).unwrap_or(at),
        history_seconds: outcome.window_s.max(0) as u64,
        source: outcome.source,
        queries: outcome.counts.queries,
        pricing: PricingSummary {
            cpu_core_hour_usd: config.pricing.cpu_core_hour_usd,
            memory_gib_hour_usd: config.pricing.memory_gib_hour_usd,
        },
        recommendations: outcome.recommendations,
        skipped_series: outcome
            .skipped
            .into_iter()
            .map(|(reason, count)| SkippedSeries { reason, count })
            .collect(),
        review: None,
    };
    let width = terminal_width();
    match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            report::render(&report, args.format, &mut out, &RenderOptions { width })?;
            out.flush()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            report::render(&report, args.format, &mut out, &RenderOptions { width })?;
            out.flush()?;
        }
    }
    if report.recommendations.is_empty() {
        tracing::warn!(
            "no workloads found: check --namespace and that kube-state-metrics is scraped"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes to `path`, or to stdout when there is none.
fn write_output(
    path: Option<&Path>,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    match path {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::new(file);
            write(&mut out)?;
            out.flush()?;
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = stdout.lock();
            write(&mut out)?;
            out.flush()?;
        }
    }
    Ok(())
}

/// A recommend-only pass as of `at` with what a review adds: team labels
/// and node pools (re-pricing each container at its pool's prices), and,
/// when `approvals`, what approving each change means.
async fn review_report(
    config: &Config,
    at: DateTime<Utc>,
    approvals: bool,
    show_progress: bool,
) -> anyhow::Result<(Report, crate::metrics::PromClient)> {
    use crate::report::review::{self as review_mod, ReviewContext, WorkloadReview};
    let client = crate::metrics::PromClient::new(&config.prometheus)
        .context("configuring the Prometheus client")?;
    let bar = progress_bar(
        show_progress,
        "{spinner} reading usage {bar:30} {pos}/{len} queries {elapsed}",
    );
    let progress = |done: u64, total: u64| advance(&bar, done, total);
    let outcome = scan::scan_with(&client, config, at.timestamp(), &progress).await?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let workloads: Vec<crate::domain::WorkloadRef> = outcome
        .recommendations
        .iter()
        .map(|r| r.target.workload.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let placements = crate::backtest::context::placements(
        &client,
        config,
        &workloads,
        outcome.at,
        outcome.window_s,
    )
    .await?;
    let mut context = ReviewContext::from_config(config);
    context.workloads = placements
        .into_iter()
        .map(|(w, p)| {
            (
                w,
                WorkloadReview {
                    team: p.team,
                    node_pool: p.node_pool,
                    approval: None,
                },
            )
        })
        .collect();
    let mut report = Report {
        generated_at: Utc::now(),
        at: DateTime::from_timestamp(outcome.at, 0).unwrap_or(at),
        history_seconds: outcome.window_s.max(0) as u64,
        source: outcome.source,
        queries: 0,
        pricing: review_mod::pricing_summary(&config.pricing),
        recommendations: outcome.recommendations,
        skipped_series: outcome
            .skipped
            .into_iter()
            .map(|(reason, count)| SkippedSeries { reason, count })
            .collect(),
        review: Some(context),
    };
    report.reprice();
    if approvals {
        let listed = review_mod::approvals(&report.recommendations, &config.guardrails, outcome.at);
        if let Some(context) = report.review.as_mut() {
            for (workload, approval) in listed {
                context.workloads.entry(workload).or_default().approval = Some(approval);
            }
        }
    }
    report.queries = client.counts().queries;
    Ok((report, client))
}

/// `tailor report`: the review of the recommendations as of `--at` (now),
/// with `--backtest` the replay of those made that long before.
async fn review(args: ReportArgs) -> anyhow::Result<ExitCode> {
    let (config, at) = match config_and_at(&args.common) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let show_progress = !args.common.no_progress;
    let past = match args.backtest {
        None => None,
        Some(_) if args.common.format != Format::Html => {
            eprintln!(
                "tailor: error: --backtest is shown with -o html only; for {} run tailor backtest --at … --horizon …",
                args.common.format
            );
            return Ok(ExitCode::from(2));
        }
        Some(horizon) => {
            let since =
                at - chrono::Duration::from_std(horizon).unwrap_or(chrono::Duration::zero());
            if let Err(e) = backtest_plan(since, horizon, config.history.resolution, Utc::now()) {
                eprintln!("tailor: error: --backtest: {e}");
                return Ok(ExitCode::from(2));
            }
            Some(
                run_backtest(
                    &config,
                    since,
                    horizon,
                    config.history.resolution,
                    show_progress,
                )
                .await?,
            )
        }
    };
    let (report, _) = review_report(&config, at, true, show_progress).await?;
    let options = RenderOptions {
        width: terminal_width(),
    };
    write_output(args.common.output.as_deref(), |out| match &past {
        Some((past_report, backtest)) => report::html::write(
            &report,
            Some(report::html::BacktestView {
                report: past_report,
                backtest,
            }),
            &mut &mut *out,
        ),
        None => report::render(&report, args.common.format, &mut &mut *out, &options),
    })?;
    if report.recommendations.is_empty() {
        tracing::warn!(
            "no workloads found: check --namespace and that kube-state-metrics is scraped"
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// Recommends as of `at` (with teams and node-pool prices) and replays the
/// `horizon` after it.
async fn run_backtest(
    config: &Config,
    at: DateTime<Utc>,
    horizon: Duration,
    step: Duration,
    show_progress: bool,
) -> anyhow::Result<(Report, crate::backtest::Backtest)> {
    let (report, client) = review_report(config, at, false, show_progress).await?;
    let plan = crate::backtest::run::ReplayPlan {
        at: report.at.timestamp(),
        horizon_s: horizon.as_secs() as i64,
        step_s: step.as_secs().max(1) as i64,
        chunk_s: config.history.chunk.as_secs().max(1) as i64,
    };
    let bar = progress_bar(
        show_progress,
        "{spinner} replaying {bar:30} {pos}/{len} queries {elapsed}",
    );
    let progress = |done: u64, total: u64| advance(&bar, done, total);
    let result = crate::backtest::run::replay(&client, config, &report, &plan, &progress).await?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    Ok((report, result))
}

/// Checks the backtest's flags against each other and the clock; the
/// replay's step defaults to `history.resolution`.
pub fn backtest_plan(
    at: DateTime<Utc>,
    horizon: Duration,
    step: Duration,
    now: DateTime<Utc>,
) -> Result<(), String> {
    let show = |d: Duration| duration_text::format(d);
    if step < Duration::from_secs(15) || step > Duration::from_secs(3600) {
        return Err(format!(
            "--step {} is outside 15s to 1h; write e.g. 5m (the default is history.resolution)",
            show(step)
        ));
    }
    if horizon < step.max(Duration::from_secs(3600)) {
        return Err(format!(
            "--horizon {} is shorter than an hour (or one step); write e.g. 14d",
            show(horizon)
        ));
    }
    let end = at + chrono::Duration::from_std(horizon).unwrap_or(chrono::Duration::MAX);
    if end > now + chrono::Duration::minutes(5) {
        return Err(format!(
            "--at {} plus --horizon {} ends at {}, in the future: there is nothing to replay there;              give an earlier --at, a shorter --horizon, or omit --at (now minus the horizon)",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            show(horizon),
            end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ));
    }
    Ok(())
}

/// `tailor backtest`.
async fn backtest(args: BacktestArgs) -> anyhow::Result<ExitCode> {
    let config = match load_config(&args.common) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let now = Utc::now();
    let horizon = args.horizon;
    let step = args.step.unwrap_or(config.history.resolution);
    let at = args.common.at.unwrap_or_else(|| {
        now - chrono::Duration::from_std(horizon).unwrap_or(chrono::Duration::zero())
    });
    if let Err(e) = backtest_plan(at, horizon, step, now) {
        eprintln!("tailor: error: {e}");
        return Ok(ExitCode::from(2));
    }
    let (report, result) =
        run_backtest(&config, at, horizon, step, !args.common.no_progress).await?;
    let options = RenderOptions {
        width: terminal_width(),
    };
    write_output(args.common.output.as_deref(), |out| {
        report::backtest::render(
            &report,
            &result,
            args.common.format,
            &mut &mut *out,
            &options,
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .filter(|&w: &usize| w >= 40)
        .unwrap_or(80)
}

/// Fails when `--at` lies in the future (nothing to read there).
pub fn check_at(at: DateTime<Utc>) -> anyhow::Result<()> {
    if at > Utc::now() + chrono::Duration::minutes(5) {
        bail!("--at {at} is in the future; give an instant in the past, or omit --at for now");
    }
    Ok(())
}

/// A Kubernetes client: from `kubeconfig` when given, else inferred
/// (in-cluster service account, then $KUBECONFIG or ~/.kube/config).
async fn kube_client(kubeconfig: Option<&Path>) -> anyhow::Result<kube::Client> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer()
            .await
            .context("no in-cluster config and no kubeconfig; pass --kubeconfig")?,
    };
    kube::Client::try_from(config).context("building the Kubernetes client")
}

/// The file's config (its error printed, exit 2) or the defaults.
fn config_or_default(path: Option<&Path>) -> Result<Config, ExitCode> {
    match path {
        Some(path) => Config::load(path).map_err(|e| {
            eprintln!("tailor: error: {e}");
            ExitCode::from(2)
        }),
        None => Ok(Config::default()),
    }
}

/// `tailor run`: loads the config, builds the clients, and runs the daemon
/// until SIGTERM.
async fn run_daemon(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = match config_or_default(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    config.merge_cli_overrides(&CliOverrides {
        prometheus_url: args.prometheus_url.clone(),
        ..CliOverrides::default()
    });
    if let Err(e) = config.validate("command line") {
        eprintln!("tailor: error: {e}");
        return Ok(ExitCode::from(2));
    }
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let prometheus = crate::metrics::client::PromClient::new(&config.prometheus)
        .context("configuring the Prometheus client")?;
    let settings = config.agent_settings();
    let agent = &config.agent;
    let metrics_address: std::net::SocketAddr =
        agent.metrics_address.parse().with_context(|| {
            format!(
                "agent.metrics_address {:?} is not an address; write it like 0.0.0.0:8080",
                agent.metrics_address
            )
        })?;
    let election = &agent.leader_election;
    let elector = election.enabled.then(|| {
        crate::daemon::LeaderElector::new(
            client.clone(),
            election.lease_namespace(),
            election.lease_name.clone(),
            crate::daemon::LeaderElector::identity_from_env(),
            election.lease_duration,
            election.renew_every,
        )
    });
    let mut options = crate::daemon::RunOptions::new(agent.tick, metrics_address);
    options.once = args.once;
    let counts = prometheus.clone();
    options.query_totals = Some(std::sync::Arc::new(move || counts.counts().into()));

    let cluster =
        crate::cluster::kube::KubeCluster::new(client.clone(), kube_options(&config.selection));
    let source = crate::metrics::source::PrometheusSource::new(prometheus, config.clone())
        .context("configuring the SLI templates")?;
    let notifications = match start_notifications(&config) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("tailor: error: {e}");
            return Ok(ExitCode::from(2));
        }
    };
    options.notices = crate::daemon::notices::NoticeOptions {
        trouble_after: config.notifications.trouble_after,
        digest_every: Some(config.notifications.digest.interval).filter(|d| !d.is_zero()),
        agent: crate::domain::WorkloadRef {
            namespace: election.lease_namespace(),
            kind: crate::domain::WorkloadKind::Deployment,
            name: "tailor".to_string(),
        },
    };
    let registered = notifications.clone();
    options.register_metrics = Some(std::sync::Arc::new(move |registry| {
        registered.register_metrics(registry)
    }));
    let code = run_with_ports(
        cluster,
        source.clone(),
        source,
        notifications.clone(),
        settings,
        elector,
        options,
    )
    .await;
    // Queued notifications (a revert notice, say) get a few seconds.
    notifications.shutdown(Duration::from_secs(10)).await;
    code
}

/// The notifier of `config.notifications` (no sink: sends nothing).
fn start_notifications(
    config: &Config,
) -> Result<crate::notify::Notifications, crate::notify::NotifyError> {
    let notifications = crate::notify::Notifications::from_config(
        &config.notifications,
        config.prometheus.cluster.clone(),
    )?;
    if !config.notifications.sinks.is_empty() {
        tracing::info!(sinks = ?notifications.sink_names(), "notifications on");
    }
    Ok(notifications)
}

/// `tailor notify test`: a sample of each notification to every sink.
async fn notify_test(args: NotifyTestArgs) -> anyhow::Result<ExitCode> {
    use crate::notify::config::SinkKind;
    use crate::notify::sink::{Secret, Sink};
    let config = match config_or_default(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    let mut flagged = Vec::new();
    let mut check = |flag: &str, url: &Option<String>, kind: SinkKind| -> Result<(), String> {
        if let Some(url) = url {
            crate::notify::config::check_url(flag, url).map_err(|e| e.to_string())?;
            flagged.push((kind.as_str().to_string(), kind, url.clone()));
        }
        Ok(())
    };
    let checked = check("--webhook-url", &args.webhook_url, SinkKind::Webhook)
        .and_then(|()| check("--slack-url", &args.slack_url, SinkKind::Slack))
        .and_then(|()| check("--teams-url", &args.teams_url, SinkKind::Teams));
    if let Err(e) = checked {
        eprintln!("tailor: error: {e}");
        return Ok(ExitCode::from(2));
    }
    let sinks = if flagged.is_empty() {
        let resolved: Result<Vec<Sink>, _> = config
            .notifications
            .sinks
            .iter()
            .enumerate()
            .map(|(i, s)| Sink::resolve(&format!("notifications.sinks[{i}]"), s))
            .collect();
        match resolved {
            Ok(sinks) => sinks,
            Err(e) => {
                eprintln!("tailor: error: {e}");
                return Ok(ExitCode::from(2));
            }
        }
    } else {
        let mut sinks = Vec::new();
        for (name, kind, url) in flagged {
            let secret = match (kind, &args.webhook_secret_file) {
                (SinkKind::Webhook, Some(path)) => {
                    match crate::notify::sink::read_secret_file(path) {
                        Ok(s) if !s.is_empty() => Some(Secret::new(s)),
                        Ok(_) => {
                            eprintln!(
                                "tailor: error: --webhook-secret-file {} is empty; put a random secret there, e.g. `openssl rand -hex 32`",
                                path.display()
                            );
                            return Ok(ExitCode::from(2));
                        }
                        Err(e) => {
                            eprintln!(
                                "tailor: error: --webhook-secret-file {}: {e}",
                                path.display()
                            );
                            return Ok(ExitCode::from(2));
                        }
                    }
                }
                (SinkKind::Webhook, None) => {
                    eprintln!(
                        "tailor: error: --webhook-url needs --webhook-secret-file: payloads are always signed (see docs/notifications.md)"
                    );
                    return Ok(ExitCode::from(2));
                }
                _ => None,
            };
            sinks.push(Sink::new(&name, kind, Secret::new(url), secret));
        }
        sinks
    };
    if sinks.is_empty() {
        eprintln!(
            "tailor: error: no sink: pass --slack-url, --webhook-url with --webhook-secret-file, or --teams-url, or a --config with notifications.sinks"
        );
        return Ok(ExitCode::from(2));
    }
    let context = crate::notify::payload::Context {
        cluster: config.prometheus.cluster.clone(),
        links: config.notifications.links.clone(),
        digest_top: config.notifications.digest.top,
    };
    let mut delivery = config.notifications.delivery.clone();
    delivery.give_up_after = delivery.give_up_after.min(args.wait);
    delivery.timeout = delivery.timeout.min(args.wait);
    let notifications = crate::notify::Notifications::start(sinks, &delivery, context.clone())?;
    for payload in crate::notify::samples::payloads(Utc::now().timestamp(), &context) {
        notifications.send(payload);
    }
    notifications.shutdown(args.wait).await;
    let mut failed = false;
    for c in notifications.counts() {
        let dropped = c.dropped();
        failed |= dropped > 0;
        println!(
            "{}: {} sent, {} retries, {} not delivered{}",
            c.sink,
            c.sent,
            c.retries,
            dropped,
            c.last_error
                .filter(|_| dropped > 0)
                .map_or(String::new(), |e| format!(" (last error: {e})"))
        );
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the Kubernetes adapter lists. When every `selection.namespaces`
/// entry is a plain namespace name, only those namespaces are listed (so
/// namespaced RBAC suffices); a regex needs the cluster-wide list, filtered
/// afterwards like every other source. Plain excluded names are never read.
fn kube_options(selection: &crate::config::SelectionConfig) -> crate::cluster::kube::KubeOptions {
    let plain = |n: &String| {
        !n.is_empty()
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    let namespaces = if selection.namespaces.iter().all(plain) {
        selection.namespaces.clone()
    } else {
        Vec::new()
    };
    crate::cluster::kube::KubeOptions {
        namespaces,
        exclude_namespaces: selection
            .exclude_namespaces
            .iter()
            .filter(|n| plain(n))
            .cloned()
            .collect(),
        ..crate::cluster::kube::KubeOptions::default()
    }
}

/// Runs the daemon over the given ports until SIGTERM or SIGINT.
pub async fn run_with_ports<C, U, S, N>(
    cluster: C,
    usage: U,
    slo: S,
    notifier: N,
    settings: crate::agent::AgentSettings,
    elector: Option<crate::daemon::LeaderElector>,
    options: crate::daemon::RunOptions,
) -> anyhow::Result<ExitCode>
where
    C: crate::ports::Cluster,
    U: crate::ports::UsageSource,
    S: crate::ports::SloSource,
    N: crate::ports::Notifier,
{
    let summary = crate::daemon::run(
        cluster,
        usage,
        slo,
        notifier,
        settings,
        elector,
        options,
        crate::daemon::shutdown_signal(),
    )
    .await?;
    tracing::info!(
        ticks = summary.ticks,
        tick_errors = summary.tick_errors,
        leader_terms = summary.leader_terms,
        lease_released = summary.lease_released,
        applied = summary.stats.applied,
        reverted = summary.stats.reverted,
        "stopped"
    );
    Ok(ExitCode::SUCCESS)
}

async fn approve(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    match crate::daemon::revert::approve(&client, &args.workload).await {
        Ok((name, fingerprint)) => {
            println!("approved {fingerprint} on {name}");
            Ok(ExitCode::SUCCESS)
        }
        Err(
            e @ (crate::daemon::revert::RevertError::BadRequest(_)
            | crate::daemon::revert::RevertError::NoProposal { .. }
            | crate::daemon::revert::RevertError::NoRecommendation(_)
            | crate::daemon::revert::RevertError::Ambiguous(..)),
        ) => {
            eprintln!("tailor: error: {e}");
            Ok(ExitCode::from(2))
        }
        Err(e) => Err(e.into()),
    }
}

async fn revert(args: RevertArgs) -> anyhow::Result<ExitCode> {
    use crate::daemon::revert;
    let one = match (&args.workload, args.all) {
        (Some(text), false) => match revert::parse_workload(text) {
            Ok(w) => Some(w),
            Err(e) => {
                eprintln!("tailor: error: {e}");
                return Ok(ExitCode::from(2));
            }
        },
        _ => None,
    };
    let client = kube_client(args.kubeconfig.as_deref()).await?;
    let targets = match one {
        Some(w) => vec![w],
        None => revert::workloads_with_last_known_good(&client).await?,
    };
    let cluster = crate::cluster::kube::KubeCluster::new(
        client.clone(),
        crate::cluster::kube::KubeOptions::default(),
    );
    let mut failed = 0;
    for workload in &targets {
        match cluster.revert_to_last_known_good(workload).await {
            Ok(()) => println!("{workload}: at its last-known-good values"),
            Err(e) => {
                failed += 1;
                eprintln!("tailor: error: {workload}: {e}");
            }
        }
    }
    if args.all && targets.is_empty() {
        println!("no workload has a tailor.dev/last-known-good annotation");
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SelectionConfig;

    fn selection(namespaces: &[&str], exclude: &[&str]) -> SelectionConfig {
        SelectionConfig {
            namespaces: namespaces.iter().map(|s| s.to_string()).collect(),
            exclude_namespaces: exclude.iter().map(|s| s.to_string()).collect(),
            selector: None,
        }
    }

    #[test]
    fn plain_namespace_names_narrow_what_the_adapter_lists() {
        let o = kube_options(&selection(&["shop", "payments-2"], &["kube-system"]));
        assert_eq!(o.namespaces, ["shop", "payments-2"]);
        assert_eq!(o.exclude_namespaces, ["kube-system"]);
        // One regex: list everything, filter afterwards.
        let o = kube_options(&selection(&["shop", "team-.*"], &["kube-.*", "default"]));
        assert!(o.namespaces.is_empty());
        assert_eq!(o.exclude_namespaces, ["default"]);
        assert!(kube_options(&selection(&[], &[])).namespaces.is_empty());
    }
}

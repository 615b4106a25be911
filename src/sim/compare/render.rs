//! The comparison as text tables and CSV files.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Comparison, WorkloadRow};

fn usd(x: f64) -> String {
    if x.is_finite() {
        format!("${x:.0}")
    } else {
        "—".to_string()
    }
}

fn percent(x: f64) -> String {
    format!("{:.1} %", x * 100.0)
}

/// The one-shot table, the closed-loop table and the trade-off curve.
pub fn render_table(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    writeln!(
        out,
        "{}: {} workloads, trained on {:.0} days, evaluated on the next {:.0}",
        c.dataset, c.workloads, c.train_days, c.eval_days
    )?;
    for s in &c.skipped {
        writeln!(out, "  skipped {s}")?;
    }
    writeln!(out)?;
    writeln!(
        out,
        "one-shot recommendation, scored on the evaluation window"
    )?;
    writeln!(
        out,
        "{:<16}{:>10}{:>11}{:>10}{:>9}{:>10}{:>10}{:>9}{:>10}{:>9}{:>9}",
        "policy",
        "CPU req",
        "mem req",
        "$/month",
        "×oracle",
        "mem slack",
        "lim/req",
        "OOM smp",
        "OOM wkld",
        "CPU>lim",
        "CPU>req"
    )?;
    for s in &c.one_shot {
        writeln!(
            out,
            "{:<16}{:>10}{:>11}{:>10}{:>9}{:>10}{:>10}{:>9}{:>10}{:>9}{:>9}",
            s.policy,
            format!("{:.1}", s.cpu_requested_cores),
            format!("{:.1} GiB", s.memory_requested_gib),
            usd(s.usd_per_month),
            format!("{:.2}", s.cost_vs_oracle),
            percent(s.memory_slack),
            format!("{:.2}", s.memory_limit_over_request),
            s.oom_samples,
            s.oom_workloads,
            s.cpu_over_limit_samples,
            percent(s.cpu_over_request_share),
        )?;
    }
    render_by_source(c, out)?;
    if !c.loops.is_empty() {
        writeln!(out)?;
        writeln!(out, "closed loop over the evaluation window")?;
        writeln!(
            out,
            "{:<26}{:>14}{:>10}{:>10}{:>10}{:>8}{:>12}{:>12}",
            "policy",
            "changes/wl-day",
            "OOM eps",
            "wl ≥1 OOM",
            "wl >1 OOM",
            "max/wl",
            "mean $/mo",
            "final $/mo"
        )?;
        for l in &c.loops {
            writeln!(
                out,
                "{:<26}{:>14}{:>10}{:>10}{:>10}{:>8}{:>12}{:>12}",
                l.policy,
                format!("{:.3}", l.changes_per_workload_day),
                l.oom_episodes,
                l.workloads_with_oom,
                l.workloads_with_repeated_oom,
                l.max_episodes_per_workload,
                usd(l.mean_usd_per_month),
                usd(l.final_usd_per_month),
            )?;
        }
    }
    if !c.tradeoff.is_empty() {
        writeln!(out)?;
        writeln!(out, "trade-off: tailor's memory margins")?;
        writeln!(
            out,
            "{:<38}{:>9}{:>8}{:>8}{:>9}{:>11}{:>9}{:>11}{:>10}{:>12}",
            "setting",
            "$/month",
            "×oracle",
            "lim/req",
            "OOM wkld",
            "loop wl>1",
            "loop eps",
            "agent wl>1",
            "agent eps",
            "agent $/mo"
        )?;
        let opt = |v: Option<String>| v.unwrap_or_else(|| "—".to_string());
        for p in &c.tradeoff {
            writeln!(
                out,
                "{:<38}{:>9}{:>8}{:>8}{:>9}{:>11}{:>9}{:>11}{:>10}{:>12}",
                p.setting,
                usd(p.usd_per_month),
                format!("{:.2}", p.cost_vs_oracle),
                format!("{:.2}", p.memory_limit_over_request),
                p.oom_workloads,
                p.loop_workloads_with_repeated_oom,
                p.loop_oom_episodes,
                opt(p.agent_workloads_with_repeated_oom.map(|v| v.to_string())),
                opt(p.agent_oom_episodes.map(|v| v.to_string())),
                opt(p.agent_final_usd_per_month.map(usd)),
            )?;
        }
    }
    Ok(())
}

/// $/month per workload model and policy, when the workloads come from a
/// few models (not one per trace file).
fn render_by_source(c: &Comparison, out: &mut impl Write) -> io::Result<()> {
    let mut sources: Vec<&str> = c.per_workload.iter().map(|r| r.source.as_str()).collect();
    sources.sort_unstable();
    sources.dedup();
    if sources.len() < 2 || sources.len() > 12 {
        return Ok(());
    }
    let policies: Vec<&str> = c.one_shot.iter().map(|s| s.policy.as_str()).collect();
    writeln!(out)?;
    writeln!(out, "one-shot $/month by model (CPU cores requested)")?;
    write!(out, "{:<22}", "model")?;
    for p in &policies {
        write!(out, "{p:>18}")?;
    }
    writeln!(out)?;
    for source in sources {
        write!(out, "{source:<22}")?;
        for p in &policies {
            let rows = c
                .per_workload
                .iter()
                .filter(|r| r.source == source && r.policy == *p);
            let (usd_sum, cores) = rows.fold((0.0, 0.0), |(u, k), r| {
                (u + r.score.usd_per_month, k + r.score.cpu_requested_cores)
            });
            write!(out, "{:>18}", format!("{} ({cores:.0})", usd(usd_sum)))?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// One CSV row per policy and workload.
#[derive(Serialize)]
struct WorkloadCsv<'a> {
    dataset: &'a str,
    policy: &'a str,
    workload: &'a str,
    source: &'a str,
    replicas: u32,
    cpu_request_millicores: Option<u64>,
    cpu_limit_millicores: Option<u64>,
    memory_request_bytes: Option<u64>,
    memory_limit_bytes: Option<u64>,
    usd_per_month: f64,
    memory_p95_bytes: f64,
    memory_slack: f64,
    samples: u64,
    oom_samples: u64,
    cpu_over_limit_samples: u64,
    cpu_over_request_samples: u64,
}

impl<'a> WorkloadCsv<'a> {
    fn new(dataset: &'a str, r: &'a WorkloadRow) -> Self {
        WorkloadCsv {
            dataset,
            policy: &r.policy,
            workload: &r.workload,
            source: &r.source,
            replicas: r.score.replicas,
            cpu_request_millicores: r.resources.cpu_request_millicores,
            cpu_limit_millicores: r.resources.cpu_limit_millicores,
            memory_request_bytes: r.resources.memory_request_bytes,
            memory_limit_bytes: r.resources.memory_limit_bytes,
            usd_per_month: r.score.usd_per_month,
            memory_p95_bytes: r.score.memory_p95_bytes,
            memory_slack: r.score.memory_slack(),
            samples: r.score.samples,
            oom_samples: r.score.oom_samples,
            cpu_over_limit_samples: r.score.cpu_over_limit_samples,
            cpu_over_request_samples: r.score.cpu_over_request_samples,
        }
    }
}

fn write_rows<T: Serialize>(path: &Path, rows: impl IntoIterator<Item = T>) -> csv::Result<()> {
    let mut w = csv::Writer::from_path(path)?;
    for row in rows {
        w.serialize(row)?;
    }
    w.flush()?;
    Ok(())
}

/// Writes `<dataset>-summary.csv`, `-workloads.csv`, `-loop.csv`,
/// `-tradeoff.csv` and `-loop-workloads.csv` into `dir` (created if missing); returns the paths.
pub fn write_csv(c: &Comparison, dir: &Path) -> csv::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let stem: String = c
        .dataset
        .chars()
        .map(|ch| if ch.is_ascii_alphanumeric() { ch } else { '-' })
        .collect();
    let path = |suffix: &str| dir.join(format!("{stem}-{suffix}.csv"));
    let paths = vec![
        path("summary"),
        path("workloads"),
        path("loop"),
        path("tradeoff"),
        path("loop-workloads"),
    ];
    write_rows(&paths[0], &c.one_shot)?;
    write_rows(
        &paths[1],
        c.per_workload
            .iter()
            .map(|r| WorkloadCsv::new(&c.dataset, r)),
    )?;
    write_rows(&paths[2], &c.loops)?;
    write_rows(&paths[3], &c.tradeoff)?;
    write_rows(&paths[4], &c.loop_workloads)?;
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::super::tests::flat_usage;
    use super::super::{Options, Recommender, compare, margin_sweep, tailor::Engine};
    use super::*;

    #[test]
    fn tables_and_csv_hold_every_policy() {
        let u = flat_usage(28, 0.3, 500.0);
        let mut options = Options::new(vec![Recommender::Krr]);
        options.sweep = margin_sweep(&Engine::default())
            .into_iter()
            .take(2)
            .collect();
        let c = compare("unit test", &[u], &options, None);
        let mut text = Vec::new();
        render_table(&c, &mut text).expect("renders");
        let text = String::from_utf8(text).expect("utf-8");
        for word in [
            "as provisioned",
            "krr",
            "oracle",
            "closed loop",
            "trade-off",
        ] {
            assert!(text.contains(word), "{word} missing:\n{text}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let paths = write_csv(&c, dir.path()).expect("writes");
        let workloads = std::fs::read_to_string(&paths[1]).expect("reads");
        // Header + as provisioned, krr, oracle.
        assert_eq!(workloads.lines().count(), 4, "{workloads}");
        assert!(paths[0].ends_with("unit-test-summary.csv"));
        let tradeoff = std::fs::read_to_string(&paths[3]).expect("reads");
        assert_eq!(tradeoff.lines().count(), 3, "{tradeoff}");
    }
}

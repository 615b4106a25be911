//! The HTML review page in a real browser: `tailor report -o html` against
//! the review history's Prometheus (see `backtest.rs`), loaded by headless
//! Chromium from disk. The page must render its charts, show the totals of
//! `-o json` for the same instant, make no request beyond its own file, and
//! log no error; the backtest page likewise. One screenshot is kept as a
//! test artifact: `<target dir>/browser/report.png`, next to the pages
//! (`report.html`, `backtest.html`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

#[path = "browser/cdp.rs"]
mod cdp;

use crate::backtest::review_command;
use cdp::Browser;

/// Where the page and its screenshot are kept after the test:
/// `target/browser/` (the integration tests' temp dir is `target/tmp`).
fn artifact_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target/tmp has a parent")
        .join("browser");
    std::fs::create_dir_all(&dir).expect("creating target/browser");
    dir
}

fn report(format: &str, out: &Path) {
    review_command(
        "report",
        &["-o", format, "--output", out.to_str().expect("UTF-8 path")],
    );
}

fn usd(value: &Value) -> f64 {
    value
        .as_f64()
        .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not dollars: {value}"))
}

#[test]
fn the_report_renders_in_chromium_with_the_json_totals_and_no_errors() {
    let Some(chromium) = cdp::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let artifacts = artifact_dir();
    let page = artifacts.join("report.html");
    let json_file = dir.path().join("report.json");
    report("html", &page);
    report("json", &json_file);
    let doc: Value =
        serde_json::from_slice(&std::fs::read(&json_file).expect("JSON file")).expect("JSON");
    let containers = doc["recommendations"].as_array().expect("rows").len();
    assert_eq!(containers, 3);

    let mut browser = Browser::start(&chromium);
    browser.open(&page, Duration::from_millis(500));
    let dom = browser.eval(
        r#"(() => {
            const num = (sel, attr) => { const e = document.querySelector(sel); return e ? e.getAttribute(attr) : null; };
            const bars = (id) => Array.from(document.querySelectorAll('#' + id + ' g.bar'))
                .map(g => ({ key: g.getAttribute('data-key'), usd: parseFloat(g.getAttribute('data-usd')) }));
            const dists = Array.from(document.querySelectorAll('svg.dist'));
            return {
                title: document.title,
                savings: num('#total-savings', 'data-usd'),
                current: num('#total-current', 'data-usd'),
                recommended: num('#total-recommended', 'data-usd'),
                count: num('#total-containers', 'data-count'),
                articles: document.querySelectorAll('article.workload').length,
                dists: dists.length,
                drawn: dists.filter(s => { const r = s.getBoundingClientRect(); return r.width > 100 && r.height > 50; }).length,
                markers: document.querySelectorAll('svg.dist line.marker.rec-req').length,
                byNamespace: bars('chart-namespace'),
                byTeam: bars('chart-team'),
                top: bars('chart-top').length,
                risks: Array.from(document.querySelectorAll('#risk-table tr.risk')).map(r => r.textContent),
                approvals: Array.from(document.querySelectorAll('#review-table tr.approval'))
                    .map(r => ({ id: r.getAttribute('data-id'), status: r.getAttribute('data-status'), text: r.textContent })),
                pools: Array.from(document.querySelectorAll('#prices tr.price')).map(r => r.getAttribute('data-pool')),
                external: Array.from(document.querySelectorAll('[src],link[href],script[src]')).length,
                filtered: (() => {
                    const input = document.getElementById('filter');
                    input.value = 'batch';
                    input.dispatchEvent(new Event('input'));
                    const shown = Array.from(document.querySelectorAll('article.workload')).filter(a => !a.hidden).length;
                    input.value = '';
                    input.dispatchEvent(new Event('input'));
                    return shown;
                })(),
            };
        })()"#,
    );
    let png = browser.screenshot();
    std::fs::write(artifacts.join("report.png"), &png).expect("writing the screenshot");

    // The backtest page: the same layout with the replay's section.
    let backtest_page = artifacts.join("backtest.html");
    review_command(
        "backtest",
        &[
            "--horizon",
            "7d",
            "-o",
            "html",
            "--output",
            backtest_page.to_str().expect("UTF-8 path"),
        ],
    );
    let backtest_doc: Value = serde_json::from_str(&review_command(
        "backtest",
        &["--horizon", "7d", "-o", "json"],
    ))
    .expect("backtest JSON");
    browser.open(&backtest_page, Duration::from_millis(500));
    let backtest_dom = browser.eval(
        r#"(() => ({
            rows: document.querySelectorAll('#backtest-table tr').length,
            saved: document.querySelector('#backtest-saved').getAttribute('data-usd'),
            oom: document.querySelector('#backtest-oom').getAttribute('data-count'),
            replays: document.querySelectorAll('article.workload p.replay').length,
            dists: document.querySelectorAll('svg.dist').length,
        }))()"#,
    );
    let log = browser.log().clone();
    drop(browser);
    assert_eq!(
        backtest_dom["rows"],
        1 + 3,
        "a header and a row per container"
    );
    assert!(
        (usd(&backtest_dom["saved"]) - usd(&backtest_doc["totals"]["saved_usd"])).abs() < 0.005,
        "{backtest_dom}"
    );
    assert_eq!(
        backtest_dom["oom"],
        backtest_doc["totals"]["recommended"]["would_be_oom_kills"].to_string()
    );
    assert_eq!(backtest_dom["replays"], 3);
    assert_eq!(backtest_dom["dists"], 6);

    // Totals: the page shows the JSON output's numbers.
    let totals = &doc["totals"];
    for (field, key) in [
        ("savings", "savings_per_month_usd"),
        ("current", "current_cost_per_month_usd"),
        ("recommended", "recommended_cost_per_month_usd"),
    ] {
        assert!(
            (usd(&dom[field]) - usd(&totals[key])).abs() < 0.005,
            "{field}: page {} vs JSON {}",
            dom[field],
            totals[key]
        );
    }
    assert_eq!(dom["count"], containers.to_string());
    // One card per container, each with a CPU and a memory chart, drawn.
    assert_eq!(dom["articles"], containers);
    assert_eq!(dom["dists"], 2 * containers);
    assert_eq!(dom["drawn"], 2 * containers, "{dom}");
    assert_eq!(
        dom["markers"],
        2 * containers,
        "a recommended request on every chart"
    );
    // Savings by namespace and by team add up to the total.
    for chart in ["byNamespace", "byTeam"] {
        let sum: f64 = dom[chart]
            .as_array()
            .expect("bars")
            .iter()
            .map(|b| usd(&b["usd"]))
            .sum();
        assert!(
            (sum - usd(&totals["savings_per_month_usd"])).abs() < 0.02,
            "{chart}: {sum} vs {}",
            totals["savings_per_month_usd"]
        );
    }
    let keys = |chart: &str| -> Vec<String> {
        let mut k: Vec<String> = dom[chart]
            .as_array()
            .expect("bars")
            .iter()
            .map(|b| b["key"].as_str().expect("key").to_string())
            .collect();
        k.sort();
        k
    };
    assert_eq!(keys("byNamespace"), ["batch", "shop"]);
    assert_eq!(keys("byTeam"), ["data", "storefront"]);
    assert!(dom["top"].as_u64().expect("top bars") >= 1);
    // Risks from the engine's evidence: the OOM-killed worker first.
    let risks = dom["risks"].as_array().expect("risks");
    assert!(
        risks[0]
            .as_str()
            .is_some_and(|r| r.contains("batch/worker") && r.contains("1 OOM kill")),
        "{risks:?}"
    );
    assert!(
        risks.iter().any(|r| r
            .as_str()
            .is_some_and(|r| r.contains("shop/growing") && r.contains("throttled"))),
        "{risks:?}"
    );
    // The review listing: each managed workload with its Recommendation id;
    // the fingerprint is the JSON's.
    let steady = dom["approvals"]
        .as_array()
        .expect("approvals")
        .iter()
        .find(|a| a["id"] == "shop/deployment-steady")
        .unwrap_or_else(|| panic!("{}", dom["approvals"]));
    assert_eq!(steady["status"], "needs-approval");
    let fingerprint = doc["recommendations"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["workload"] == "steady")
        .and_then(|r| r["approval"]["fingerprint"].as_str())
        .expect("fingerprint");
    assert!(
        steady["text"].as_str().is_some_and(
            |t| t.contains(fingerprint) && t.contains("tailor approve shop/deployment/steady")
        ),
        "{steady}"
    );
    assert_eq!(dom["pools"], serde_json::json!(["", "spot"]));
    assert_eq!(dom["filtered"], 1, "the filter box shows batch/worker only");
    assert_eq!(dom["external"], 0, "no element loads anything");

    // Offline and clean: nothing but the two files themselves was
    // requested, and the console stayed quiet on both.
    let urls = [&page, &backtest_page].map(|p| format!("file://{}", p.display()));
    assert_eq!(log.requests, urls, "requests: {:?}", log.requests);
    assert!(log.errors.is_empty(), "console errors: {:#?}", log.errors);
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "screenshot of {} bytes",
        png.len()
    );
}

/// The checks above can fail: a page with a console error, an uncaught
/// exception and an external image is caught on every count.
#[test]
fn the_browser_check_catches_errors_and_external_loads() {
    let Some(chromium) = cdp::chromium() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'\">\
         </head><body><img src=\"http://tailor-test.invalid/pixel.png\">\
         <script>console.error('broken on purpose'); undefinedFunction();</script></body></html>",
    )
    .expect("writing the page");
    let mut browser = Browser::start(&chromium);
    browser.open(&page, Duration::from_millis(500));
    let log = browser.log().clone();
    drop(browser);
    let all = log.errors.join("\n");
    assert!(all.contains("broken on purpose"), "{all}");
    assert!(all.contains("undefinedFunction"), "{all}");
    assert!(
        log.errors
            .iter()
            .any(|e| e.contains("Content Security Policy") || e.contains("tailor-test.invalid")),
        "{all}"
    );
}

//! Every format rendered from one hand-built report whose totals are worked
//! out by hand below.

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};

use super::csv_rows::COLUMNS;
use super::*;
use crate::domain::{ContainerRef, WorkloadKind, WorkloadRef};
use crate::recommend::{Confidence, ConfidenceLevel, Evidence};

const MIB: u64 = Bytes::MIB;
const GIB: u64 = Bytes::GIB;

fn container(namespace: &str, kind: WorkloadKind, name: &str, container: &str) -> ContainerRef {
    ContainerRef {
        workload: WorkloadRef {
            namespace: namespace.to_string(),
            kind,
            name: name.to_string(),
        },
        container: container.to_string(),
    }
}

fn resources(
    cpu: Option<u64>,
    cpu_limit: Option<u64>,
    memory: Option<u64>,
    memory_limit: Option<u64>,
) -> Resources {
    Resources {
        cpu_request: cpu.map(MilliCores),
        cpu_limit: cpu_limit.map(MilliCores),
        memory_request: memory.map(Bytes),
        memory_limit: memory_limit.map(Bytes),
    }
}

fn evidence(replicas: u32, history_hours: f64) -> Evidence {
    Evidence {
        replicas,
        history_hours,
        coverage: 0.5,
        cpu_samples: 10,
        memory_samples: 12,
        ..Evidence::default()
    }
}

/// Prices: $0.05 per core-hour, $0.01 per GiB-hour. Per container, cost per
/// month = replicas × (cores × 0.05 + GiB × 0.01) × 730:
///
/// | container            | current                  | recommended              | savings |
/// |----------------------|--------------------------|--------------------------|---------|
/// | shop/checkout ×3     | 500m, 1Gi → 76.65        | 100m, 512Mi → 21.90      |  54.75  |
/// | batch/nightly ×1     | 2, 4Gi → 102.20          | 1500m, 3Gi → 76.65       |  25.55  |
/// | shop/legacy ×1 skip  | 100m, unset → 3.65       | same → 3.65              |   0.00  |
/// | payments/ledger ×2   | 250m, 256Mi → 21.90      | 300m, 256Mi → 25.55      |  -3.65  |
///
/// Listed out of order so sorting is exercised.
pub(super) fn report() -> Report {
    let checkout = Recommendation {
        target: container("shop", WorkloadKind::Deployment, "checkout", "app"),
        current: resources(Some(500), Some(1000), Some(GIB), Some(2 * GIB)),
        recommended: resources(Some(100), None, Some(512 * MIB), Some(GIB)),
        confidence: Confidence {
            score: 0.93,
            level: ConfidenceLevel::High,
        },
        savings_per_month_usd: 54.75,
        evidence: Evidence {
            replicas: 3,
            billed_replicas: None,
            history_hours: 336.0,
            coverage: 0.98,
            cpu_samples: 4032,
            memory_samples: 4030,
            cpu_p50_millicores: Some(40),
            cpu_p90_millicores: Some(80),
            cpu_p95_millicores: Some(90),
            cpu_p99_millicores: Some(140),
            cpu_max_millicores: Some(210),
            cpu_busiest_hour_millicores: Some(85),
            memory_peak_percentile_bytes: Some(400 * MIB),
            memory_max_bytes: Some(430 * MIB),
            startup_cpu_max_millicores: Some(450),
            startup_memory_max_bytes: Some(300 * MIB),
            cpu_throttled_ratio: Some(0.25),
            oom_kills: 0,
            last_oom_kill_at: None,
            restarts: 1,
            notes: vec!["cpu limit removed (policy none)".to_string()],
        },
        skipped_reason: None,
    };
    let ledger = Recommendation {
        target: container(
            "payments-platform-eu-west",
            WorkloadKind::StatefulSet,
            "ledger-reconciliation-batch-processor-worker",
            "reconciliation-sidecar-proxy",
        ),
        current: resources(Some(250), None, Some(256 * MIB), None),
        recommended: resources(Some(300), None, Some(256 * MIB), None),
        confidence: Confidence {
            score: 0.6,
            level: ConfidenceLevel::Medium,
        },
        savings_per_month_usd: -3.65,
        evidence: evidence(2, 200.0),
        skipped_reason: None,
    };
    let legacy = Recommendation {
        target: container("shop", WorkloadKind::Deployment, "legacy", "app"),
        current: resources(Some(100), None, None, None),
        recommended: resources(Some(100), None, None, None),
        confidence: Confidence {
            score: 0.3,
            level: ConfidenceLevel::None,
        },
        savings_per_month_usd: 0.0,
        evidence: evidence(1, 50.4),
        skipped_reason: Some("insufficient data (2.1d < 7d)".to_string()),
    };
    let nightly = Recommendation {
        target: container("batch", WorkloadKind::CronJob, "nightly", "runner"),
        current: resources(Some(2000), None, Some(4 * GIB), None),
        recommended: resources(Some(1500), None, Some(3 * GIB), None),
        confidence: Confidence {
            score: 0.75,
            level: ConfidenceLevel::Low,
        },
        savings_per_month_usd: 25.55,
        evidence: evidence(1, 170.0),
        skipped_reason: None,
    };
    Report {
        generated_at: Utc
            .with_ymd_and_hms(2025, 6, 1, 12, 0, 5)
            .single()
            .expect("valid date"),
        at: Utc
            .with_ymd_and_hms(2025, 6, 1, 12, 0, 0)
            .single()
            .expect("valid date"),
        history_seconds: 7 * 86_400,
        source: "https://admin:hunter2@prometheus.example:9090/api?token=abc".to_string(),
        queries: 42,
        pricing: PricingSummary {
            cpu_core_hour_usd: 0.05,
            memory_gib_hour_usd: 0.01,
        },
        recommendations: vec![ledger, legacy, checkout, nightly],
        skipped_series: vec![
            SkippedSeries {
                reason: "NaN sample dropped".to_string(),
                count: 12,
            },
            SkippedSeries {
                reason: "counter reset".to_string(),
                count: 3,
            },
        ],
        review: None,
    }
}

fn rendered(format: Format, width: usize) -> String {
    let mut out = Vec::new();
    render(&report(), format, &mut out, &RenderOptions { width }).expect("render to a Vec");
    String::from_utf8(out).expect("UTF-8 output")
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "{what}: {actual} != {expected}"
    );
}

#[test]
fn totals_match_the_hand_computed_example() {
    let totals = report().totals();
    assert_eq!(
        totals.current_cpu_request,
        MilliCores(1500 + 500 + 100 + 2000)
    );
    assert_eq!(
        totals.recommended_cpu_request,
        MilliCores(300 + 600 + 100 + 1500)
    );
    assert_eq!(
        totals.current_memory_request,
        Bytes(3 * GIB + 512 * MIB + 4 * GIB)
    );
    assert_eq!(
        totals.recommended_memory_request,
        Bytes(3 * 512 * MIB + 512 * MIB + 3 * GIB)
    );
    assert_close(
        totals.current_cost_per_month_usd,
        76.65 + 102.2 + 3.65 + 21.9,
        "current",
    );
    assert_close(
        totals.recommended_cost_per_month_usd,
        21.9 + 76.65 + 3.65 + 25.55,
        "recommended",
    );
    assert_close(
        totals.savings_per_month_usd,
        54.75 + 25.55 + 0.0 - 3.65,
        "savings",
    );
    assert_eq!(
        (totals.containers, totals.recommended, totals.skipped),
        (4, 3, 1)
    );
}

#[test]
fn unset_requests_cost_nothing() {
    let pricing = PricingSummary {
        cpu_core_hour_usd: 0.05,
        memory_gib_hour_usd: 0.01,
    };
    let cases = [
        (resources(None, Some(4000), None, Some(GIB)), 5, 0.0),
        (
            resources(Some(1000), None, None, None),
            2,
            2.0 * 0.05 * 730.0,
        ),
        (
            resources(None, None, Some(2 * GIB), None),
            1,
            2.0 * 0.01 * 730.0,
        ),
        (resources(Some(1000), None, Some(GIB), None), 0, 0.0),
    ];
    for (resources, replicas, expected) in cases {
        assert_close(
            monthly_cost_usd(&resources, f64::from(replicas), &pricing),
            expected,
            &format!("{resources:?} ×{replicas}"),
        );
    }
}

#[test]
fn format_parses_every_accepted_name_and_lists_them_on_error() {
    for format in Format::ALL {
        assert_eq!(format.as_str().parse::<Format>(), Ok(format));
    }
    assert_eq!("Markdown".parse::<Format>(), Ok(Format::Markdown));
    let err = "xml".parse::<Format>().expect_err("xml is not a format");
    assert_eq!(
        err.to_string(),
        r#"unknown output format "xml"; expected one of: table, json, yaml, csv, markdown, html"#
    );
}

#[test]
fn credentials_and_query_strings_are_stripped_from_the_source() {
    let cases = [
        ("http://prometheus:9090", "http://prometheus:9090"),
        (
            "https://u:p@thanos.example/prom?x=1",
            "https://thanos.example/prom",
        ),
        ("https://u:p@w@host:443/", "https://host:443/"),
        ("user:secret@prometheus:9090", "prometheus:9090"),
        ("http://host/path@v1", "http://host/path@v1"),
        ("http://u:p?w#x@host/x?q", "http://host/x"),
        ("http://u:p@host?token=x", "http://host"),
    ];
    for (input, expected) in cases {
        assert_eq!(strip_credentials(input), expected, "{input}");
    }
}

fn json_document() -> Value {
    serde_json::from_str(&rendered(Format::Json, 80)).expect("JSON output parses")
}

#[test]
fn json_has_the_versioned_top_level_contract() {
    let doc = json_document();
    let keys: Vec<&str> = doc
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut expected = vec![
        "schema_version",
        "generated_at",
        "at",
        "history_seconds",
        "source",
        "queries",
        "pricing",
        "totals",
        "skipped_series",
        "recommendations",
        "review",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(doc["schema_version"], json!(1));
    assert_eq!(doc["generated_at"], json!("2025-06-01T12:00:05Z"));
    assert_eq!(doc["at"], json!("2025-06-01T12:00:00Z"));
    assert_eq!(doc["history_seconds"], json!(604_800));
    assert_eq!(doc["source"], json!("https://prometheus.example:9090/api"));
    assert_eq!(doc["queries"], json!(42));
    assert_eq!(
        doc["pricing"],
        json!({
            "cpu_core_hour_usd": 0.05,
            "memory_gib_hour_usd": 0.01,
            "hours_per_month": 730.0,
            "source": null,
            "node_pools": [],
        })
    );
    assert_eq!(
        doc["totals"],
        json!({
            "containers": 4,
            "recommended": 3,
            "skipped": 1,
            "current_cpu_request_millicores": 4100,
            "recommended_cpu_request_millicores": 2500,
            "current_memory_request_bytes": 8_053_063_680_u64,
            "recommended_memory_request_bytes": 5_368_709_120_u64,
            "current_cost_per_month_usd": 204.4,
            "recommended_cost_per_month_usd": 127.75,
            "savings_per_month_usd": 76.65,
        })
    );
    assert_eq!(
        doc["skipped_series"],
        json!([
            {"reason": "NaN sample dropped", "count": 12},
            {"reason": "counter reset", "count": 3},
        ])
    );
}

#[test]
fn json_recommendations_are_sorted_by_savings_then_name() {
    let doc = json_document();
    let order: Vec<(&str, &str, f64)> = doc["recommendations"]
        .as_array()
        .expect("array")
        .iter()
        .map(|rec| {
            (
                rec["namespace"].as_str().expect("namespace"),
                rec["workload"].as_str().expect("workload"),
                rec["savings_per_month_usd"].as_f64().expect("savings"),
            )
        })
        .collect();
    assert_eq!(
        order,
        [
            ("shop", "checkout", 54.75),
            ("batch", "nightly", 25.55),
            ("shop", "legacy", 0.0),
            (
                "payments-platform-eu-west",
                "ledger-reconciliation-batch-processor-worker",
                -3.65
            ),
        ]
    );
}

#[test]
fn json_recommendation_has_every_field_with_its_type() {
    let doc = json_document();
    assert_eq!(
        doc["recommendations"][0],
        json!({
            "namespace": "shop",
            "workload_kind": "Deployment",
            "workload": "checkout",
            "container": "app",
            "current": {
                "cpu_request_millicores": 500,
                "cpu_limit_millicores": 1000,
                "memory_request_bytes": GIB,
                "memory_limit_bytes": 2 * GIB,
            },
            "recommended": {
                "cpu_request_millicores": 100,
                "cpu_limit_millicores": null,
                "memory_request_bytes": 512 * MIB,
                "memory_limit_bytes": GIB,
            },
            "confidence": {"score": 0.93, "level": "high"},
            "savings_per_month_usd": 54.75,
            "evidence": {
                "replicas": 3,
                "history_hours": 336.0,
                "coverage": 0.98,
                "cpu_samples": 4032,
                "memory_samples": 4030,
                "cpu_p50_millicores": 40,
                "cpu_p90_millicores": 80,
                "cpu_p95_millicores": 90,
                "cpu_p99_millicores": 140,
                "cpu_max_millicores": 210,
                "cpu_busiest_hour_millicores": 85,
                "memory_peak_percentile_bytes": 400 * MIB,
                "memory_max_bytes": 430 * MIB,
                "startup_cpu_max_millicores": 450,
                "startup_memory_max_bytes": 300 * MIB,
                "cpu_throttled_ratio": 0.25,
                "oom_kills": 0,
                "restarts": 1,
                "notes": ["cpu limit removed (policy none)"],
            },
            "skipped_reason": null,
            "id": "shop/deployment-checkout",
            "team": null,
            "node_pool": null,
            "approval": null,
        })
    );
    let skipped = &doc["recommendations"][2];
    assert_eq!(
        skipped["skipped_reason"],
        json!("insufficient data (2.1d < 7d)")
    );
    assert_eq!(
        skipped["confidence"],
        json!({"score": 0.3, "level": "none"})
    );
    assert_eq!(skipped["workload_kind"], json!("Deployment"));
    assert_eq!(
        skipped["current"],
        json!({
            "cpu_request_millicores": 100,
            "cpu_limit_millicores": null,
            "memory_request_bytes": null,
            "memory_limit_bytes": null,
        })
    );
    assert_eq!(skipped["recommended"], skipped["current"]);
    assert_eq!(skipped["evidence"]["cpu_p50_millicores"], Value::Null);
    assert_eq!(skipped["evidence"]["cpu_throttled_ratio"], Value::Null);
    assert_eq!(skipped["evidence"]["notes"], json!([]));
    assert_eq!(
        doc["recommendations"][3]["workload_kind"],
        json!("StatefulSet")
    );
}

#[test]
fn json_round_trips_through_the_contract_structs() {
    let json = rendered(Format::Json, 80);
    let parsed: contract::ReportDocument = serde_json::from_str(&json).expect("contract parses");
    assert_eq!(parsed, contract::ReportDocument::from(&report()));
}

#[test]
fn non_finite_numbers_are_null_in_json_and_yaml() {
    let mut report = report();
    report.recommendations[0].savings_per_month_usd = f64::NAN;
    report.recommendations[0].evidence.coverage = f64::INFINITY;
    let mut json = Vec::new();
    let mut yaml = Vec::new();
    let options = RenderOptions::default();
    render(&report, Format::Json, &mut json, &options).expect("json");
    render(&report, Format::Yaml, &mut yaml, &options).expect("yaml");
    let json: Value = serde_json::from_slice(&json).expect("json parses");
    let yaml: Value = serde_yaml_ng::from_slice(&yaml).expect("yaml parses");
    assert_eq!(json, yaml);
    // NaN savings sort last.
    let last = &json["recommendations"][3];
    assert_eq!(
        last["workload"],
        json!("ledger-reconciliation-batch-processor-worker")
    );
    assert_eq!(last["savings_per_month_usd"], Value::Null);
    assert_eq!(last["evidence"]["coverage"], Value::Null);
    assert_eq!(json["totals"]["savings_per_month_usd"], Value::Null);
}

#[test]
fn yaml_parses_to_the_same_document_as_json() {
    let yaml: Value =
        serde_yaml_ng::from_str(&rendered(Format::Yaml, 80)).expect("YAML output parses");
    assert_eq!(yaml, json_document());
}

#[test]
fn csv_has_a_header_and_one_row_per_container() {
    let csv = rendered(Format::Csv, 80);
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_string)
        .collect();
    assert_eq!(header, COLUMNS);
    let rows: Vec<csv::StringRecord> = reader
        .records()
        .collect::<Result<_, _>>()
        .expect("rows parse");
    assert_eq!(rows.len(), 4);
    let cell = |row: usize, column: &str| -> String {
        let i = COLUMNS
            .iter()
            .position(|c| *c == column)
            .unwrap_or_else(|| panic!("no column {column}"));
        rows[row][i].to_string()
    };

    let first: Vec<&str> = rows[0].iter().collect();
    assert_eq!(
        first,
        [
            "shop",
            "Deployment",
            "checkout",
            "app",
            "3",
            "500",
            "1000",
            "1073741824",
            "2147483648",
            "100",
            "",
            "536870912",
            "1073741824",
            "0.93",
            "high",
            "54.75",
            "",
            "336",
            "0.98",
            "4032",
            "4030",
            "40",
            "80",
            "90",
            "140",
            "210",
            "85",
            "419430400",
            "450887680",
            "450",
            "314572800",
            "0.25",
            "0",
            "1",
            "cpu limit removed (policy none)",
            "shop/deployment-checkout",
            "",
            "",
            "76.65",
            "21.90",
            "",
            "",
            "",
        ]
    );
    assert_eq!(cell(1, "workload"), "nightly");
    assert_eq!(cell(1, "workload_kind"), "CronJob");
    assert_eq!(cell(1, "savings_per_month_usd"), "25.55");
    assert_eq!(cell(2, "skipped_reason"), "insufficient data (2.1d < 7d)");
    assert_eq!(cell(2, "current_memory_request_bytes"), "");
    assert_eq!(cell(2, "savings_per_month_usd"), "0.00");
    assert_eq!(cell(2, "confidence_level"), "none");
    assert_eq!(cell(2, "cpu_p99_millicores"), "");
    assert_eq!(cell(3, "container"), "reconciliation-sidecar-proxy");
    assert_eq!(cell(3, "savings_per_month_usd"), "-3.65");
    assert_eq!(cell(3, "history_hours"), "200");
}

const TABLE_80: &str = "\
WORKLOAD                          CONTAINER         CPU        MEMORY       $/MO
shop/checkout                     app               500m→100m  1Gi→512Mi  +54.75
  limits: cpu 1→none, memory 2Gi→1Gi
batch/nightly                     runner            2→1500m    4Gi→3Gi    +25.55
shop/legacy                       app               100m       none
  skip: insufficient data (2.1d < 7d)
payments-platfor…rocessor-worker  reconcil…r-proxy  250m→300m  256Mi       -3.65

Total: $204.40/mo → $127.75/mo, savings +$76.65/mo
Requests × replicas: CPU 4100m→2500m, memory 7680Mi→5Gi
Containers: 4 (3 recommended, 1 skipped) at 2025-06-01 12:00 UTC
Source: https://prometheus.example:9090/api, 42 queries, 7d history
Skipped series: NaN sample dropped (12), counter reset (3)
";

#[test]
fn table_fits_80_columns_and_shows_changes() {
    let table = rendered(Format::Table, 80);
    assert_eq!(table, TABLE_80, "\n{table}");
}

#[test]
fn table_lines_fit_every_width() {
    for width in [60, 72, 80, 100, 132] {
        let table = rendered(Format::Table, width);
        for line in table.lines() {
            assert!(
                line.chars().count() <= width,
                "width {width}: {} chars: {line:?}",
                line.chars().count()
            );
        }
        assert!(table.contains("500m→100m"), "{table}");
        assert!(table.contains("+54.75"), "{table}");
        assert!(table.contains("skip: insufficient data"), "{table}");
    }
    // Narrower than the minimum is laid out for the minimum.
    assert_eq!(
        rendered(Format::Table, 20),
        rendered(Format::Table, MIN_TABLE_WIDTH)
    );
    // Wide terminals show long names whole.
    let wide = rendered(Format::Table, 132);
    assert!(wide.contains(
        "payments-platform-eu-west/ledger-reconciliation-batch-processor-worker  reconciliation-sidecar-proxy"
    ));
}

#[test]
fn empty_report_says_so() {
    let mut report = report();
    report.recommendations.clear();
    report.skipped_series.clear();
    let mut out = Vec::new();
    render(&report, Format::Table, &mut out, &RenderOptions::default()).expect("render");
    let table = String::from_utf8(out).expect("UTF-8");
    assert!(
        table.starts_with("No containers to report.\n\nTotal: $0.00/mo → $0.00/mo"),
        "{table}"
    );
    assert!(!table.contains("Skipped series"), "{table}");
}

const MARKDOWN: &str = "\
## Rightsizing recommendations

4 containers at 2025-06-01 12:00 UTC from 7d of history (42 queries to https://prometheus.example:9090/api): 3 recommended, 1 skipped. Requested cost $204.40/mo → $127.75/mo, savings **+$76.65/mo**.

| Workload | Container | CPU | Memory | Limits | $/mo |
|---|---|---|---|---|---:|
| shop/checkout | app | 500m→100m | 1Gi→512Mi | cpu 1→none, memory 2Gi→1Gi | +54.75 |
| batch/nightly | runner | 2→1500m | 4Gi→3Gi |  | +25.55 |
| payments-platform-eu-west/ledger-reconciliation-batch-processor-worker | reconciliation-sidecar-proxy | 250m→300m | 256Mi |  | -3.65 |

### Skipped

- shop/legacy / app: insufficient data (2.1d \\< 7d)

### Skipped series

- NaN sample dropped: 12
- counter reset: 3
";

#[test]
fn markdown_has_summary_table_and_skipped_list() {
    let markdown = rendered(Format::Markdown, 80);
    assert_eq!(markdown, MARKDOWN, "\n{markdown}");
    let table_rows = markdown.lines().filter(|l| l.starts_with('|')).count();
    assert_eq!(
        table_rows,
        2 + 3,
        "header, separator and one row per recommendation"
    );
}

const OUTPUT_DOC: &str = include_str!("../../docs/output.md");

/// The report `docs/output.md` shows: two of the fixture's containers.
fn documented_report() -> Report {
    let mut report = report();
    report.source = "http://prometheus.monitoring:9090".to_string();
    report.skipped_series.truncate(1);
    report
        .recommendations
        .retain(|rec| rec.target.workload.namespace == "shop");
    report
}

fn fenced_block<'a>(doc: &'a str, opening: &str) -> &'a str {
    let start = doc.find(opening).expect("block in docs/output.md") + opening.len();
    let len = doc[start..].find("```").expect("closing fence");
    &doc[start..start + len]
}

#[test]
fn docs_example_is_what_json_output_writes() {
    let mut out = Vec::new();
    render(
        &documented_report(),
        Format::Json,
        &mut out,
        &RenderOptions::default(),
    )
    .expect("render");
    let json = String::from_utf8(out).expect("UTF-8");
    assert_eq!(fenced_block(OUTPUT_DOC, "```json\n"), json);
}

#[test]
fn docs_table_example_is_what_table_output_writes() {
    let mut out = Vec::new();
    render(
        &documented_report(),
        Format::Table,
        &mut out,
        &RenderOptions::default(),
    )
    .expect("render");
    let table = String::from_utf8(out).expect("UTF-8");
    assert_eq!(fenced_block(OUTPUT_DOC, "```text\n"), table);
}

#[test]
fn docs_name_every_contract_field_and_csv_column() {
    fn keys(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    found.push(key.clone());
                    keys(child, found);
                }
            }
            Value::Array(items) => items.iter().for_each(|item| keys(item, found)),
            _ => {}
        }
    }
    let mut fields = Vec::new();
    keys(&json_document(), &mut fields);
    for field in fields.iter().map(String::as_str).chain(COLUMNS) {
        assert!(
            OUTPUT_DOC.contains(&format!("`{field}`"))
                || OUTPUT_DOC.contains(&format!(".{field}`")),
            "docs/output.md does not document `{field}`"
        );
    }
}

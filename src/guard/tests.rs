use proptest::prelude::*;

use super::*;

const MINUTE: i64 = 60;
const CHANGE_AT: i64 = 1_700_000_000;

/// Deterministic ±4 % jitter so windows are noisy but reproducible.
fn jitter(i: usize) -> f64 {
    1.0 + 0.02 * (((i * 7) % 5) as f64 - 2.0)
}

/// `n` one-minute intervals ending at `end`, with `requests` per interval,
/// `error_ratio` of them failed and p95/p99 around the given latencies.
fn sli_window(
    end: i64,
    n: usize,
    requests: f64,
    error_ratio: f64,
    p95: f64,
    p99: f64,
) -> Vec<SliSample> {
    (0..n)
        .map(|i| SliSample {
            t: end - (n - i) as i64 * MINUTE,
            requests,
            errors: requests * error_ratio,
            latency_p95_s: Some(p95 * jitter(i)),
            latency_p99_s: Some(p99 * jitter(i + 1)),
        })
        .collect()
}

fn baseline_sli() -> Vec<SliSample> {
    sli_window(CHANGE_AT, 30, 1000.0, 0.001, 0.120, 0.180)
}

fn bake_sli(n: usize, error_ratio: f64, p95: f64, p99: f64) -> Vec<SliSample> {
    sli_window(
        CHANGE_AT + 300 + n as i64 * MINUTE,
        n,
        1000.0,
        error_ratio,
        p95,
        p99,
    )
}

fn quiet_res(end: i64, n: usize) -> Vec<ResourceSample> {
    (0..n)
        .map(|i| ResourceSample {
            t: end - (n - i) as i64 * MINUTE,
            oom_kills: 0,
            restarts: 0,
            throttled_ratio: Some(0.02),
            ready_ratio: Some(1.0),
        })
        .collect()
}

fn baseline_res() -> Vec<ResourceSample> {
    quiet_res(CHANGE_AT, 30)
}

fn bake_res(n: usize) -> Vec<ResourceSample> {
    quiet_res(CHANGE_AT + 300 + n as i64 * MINUTE, n)
}

fn run(bake_sli: &[SliSample], bake_res: &[ResourceSample]) -> Evaluation {
    evaluate(
        &GuardPolicy::default(),
        Some(&baseline_sli()),
        Some(bake_sli),
        &baseline_res(),
        bake_res,
    )
}

fn finding(evaluation: &Evaluation, signal: Signal) -> &Finding {
    evaluation
        .findings
        .iter()
        .find(|f| f.signal == signal)
        .unwrap_or_else(|| panic!("no {signal} finding in {evaluation:#?}"))
}

fn breached(evaluation: &Evaluation) -> Vec<Signal> {
    evaluation.breaches().map(|f| f.signal).collect()
}

#[test]
fn identical_windows_are_healthy_with_large_p_values() {
    let base = baseline_sli();
    let res = baseline_res();
    let e = evaluate(
        &GuardPolicy::default(),
        Some(&base),
        Some(&base),
        &res,
        &res,
    );
    assert_eq!(e.verdict, Verdict::Healthy, "{}", e.summary());
    assert_eq!(e.findings.len(), 7);
    assert!(e.skipped.is_empty());
    for f in &e.findings {
        if let Some(p) = f.p_value {
            assert!(p >= 0.4, "{}: p = {p}", f.signal);
        }
    }
    assert_eq!(finding(&e, Signal::ErrorRatio).p_value, Some(0.5));
}

/// The SLI rules by table: (name, bake, expected verdict, expected breaches).
#[test]
fn sli_rules() {
    type Case = (&'static str, Vec<SliSample>, Verdict, Vec<Signal>);
    let mut tiny_traffic = baseline_sli();
    tiny_traffic.iter_mut().for_each(|s| s.requests = 2.0);
    let cases: Vec<Case> = vec![
        (
            "error ratio 0.1 % → 2 % over 10k requests",
            bake_sli(10, 0.02, 0.120, 0.180),
            Verdict::Breach,
            vec![Signal::ErrorRatio],
        ),
        (
            "error ratio 0.1 % → 0.15 %: significant over 30k requests but within the 0.1-point budget",
            bake_sli(30, 0.0015, 0.120, 0.180),
            Verdict::Healthy,
            vec![],
        ),
        (
            "latency +50 % over 3 bake intervals",
            bake_sli(3, 0.001, 0.180, 0.270),
            Verdict::Breach,
            vec![Signal::LatencyP95, Signal::LatencyP99],
        ),
        (
            "p99 only +50 %",
            bake_sli(3, 0.001, 0.120, 0.270),
            Verdict::Breach,
            vec![Signal::LatencyP99],
        ),
        (
            "latency +5 %: within tolerance",
            bake_sli(10, 0.001, 0.126, 0.189),
            Verdict::Healthy,
            vec![],
        ),
        (
            "latency +50 % but only 2 bake intervals: not judged yet",
            bake_sli(2, 0.001, 0.180, 0.270),
            Verdict::Healthy,
            vec![],
        ),
        ("bake configured but empty", vec![], Verdict::NoData, vec![]),
        (
            "bake intervals with zero requests (latency present but meaningless)",
            {
                let mut bake = bake_sli(5, 0.0, 0.5, 0.9);
                bake.iter_mut().for_each(|s| s.requests = 0.0);
                bake
            },
            Verdict::NoData,
            vec![],
        ),
    ];
    for (name, bake, verdict, breaches) in cases {
        let e = run(&bake, &bake_res(bake.len().max(1)));
        assert_eq!(e.verdict, verdict, "{name}: {}", e.summary());
        assert_eq!(breached(&e), breaches, "{name}: {}", e.summary());
    }
}

#[test]
fn error_breach_finding_carries_the_numbers() {
    let e = run(&bake_sli(10, 0.02, 0.120, 0.180), &bake_res(10));
    let f = &e.findings[0];
    assert_eq!(f.signal, Signal::ErrorRatio);
    assert!(f.breach);
    assert!((f.baseline - 0.001).abs() < 1e-12);
    assert!((f.observed - 0.02).abs() < 1e-12);
    assert!((f.threshold - 0.002).abs() < 1e-12);
    assert!(f.p_value.is_some_and(|p| p < 1e-30));
    assert_eq!(
        f.message,
        "error ratio 2.000 % vs 0.100 % before (+1.900 points, budget +0.100 points, p < 0.0001)"
    );
    assert!(
        e.summary().starts_with("Breach: error ratio 2.000 %"),
        "{}",
        e.summary()
    );
}

#[test]
fn latency_breach_message_and_threshold() {
    let e = run(&bake_sli(3, 0.001, 0.180, 0.270), &bake_res(3));
    let f = finding(&e, Signal::LatencyP99);
    assert!(f.breach);
    assert!((f.baseline - 0.180).abs() < 1e-12, "{}", f.baseline);
    assert!((f.threshold - 0.198).abs() < 1e-12);
    // 3 bake intervals above all 30 baseline ones; the baseline's jitter
    // repeats 5 values 6 times each, so the tie-corrected normal
    // approximation applies: U = 90, σ² = 90/12 · (34 − 1050/1056) = 247.54,
    // z = (90 − 45 − ½) / 15.733 = 2.8284, p = 0.00234.
    let p = f.p_value.unwrap_or(1.0);
    assert!((p - 0.002_34).abs() < 1e-5, "{p}");
    assert_eq!(
        f.message,
        "p99 latency 0.270 s vs 0.180 s before (+50 %, tolerance +10 %, p = 0.0023)"
    );
    // Breaches come first.
    assert!(e.findings[0].breach && e.findings[1].breach);
    assert!(e.findings[2..].iter().all(|f| !f.breach));
}

#[test]
fn one_error_on_tiny_traffic_is_not_significant() {
    // 0/60 → 1/60: 1.7 points over the budget, but pooled
    // p̂ = 1/120, se = √(p̂ (1 − p̂) · 2/60) = 0.016597, z = 1.00419, p = 0.157643.
    let base = vec![SliSample {
        t: CHANGE_AT,
        requests: 60.0,
        ..SliSample::default()
    }];
    let bake = vec![SliSample {
        t: CHANGE_AT + 600,
        requests: 60.0,
        errors: 1.0,
        ..SliSample::default()
    }];
    let e = evaluate(
        &GuardPolicy::default(),
        Some(&base),
        Some(&bake),
        &[],
        &bake_res(3),
    );
    assert_eq!(e.verdict, Verdict::Healthy, "{}", e.summary());
    let f = finding(&e, Signal::ErrorRatio);
    assert!(!f.breach);
    assert!(
        f.p_value.is_some_and(|p| (p - 0.157_643).abs() < 1e-6),
        "{f:?}"
    );
}

#[test]
fn too_few_requests_for_any_sli_test_is_no_data() {
    let mut bake = bake_sli(2, 0.5, 0.5, 0.9);
    bake.iter_mut().for_each(|s| s.requests = 10.0);
    let e = run(&bake, &bake_res(2));
    assert_eq!(e.verdict, Verdict::NoData, "{}", e.summary());
    assert!(
        e.summary().contains("20 in the bake, need 50"),
        "{}",
        e.summary()
    );
}

/// The resource rules by table: (name, baseline, bake, verdict, breaches).
#[test]
fn resource_rules() {
    type Case = (
        &'static str,
        Vec<ResourceSample>,
        Vec<ResourceSample>,
        Verdict,
        Vec<Signal>,
    );
    let with = |mut samples: Vec<ResourceSample>, i: usize, edit: fn(&mut ResourceSample)| {
        edit(&mut samples[i]);
        samples
    };
    let cases: Vec<Case> = vec![
        (
            "quiet",
            baseline_res(),
            bake_res(5),
            Verdict::Healthy,
            vec![],
        ),
        (
            "OOM kill in the bake, none before",
            baseline_res(),
            with(bake_res(2), 1, |s| s.oom_kills = 1),
            Verdict::Breach,
            vec![Signal::OomKills],
        ),
        (
            "OOM kill at the baseline's rate (1 in 30 → 1 in 30)",
            with(baseline_res(), 3, |s| s.oom_kills = 1),
            with(bake_res(30), 29, |s| s.oom_kills = 1),
            Verdict::Healthy,
            vec![],
        ),
        (
            "2 restarts in 15 bake intervals vs 2 in 30 before (expected 1)",
            with(with(baseline_res(), 3, |s| s.restarts = 1), 20, |s| {
                s.restarts = 1
            }),
            with(bake_res(15), 4, |s| s.restarts = 2),
            Verdict::Breach,
            vec![Signal::Restarts],
        ),
        (
            "throttling 2 % → 30 %",
            baseline_res(),
            bake_res(3)
                .into_iter()
                .map(|s| ResourceSample {
                    throttled_ratio: Some(0.30),
                    ..s
                })
                .collect(),
            Verdict::Breach,
            vec![Signal::Throttling],
        ),
        (
            "throttling 2 % → 30 % in a single interval: needs 2",
            baseline_res(),
            with(bake_res(1), 0, |s| s.throttled_ratio = Some(0.30)),
            Verdict::Healthy,
            vec![],
        ),
        (
            "throttling 2 % → 11 %: within the 10-point rise",
            baseline_res(),
            bake_res(3)
                .into_iter()
                .map(|s| ResourceSample {
                    throttled_ratio: Some(0.11),
                    ..s
                })
                .collect(),
            Verdict::Healthy,
            vec![],
        ),
        (
            "readiness dip after the first interval",
            baseline_res(),
            with(bake_res(4), 2, |s| s.ready_ratio = Some(0.8)),
            Verdict::Breach,
            vec![Signal::Readiness],
        ),
        (
            "readiness dip in the first interval only (settling)",
            baseline_res(),
            with(bake_res(4), 0, |s| s.ready_ratio = Some(0.5)),
            Verdict::Healthy,
            vec![],
        ),
        (
            "a standing unready pod before and after is not a regression",
            baseline_res()
                .into_iter()
                .map(|s| ResourceSample {
                    ready_ratio: Some(0.9),
                    ..s
                })
                .collect(),
            bake_res(4)
                .into_iter()
                .map(|s| ResourceSample {
                    ready_ratio: Some(0.9),
                    ..s
                })
                .collect(),
            Verdict::Healthy,
            vec![],
        ),
    ];
    for (name, base, bake, verdict, breaches) in cases {
        // No SLI configured: resource signals only.
        let e = evaluate(&GuardPolicy::default(), None, None, &base, &bake);
        assert_eq!(e.verdict, verdict, "{name}: {}", e.summary());
        assert_eq!(breached(&e), breaches, "{name}: {}", e.summary());
        assert!(e.findings.iter().all(|f| !f.signal.is_sli()), "{name}");
    }
}

#[test]
fn resource_breach_overrides_missing_slis() {
    let mut bake = bake_res(2);
    bake[1].oom_kills = 2;
    let e = run(&[], &bake);
    assert_eq!(e.verdict, Verdict::Breach);
    assert_eq!(
        e.findings[0].message,
        "2 OOM kills in 2 bake intervals vs 0.0 expected from the baseline (0 in 30 intervals)"
    );
}

#[test]
fn no_sli_and_no_resource_data_is_no_data() {
    let e = evaluate(&GuardPolicy::default(), None, None, &baseline_res(), &[]);
    assert_eq!(e.verdict, Verdict::NoData, "{}", e.summary());
}

#[test]
fn sli_configured_on_one_side_only_is_no_data() {
    let bake = bake_sli(5, 0.001, 0.120, 0.180);
    let e = evaluate(
        &GuardPolicy::default(),
        None,
        Some(&bake),
        &baseline_res(),
        &bake_res(5),
    );
    assert_eq!(e.verdict, Verdict::NoData, "{}", e.summary());
}

#[test]
fn invalid_inputs_are_ignored_and_counted() {
    let mut base = baseline_sli();
    base[0].requests = f64::NAN; // 1
    base[1].errors = -3.0; // 1
    base[2].latency_p95_s = Some(f64::INFINITY); // 1
    base[3].latency_p99_s = Some(-0.1); // 1
    let mut bake = bake_sli(5, 0.001, 0.120, 0.180);
    bake[0].requests = f64::NEG_INFINITY; // 1
    bake[1].latency_p99_s = Some(f64::NAN); // 1
    let mut res = baseline_res();
    res[0].throttled_ratio = Some(f64::NAN); // 1
    res[1].ready_ratio = Some(1.5); // 1
    let mut bres = bake_res(5);
    bres[2].ready_ratio = Some(-1.0); // 1
    bres[3].throttled_ratio = Some(f64::INFINITY); // 1
    let e = evaluate(
        &GuardPolicy::default(),
        Some(&base),
        Some(&bake),
        &res,
        &bres,
    );
    assert_eq!(e.ignored_samples, 10);
    assert_eq!(e.verdict, Verdict::Healthy, "{}", e.summary());
    assert!(
        e.summary()
            .ends_with("; 10 input values ignored (NaN, infinite, negative or out of range)")
    );
    for f in &e.findings {
        assert!(f.baseline.is_finite() && f.observed.is_finite() && f.threshold.is_finite());
    }
}

#[test]
fn signed_numbers_never_show_negative_zero() {
    assert_eq!(signed(-0.000_000_1, 1), "+0.0");
    assert_eq!(signed(-0.05, 1), "-0.1");
    assert_eq!(signed(1.9, 3), "+1.900");
    assert_eq!(signed(0.0, 0), "+0");
    assert_eq!(signed(-49.6, 0), "-50");
}

#[test]
fn summaries() {
    let healthy = run(&bake_sli(2, 0.001, 0.120, 0.180), &bake_res(2));
    assert_eq!(
        healthy.summary(),
        "Healthy: error ratio, OOM kills, restarts, CPU throttling, readiness within bounds \
         (not judged yet: p95 latency, p99 latency)"
    );
    let no_data = run(&[], &bake_res(3));
    assert_eq!(
        no_data.summary(),
        "No data: error ratio: no requests in the bake; \
         p95 latency: 0 bake intervals with latency so far, need 3; \
         p99 latency: 0 bake intervals with latency so far, need 3"
    );
}

#[test]
fn policy_validation_and_fallback() {
    assert_eq!(GuardPolicy::default().validate(), Ok(()));
    let bad = GuardPolicy {
        alpha: f64::NAN,
        ..GuardPolicy::default()
    };
    let err = bad.validate().expect_err("NaN alpha");
    assert_eq!(err.field, "alpha");
    assert_eq!(
        err.to_string(),
        "guard policy `alpha` is NaN; expected a number between 0 and 1, exclusive"
    );
    let bad_ready = GuardPolicy {
        min_ready_ratio: 2.0,
        ..GuardPolicy::default()
    };
    assert_eq!(
        bad_ready.validate().map_err(|e| e.field),
        Err("min_ready_ratio")
    );
    // A NaN α would make every test fail to reject; the default is used instead.
    let bake = bake_sli(10, 0.02, 0.120, 0.180);
    let e = evaluate(
        &bad,
        Some(&baseline_sli()),
        Some(&bake),
        &baseline_res(),
        &bake_res(10),
    );
    assert_eq!(e.verdict, Verdict::Breach);
}

#[test]
fn serde_names_are_stable() {
    let policy: GuardPolicy = serde_json::from_str("{}").expect("all keys default");
    assert_eq!(policy, GuardPolicy::default());
    assert!(serde_json::from_str::<GuardPolicy>(r#"{"alpah": 0.05}"#).is_err());
    assert_eq!(
        serde_json::to_string(&Verdict::NoData).ok().as_deref(),
        Some(r#""no_data""#)
    );
    assert_eq!(
        serde_json::to_string(&Signal::LatencyP99).ok().as_deref(),
        Some(r#""latency_p99""#)
    );
    let e = run(&bake_sli(3, 0.02, 0.180, 0.270), &bake_res(3));
    let json = serde_json::to_string(&e).expect("serialize");
    let back: Evaluation = serde_json::from_str(&json).expect("deserialize");
    // serde_json may round the last bit of a float; the decision survives.
    assert_eq!(back.verdict, e.verdict);
    assert_eq!(breached(&back), breached(&e));
    assert_eq!(back.summary(), e.summary());
    assert!(json.contains(r#""signal":"error_ratio""#), "{json}");
    assert!(json.contains(r#""ignored_samples":0"#), "{json}");
}

fn wild_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => 0.0f64..2000.0,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => -1000.0f64..0.0,
        1 => Just(f64::MAX),
        1 => Just(0.0),
        1 => any::<f64>(),
    ]
}

fn wild_ratio() -> impl Strategy<Value = Option<f64>> {
    prop::option::of(prop_oneof![3 => 0.0f64..=1.0, 1 => wild_f64()])
}

fn wild_sli() -> impl Strategy<Value = SliSample> {
    (
        0i64..10_000,
        wild_f64(),
        wild_f64(),
        prop::option::of(wild_f64()),
        prop::option::of(wild_f64()),
    )
        .prop_map(
            |(t, requests, errors, latency_p95_s, latency_p99_s)| SliSample {
                t,
                requests,
                errors,
                latency_p95_s,
                latency_p99_s,
            },
        )
}

fn wild_res() -> impl Strategy<Value = ResourceSample> {
    (
        0i64..10_000,
        prop_oneof![3 => Just(0u32), 1 => any::<u32>()],
        0u32..3,
        wild_ratio(),
        wild_ratio(),
    )
        .prop_map(
            |(t, oom_kills, restarts, throttled_ratio, ready_ratio)| ResourceSample {
                t,
                oom_kills,
                restarts,
                throttled_ratio,
                ready_ratio,
            },
        )
}

/// Realistic finite SLIs: latencies in [1 ms, 100 s] so power-of-two
/// scaling stays exact (no overflow, no subnormals).
fn finite_sli() -> impl Strategy<Value = SliSample> {
    (
        0i64..10_000,
        0.0f64..5000.0,
        0.0f64..1.0,
        0.001f64..100.0,
        1.0f64..3.0,
    )
        .prop_map(|(t, requests, error_share, p95, spread)| SliSample {
            t,
            requests: requests.floor(),
            errors: (requests * error_share * 0.05).floor(),
            latency_p95_s: Some(p95),
            latency_p99_s: Some(p95 * spread),
        })
}

fn assert_well_formed(e: &Evaluation) {
    for f in &e.findings {
        assert!(f.baseline.is_finite(), "{f:?}");
        assert!(f.observed.is_finite(), "{f:?}");
        assert!(f.threshold.is_finite(), "{f:?}");
        if let Some(p) = f.p_value {
            assert!((0.0..=1.0).contains(&p), "{f:?}");
        }
        assert!(
            !f.message.contains("NaN") && !f.message.contains("inf"),
            "{f:?}"
        );
    }
    assert_eq!(e.verdict == Verdict::Breach, e.breaches().next().is_some());
    let first_ok = e
        .findings
        .iter()
        .position(|f| !f.breach)
        .unwrap_or(e.findings.len());
    assert!(
        e.findings[first_ok..].iter().all(|f| !f.breach),
        "breaches first"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn never_panics_nor_yields_nan(
        base_sli in prop::option::of(prop::collection::vec(wild_sli(), 0..40)),
        bake_sli in prop::option::of(prop::collection::vec(wild_sli(), 0..12)),
        base_res in prop::collection::vec(wild_res(), 0..40),
        bake_res in prop::collection::vec(wild_res(), 0..12),
    ) {
        let e = evaluate(
            &GuardPolicy::default(),
            base_sli.as_deref(),
            bake_sli.as_deref(),
            &base_res,
            &bake_res,
        );
        assert_well_formed(&e);
        prop_assert!(!e.summary().is_empty());
    }

    #[test]
    fn scaling_latencies_keeps_the_verdict(
        base in prop::collection::vec(finite_sli(), 0..40),
        bake in prop::collection::vec(finite_sli(), 0..12),
        exponent in -6i32..=6,
    ) {
        // Powers of two scale floats exactly, so medians, thresholds and
        // ranks scale with no rounding at the tolerance boundary.
        let factor = 2f64.powi(exponent);
        let scale = |w: &[SliSample]| -> Vec<SliSample> {
            w.iter()
                .map(|s| SliSample {
                    latency_p95_s: s.latency_p95_s.map(|v| v * factor),
                    latency_p99_s: s.latency_p99_s.map(|v| v * factor),
                    ..s.clone()
                })
                .collect()
        };
        let policy = GuardPolicy::default();
        let res = baseline_res();
        let plain = evaluate(&policy, Some(&base), Some(&bake), &res, &res);
        let scaled = evaluate(&policy, Some(&scale(&base)), Some(&scale(&bake)), &res, &res);
        prop_assert_eq!(plain.verdict, scaled.verdict);
        prop_assert_eq!(breached(&plain), breached(&scaled));
        let p = |e: &Evaluation| e.findings.iter().map(|f| f.p_value).collect::<Vec<_>>();
        prop_assert_eq!(p(&plain), p(&scaled));
    }

    #[test]
    fn a_bake_identical_to_the_baseline_never_breaches(
        sli in prop::option::of(prop::collection::vec(wild_sli(), 0..30)),
        res in prop::collection::vec(wild_res(), 0..30),
    ) {
        let e = evaluate(&GuardPolicy::default(), sli.as_deref(), sli.as_deref(), &res, &res);
        prop_assert_ne!(e.verdict, Verdict::Breach, "{}", e.summary());
    }
}

#[test]
fn a_test_without_power_is_pending_not_healthy() {
    // Three baseline minutes with the same p99 (a service at rest) and four
    // bake minutes 20 % slower: no ordering of so few minutes reaches
    // alpha 0.01, so the latency is not judged and nothing may confirm.
    let flat = |end: i64, n: usize, p99: f64| -> Vec<SliSample> {
        (0..n)
            .map(|i| SliSample {
                t: end - (n - i) as i64 * MINUTE,
                requests: 7200.0,
                errors: 3.0,
                latency_p95_s: Some(0.025),
                latency_p99_s: Some(p99 + 0.001 * i as f64 * f64::from(p99 > 0.05)),
            })
            .collect()
    };
    let judge = |baseline: usize| {
        evaluate(
            &GuardPolicy::default(),
            Some(&flat(CHANGE_AT, baseline, 0.050)),
            Some(&flat(CHANGE_AT + 300, 4, 0.060)),
            &quiet_res(CHANGE_AT, baseline),
            &quiet_res(CHANGE_AT + 300, 4),
        )
    };
    let short = judge(3);
    assert!(short.pending, "{}", short.summary());
    assert_ne!(short.verdict, Verdict::Breach, "{}", short.summary());
    let skipped = short
        .skipped
        .iter()
        .find(|s| s.signal == Signal::LatencyP99)
        .expect("p99 skipped");
    assert!(
        skipped.reason.contains("cannot show a rise"),
        "{}",
        skipped.reason
    );
    // Five baseline minutes give the test its power: the rise is a breach.
    let long = judge(5);
    assert_eq!(long.verdict, Verdict::Breach, "{}", long.summary());
    assert!(long.breaches().any(|f| f.signal == Signal::LatencyP99));
}

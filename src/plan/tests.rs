//! Table tests, one case per guardrail, and property tests of the planner.

use proptest::prelude::*;

use super::*;
use crate::domain::{ContainerRef, WorkloadKind};
use crate::recommend::{Confidence, ConfidenceLevel, Evidence};
use crate::units::{Bytes, MilliCores};

/// Friday 2024-06-07 12:00 UTC.
const NOW: i64 = 1_717_761_600;
const HOUR_S: i64 = 3_600;
const DAY_S: i64 = 86_400;

fn workload(namespace: &str, name: &str) -> WorkloadRef {
    WorkloadRef {
        namespace: namespace.into(),
        kind: WorkloadKind::Deployment,
        name: name.into(),
    }
}

fn res(cpu_m: u64, mem_mib: u64) -> Resources {
    Resources {
        cpu_request: Some(MilliCores(cpu_m)),
        cpu_limit: None,
        memory_request: Some(Bytes::mib(mem_mib)),
        memory_limit: Some(Bytes::mib(mem_mib)),
    }
}

fn view(w: &WorkloadRef, containers: &[(&str, Resources)]) -> WorkloadView {
    WorkloadView {
        workload: w.clone(),
        mode: None,
        paused: false,
        replicas: 3,
        ready: true,
        rolling_out: false,
        gitops_managed: false,
        change_in_flight: false,
        approved_change: None,
        containers: containers
            .iter()
            .map(|(n, r)| (n.to_string(), *r))
            .collect(),
        last_confirmed_at: None,
        held_until: None,
        recent_oom_bumps: Vec::new(),
        last_throttling_bump: None,
    }
}

fn rec(
    w: &WorkloadRef,
    container: &str,
    current: Resources,
    recommended: Resources,
    savings: f64,
) -> Recommendation {
    Recommendation {
        target: ContainerRef {
            workload: w.clone(),
            container: container.into(),
        },
        current,
        recommended,
        confidence: Confidence {
            score: 1.0,
            level: ConfidenceLevel::High,
        },
        savings_per_month_usd: savings,
        evidence: Evidence {
            replicas: 3,
            ..Evidence::default()
        },
        skipped_reason: None,
    }
}

fn auto() -> Guardrails {
    Guardrails {
        mode: Mode::Auto,
        ..Guardrails::default()
    }
}

fn run(
    g: &Guardrails,
    views: &[WorkloadView],
    recs: &[Recommendation],
    in_flight: usize,
) -> Vec<Decision> {
    plan(
        NOW,
        g,
        views,
        recs,
        in_flight,
        &mut RateBudget::new(g.changes_per_hour),
    )
}

/// One workload `shop/web` with container `app`: 1000m / 1000Mi now,
/// 200m / 400Mi recommended, $30/month of waste.
struct Case {
    guardrails: Guardrails,
    view: WorkloadView,
    rec: Recommendation,
    in_flight: usize,
}

fn base() -> Case {
    let w = workload("shop", "web");
    let current = res(1000, 1000);
    Case {
        guardrails: auto(),
        view: view(&w, &[("app", current)]),
        rec: rec(&w, "app", current, res(200, 400), 30.0),
        in_flight: 0,
    }
}

#[derive(Debug)]
enum Expect {
    Apply(ChangeReason),
    Propose,
    /// A Propose, then a Skip with this fragment.
    HeldBack(&'static str),
    Skip(&'static str),
}

fn check(name: &str, case: Case, expect: Expect) -> Vec<Decision> {
    let decisions = run(
        &case.guardrails,
        std::slice::from_ref(&case.view),
        std::slice::from_ref(&case.rec),
        case.in_flight,
    );
    let ok = match (&expect, decisions.as_slice()) {
        (Expect::Apply(reason), [Decision::Apply(c)]) => c.reason == *reason,
        (Expect::Propose, [Decision::Propose(_)]) => true,
        (Expect::HeldBack(fragment), [Decision::Propose(_), Decision::Skip { reason, .. }]) => {
            reason.contains(fragment)
        }
        (Expect::Skip(fragment), [Decision::Skip { reason, .. }]) => reason.contains(fragment),
        _ => false,
    };
    assert!(ok, "{name}: expected {expect:?}, got {decisions:#?}");
    decisions
}

fn oom(mut case: Case) -> Case {
    case.rec.evidence.oom_kills = 2;
    case.rec.recommended = res(200, 1500);
    case
}

/// Throttled in 30 % of CFS periods under a 1000m limit, 1500m / 1500m
/// recommended; then `edit`.
fn throttled(edit: impl FnOnce(&mut Case)) -> Case {
    with(|c| {
        let limit = |mut r: Resources, m: u64| {
            r.cpu_limit = Some(MilliCores(m));
            r
        };
        c.view.containers[0].1 = limit(res(1000, 1000), 1000);
        c.rec.current = c.view.containers[0].1;
        c.rec.recommended = limit(res(1500, 1000), 1500);
        c.rec.evidence.cpu_throttled_ratio = Some(0.3);
        edit(c);
    })
}

fn with(edit: impl FnOnce(&mut Case)) -> Case {
    let mut case = base();
    edit(&mut case);
    case
}

#[test]
fn each_guardrail_decides_and_says_why() {
    use Expect::*;
    let friday_work_hours = FreezeWindow {
        days: vec![Day::Fri],
        start: TimeOfDay::parse("09:00").unwrap(),
        end: TimeOfDay::parse("17:00").unwrap(),
    };
    #[rustfmt::skip]
    let cases: Vec<(&str, Case, Expect)> = vec![
        ("auto applies a decrease", base(), Apply(ChangeReason::Savings)),
        ("observe proposes", with(|c| c.guardrails.mode = Mode::Observe), Propose),
        ("annotation overrides the global mode", with(|c| c.view.mode = Some(Mode::Observe)), Propose),
        ("annotation can enable auto", with(|c| { c.guardrails.mode = Mode::Observe; c.view.mode = Some(Mode::Auto) }), Apply(ChangeReason::Savings)),
        ("approve without approval proposes", with(|c| c.guardrails.mode = Mode::Approve), Propose),
        ("approve with a stale approval proposes", with(|c| { c.guardrails.mode = Mode::Approve; c.view.approved_change = Some("0123456789ab".into()) }), Propose),
        ("kill switch", with(|c| c.guardrails.paused = true), Skip("paused: guardrails.paused is true (the kill switch)")),
        ("paused workload", with(|c| c.view.paused = true), Skip("annotated tailor.dev/paused=true; remove the annotation")),
        ("excluded namespace", with(|c| c.guardrails.exclude_namespaces = vec!["kube-.*".into(), "sho.".into()]), Skip("excluded: namespace shop matches guardrails.exclude_namespaces[1] (\"sho.\")")),
        ("patterns are anchored", with(|c| c.guardrails.exclude_namespaces = vec!["sho".into()]), Apply(ChangeReason::Savings)),
        ("gitops", with(|c| c.view.gitops_managed = true), Skip("managed by GitOps with self-heal: tailor would be reverted by it; change the source instead")),
        ("own change in flight", with(|c| c.view.change_in_flight = true), Skip("still being rolled out or verified")),
        ("scaled to zero", with(|c| { c.view.replicas = 0; c.guardrails.allow_single_replica = true }), Skip("scaled to zero")),
        ("single replica", with(|c| c.view.replicas = 1), Skip("single replica: a rollout restarts the only pod; set guardrails.allow_single_replica: true")),
        ("single replica allowed", with(|c| { c.view.replicas = 1; c.guardrails.allow_single_replica = true }), Apply(ChangeReason::Savings)),
        ("not ready", with(|c| c.view.ready = false), Skip("not ready: some pods are not Ready")),
        ("rolling out", with(|c| c.view.rolling_out = true), Skip("rollout in progress")),
        ("freeze window", with(|c| c.guardrails.freeze_windows = vec![friday_work_hours.clone()]), Skip("freeze window: guardrails.freeze_windows[0] (fri 09:00-17:00 UTC) is in effect")),
        ("cooldown", with(|c| c.view.last_confirmed_at = Some(NOW - 2 * HOUR_S)), Skip("cooldown: a change was confirmed 2h ago and guardrails.cooldown is 1d; the next change may come in 22h")),
        ("cooldown over", with(|c| c.view.last_confirmed_at = Some(NOW - DAY_S)), Apply(ChangeReason::Savings)),
        ("held after a revert", with(|c| c.view.held_until = Some(NOW + DAY_S)), Skip("held after a revert until 2024-06-08 12:00 UTC (guardrails.hold_after_revert is 7d)")),
        ("hold over", with(|c| c.view.held_until = Some(NOW)), Apply(ChangeReason::Savings)),
        ("waste below the minimum", with(|c| { c.guardrails.min_monthly_savings_usd = 50.0 }), Skip("savings too small: $30.00/month is below guardrails.min_monthly_savings_usd ($50.00)")),
        ("the minimum does not hold back increases", with(|c| { c.guardrails.min_monthly_savings_usd = 50.0; c.rec.recommended = res(2000, 1000); c.rec.savings_per_month_usd = -20.0 }), Apply(ChangeReason::Increase)),
        ("another change in flight", with(|c| c.in_flight = 1), HeldBack("another change is in flight (max_in_flight=1)")),
        ("room for two", with(|c| { c.in_flight = 1; c.guardrails.max_in_flight = 2 }), Apply(ChangeReason::Savings)),
        ("nothing to change", with(|c| c.rec.recommended = c.rec.current), Skip("nothing to change: the recommendation equals the current values")),
        ("skipped container", with(|c| c.rec.skipped_reason = Some("no usage samples in the history window".into())), Skip("nothing to change: app: no usage samples in the history window")),
        ("container gone from the spec", with(|c| c.view.containers[0].0 = "other".into()), Skip("app: not in the workload's spec")),
        // Fast paths: at once, past every limit but the kill switch, GitOps and exclusion.
        ("OOM fast path", oom(with(|c| { c.in_flight = 5; c.view.ready = false; c.view.rolling_out = true; c.view.last_confirmed_at = Some(NOW); c.view.held_until = Some(NOW + DAY_S); c.view.replicas = 1; c.guardrails.freeze_windows = vec![friday_work_hours.clone()] })), Apply(ChangeReason::OomKill)),
        ("OOM fast path needs no approval", oom(with(|c| c.guardrails.mode = Mode::Approve)), Apply(ChangeReason::OomKill)),
        ("OOM fast path in observe", oom(with(|c| c.guardrails.mode = Mode::Observe)), Propose),
        ("OOM fast path stops at the kill switch", oom(with(|c| c.view.paused = true)), Skip("paused")),
        ("OOM fast path respects GitOps", oom(with(|c| c.view.gitops_managed = true)), Skip("managed by GitOps")),
        ("leak detector", oom(with(|c| c.view.recent_oom_bumps = vec![NOW - 6 * DAY_S, NOW - DAY_S, NOW - HOUR_S])), Skip("memory leak suspected: 3 OOM bumps in 7d; not raising memory again")),
        ("old bumps age out", oom(with(|c| c.view.recent_oom_bumps = vec![NOW - 8 * DAY_S, NOW - DAY_S, NOW - HOUR_S])), Apply(ChangeReason::OomKill)),
        ("leak stops normal memory increases too", with(|c| { c.rec.recommended = res(1000, 1500); c.view.recent_oom_bumps = vec![NOW - 3, NOW - 2, NOW - 1] }), Skip("memory leak suspected: 3 OOM bumps")),
        ("throttling fast path", throttled(|c| c.in_flight = 1), Apply(ChangeReason::Throttling)),
        ("removing the limit is the fast path too", throttled(|c| { c.rec.recommended.cpu_limit = None; c.in_flight = 1 }), Apply(ChangeReason::Throttling)),
        ("throttling without a limit is not a fast path", throttled(|c| { c.view.containers[0].1.cpu_limit = None; c.rec.current.cpu_limit = None; c.rec.recommended.cpu_limit = None; c.in_flight = 1 }), HeldBack("another change is in flight")),
        ("a request alone does not relieve throttling", throttled(|c| { c.rec.recommended.cpu_limit = Some(MilliCores(1000)); c.in_flight = 1 }), HeldBack("another change is in flight")),
        ("one throttling bump per cooldown", throttled(|c| { c.view.last_throttling_bump = Some(NOW - HOUR_S); c.in_flight = 1 }), HeldBack("another change is in flight")),
        ("the next bump after the cooldown", throttled(|c| { c.view.last_throttling_bump = Some(NOW - DAY_S); c.in_flight = 1 }), Apply(ChangeReason::Throttling)),
        ("light throttling is a normal increase", with(|c| { c.rec.recommended = res(1500, 1000); c.rec.evidence.cpu_throttled_ratio = Some(0.05); c.in_flight = 1 }), HeldBack("another change is in flight")),
    ];
    for (name, case, expect) in cases {
        check(name, case, expect);
    }
}

#[test]
fn the_rate_budget_holds_back_a_second_change() {
    let case = with(|c| c.guardrails.max_in_flight = 5);
    let mut budget = RateBudget::new(6);
    let views = [case.view];
    let recs = [case.rec];
    let first = plan(NOW, &case.guardrails, &views, &recs, 0, &mut budget);
    assert!(matches!(first.as_slice(), [Decision::Apply(_)]));
    let again = plan(NOW + 300, &case.guardrails, &views, &recs, 0, &mut budget);
    match again.as_slice() {
        [Decision::Propose(_), Decision::Skip { reason, .. }] => {
            assert!(
                reason.contains("rate limit: 6 changes per hour"),
                "{reason}"
            )
        }
        other => panic!("{other:#?}"),
    }
    let later = plan(NOW + 600, &case.guardrails, &views, &recs, 0, &mut budget);
    assert!(matches!(later.as_slice(), [Decision::Apply(_)]));
}

#[test]
fn approve_mode_applies_the_approved_fingerprint() {
    let mut case = with(|c| c.guardrails.mode = Mode::Approve);
    let proposed = check(
        "proposal",
        with(|c| c.guardrails.mode = Mode::Approve),
        Expect::Propose,
    );
    let Decision::Propose(change) = &proposed[0] else {
        unreachable!()
    };
    case.view.approved_change = Some(change.fingerprint.clone());
    let applied = check("approved", case, Expect::Apply(ChangeReason::Savings));
    let Decision::Apply(applied) = &applied[0] else {
        unreachable!()
    };
    assert_eq!(applied.fingerprint, change.fingerprint);
}

#[test]
fn a_decrease_steps_and_an_oom_bump_drops_decreases() {
    let decisions = check("step", base(), Expect::Apply(ChangeReason::Savings));
    let Decision::Apply(change) = &decisions[0] else {
        unreachable!()
    };
    let to = change.containers[0].to;
    assert_eq!(to.cpu_request, Some(MilliCores(750)));
    assert_eq!(to.memory_request, Some(Bytes::mib(750)));
    assert_eq!(to.memory_limit, Some(Bytes::mib(750)));
    assert!(!change.fast_path);
    // 1000m → 750m of a 1000m → 200m gap (0.3125) and 1000Mi → 750Mi of
    // 1000Mi → 400Mi (0.4167): the smaller share of $30.
    assert!((change.savings_per_month_usd - 30.0 * 250.0 / 800.0).abs() < 1e-9);

    let decisions = check("oom", oom(base()), Expect::Apply(ChangeReason::OomKill));
    let Decision::Apply(change) = &decisions[0] else {
        unreachable!()
    };
    assert!(change.fast_path);
    let to = change.containers[0].to;
    assert_eq!(
        to.cpu_request,
        Some(MilliCores(1000)),
        "CPU decrease dropped"
    );
    assert_eq!(to.memory_request, Some(Bytes::mib(1500)));
}

#[test]
fn one_change_covers_every_container_that_moves() {
    let w = workload("shop", "api");
    let (app, sidecar, same) = (res(1000, 1000), res(100, 128), res(50, 64));
    let v = view(&w, &[("sidecar", sidecar), ("app", app), ("same", same)]);
    let recs = [
        rec(&w, "sidecar", sidecar, res(200, 128), -1.0),
        rec(&w, "app", app, res(900, 1000), 2.0),
        rec(&w, "same", same, same, 0.0),
    ];
    let decisions = run(&auto(), &[v], &recs, 0);
    let [Decision::Apply(change)] = decisions.as_slice() else {
        panic!("{decisions:#?}")
    };
    let names: Vec<&str> = change
        .containers
        .iter()
        .map(|c| c.container.as_str())
        .collect();
    assert_eq!(names, ["app", "sidecar"]);
    assert_eq!(change.reason, ChangeReason::Increase);
    assert!((change.savings_per_month_usd - 1.0).abs() < 1e-9);
}

#[test]
fn changes_come_risk_first_then_by_savings_then_name() {
    let g = Guardrails {
        max_in_flight: 10,
        changes_per_hour: 3_600,
        ..auto()
    };
    let mut views = Vec::new();
    let mut recs = Vec::new();
    let mut add = |name: &str, recommended: Resources, savings: f64, oom_kills: u32| {
        let w = workload("shop", name);
        let current = res(1000, 1000);
        views.push(view(&w, &[("app", current)]));
        let mut r = rec(&w, "app", current, recommended, savings);
        r.evidence.oom_kills = oom_kills;
        recs.push(r);
    };
    add("b-small", res(800, 1000), 5.0, 0);
    add("a-small", res(800, 1000), 5.0, 0);
    add("big", res(200, 1000), 50.0, 0);
    add("more", res(2000, 1000), -10.0, 0);
    add("oom", res(1000, 2000), -5.0, 1);
    let decisions = run(&g, &views, &recs, 0);
    let order: Vec<(&str, bool)> = decisions
        .iter()
        .map(|d| (d.workload().name.as_str(), matches!(d, Decision::Apply(_))))
        .collect();
    // Burst 1: one normal change per instant, the rest wait for the budget.
    assert_eq!(
        order,
        [
            ("oom", true),
            ("more", true),
            ("big", false),
            ("big", false),
            ("a-small", false),
            ("a-small", false),
            ("b-small", false),
            ("b-small", false),
        ]
    );
}

#[test]
fn workloads_without_a_match_are_reported() {
    let w = workload("shop", "web");
    let gone = workload("shop", "gone");
    let decisions = run(
        &auto(),
        &[view(&w, &[("app", res(100, 100))])],
        &[rec(&gone, "app", res(100, 100), res(50, 100), 1.0)],
        0,
    );
    let reasons: Vec<(&str, &str)> = decisions
        .iter()
        .map(|d| match d {
            Decision::Skip { workload, reason } => (workload.name.as_str(), reason.as_str()),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(reasons[0].0 == "gone" && reasons[0].1.starts_with("not found in the cluster"));
    assert!(reasons[1].0 == "web" && reasons[1].1.starts_with("no recommendation"));
}

#[test]
fn change_ids_are_deterministic() {
    let case = base();
    let plan_at = |now: i64| {
        plan(
            now,
            &case.guardrails,
            std::slice::from_ref(&case.view),
            std::slice::from_ref(&case.rec),
            0,
            &mut RateBudget::new(6),
        )
    };
    let change = |d: Vec<Decision>| match d.into_iter().next() {
        Some(Decision::Apply(c)) => c,
        other => panic!("{other:?}"),
    };
    let (a, b, later) = (
        change(plan_at(NOW)),
        change(plan_at(NOW)),
        change(plan_at(NOW + 1)),
    );
    assert_eq!(a, b);
    assert_eq!(a.id.len(), 12);
    assert!(a.id.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_ne!(a.id, later.id, "the id names one cycle's change");
    assert_eq!(a.fingerprint, later.fingerprint, "approval survives cycles");
    // Pinned: fingerprints are stored in annotations, so they must not
    // change between releases.
    assert_eq!(
        canonical_text(&a.workload, &a.containers),
        "shop/Deployment/web|app:750,-,786432000,786432000"
    );
    assert_eq!(short_hash(""), "cbf29ce48422");
}

#[test]
fn decisions_serialize_with_a_tag() {
    let decisions = run(&auto(), &[base().view], &[base().rec], 0);
    let json = serde_json::to_string(&decisions).unwrap();
    assert!(json.starts_with(r#"[{"decision":"apply","id":""#), "{json}");
    assert!(json.contains(r#""reason":"savings""#), "{json}");
    let back: Vec<Decision> = serde_json::from_str(&json).unwrap();
    assert_eq!(back, decisions);
    let skip = Decision::Skip {
        workload: workload("a", "b"),
        reason: "why".into(),
    };
    let json = serde_json::to_string(&skip).unwrap();
    assert!(
        json.starts_with(r#"{"decision":"skip","workload":"#),
        "{json}"
    );
}

/// Guardrail keys are public API: each has a row in docs/guardrails.md.
#[test]
fn every_guardrail_is_documented() {
    let doc = include_str!("../../docs/guardrails.md");
    let mut g = Guardrails::default();
    g.freeze_windows.push(FreezeWindow {
        days: vec![Day::Sat],
        start: TimeOfDay::parse("00:00").unwrap(),
        end: TimeOfDay::parse("24:00").unwrap(),
    });
    let value = serde_yaml_ng::to_value(&g).unwrap();
    let mut keys = Vec::new();
    for (k, v) in value.as_mapping().unwrap() {
        let k = k.as_str().unwrap();
        keys.push(format!("guardrails.{k}"));
        if let Some(items) = v.as_sequence() {
            for item in items.iter().filter_map(|i| i.as_mapping()) {
                for sub in item.keys() {
                    keys.push(format!("guardrails.{k}[].{}", sub.as_str().unwrap()));
                }
            }
        }
    }
    assert_eq!(keys.len(), 16, "{keys:?}");
    for key in keys {
        assert!(
            doc.contains(&format!("| `{key}` |")),
            "docs/guardrails.md has no row for `{key}`"
        );
    }
}

// ---- properties ----

fn arb_mib() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::weighted(0.9, (0u64..1 << 35).prop_map(Bytes))
}

fn arb_cpu() -> impl Strategy<Value = Option<MilliCores>> {
    prop::option::weighted(0.9, (0u64..20_000).prop_map(MilliCores))
}

fn arb_resources() -> impl Strategy<Value = Resources> {
    (arb_cpu(), arb_cpu(), arb_mib(), arb_mib()).prop_map(|(cr, cl, mr, ml)| Resources {
        cpu_request: cr,
        cpu_limit: cl,
        memory_request: mr,
        memory_limit: ml,
    })
}

fn arb_mode() -> impl Strategy<Value = Mode> {
    prop_oneof![Just(Mode::Observe), Just(Mode::Approve), Just(Mode::Auto)]
}

/// A container: current, recommended, OOM kills, throttled ratio, savings, skipped.
type ContainerCase = (Resources, Resources, u32, Option<f64>, f64, bool);

fn arb_container() -> impl Strategy<Value = ContainerCase> {
    (
        arb_resources(),
        arb_resources(),
        prop_oneof![4 => Just(0u32), 1 => 1u32..3],
        prop::option::of(0.0f64..0.3),
        -50.0f64..50.0,
        prop::bool::weighted(0.1),
    )
}

/// One workload and its recommendations.
fn arb_workload(index: usize) -> impl Strategy<Value = (WorkloadView, Vec<Recommendation>)> {
    (
        prop::sample::select(vec!["shop", "kube-system", "batch"]),
        prop::collection::vec(arb_container(), 1..4),
        prop::option::weighted(0.3, arb_mode()),
        prop::bool::weighted(0.15),
        0u32..4,
        prop::bool::weighted(0.8),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.1),
        prop::option::weighted(0.3, 0..3 * DAY_S),
        prop::option::weighted(0.2, -DAY_S..DAY_S),
        prop::collection::vec(0..10 * DAY_S, 0..4),
    )
        .prop_map(
            move |(
                ns,
                containers,
                mode,
                paused,
                replicas,
                ready,
                rolling,
                gitops,
                confirmed,
                held,
                bumps,
            )| {
                let w = workload(ns, &format!("w{index}"));
                let mut v = view(&w, &[]);
                v.mode = mode;
                v.paused = paused;
                v.replicas = replicas;
                v.ready = ready;
                v.rolling_out = rolling;
                v.gitops_managed = gitops;
                v.last_confirmed_at = confirmed.map(|ago| NOW - ago);
                v.held_until = held.map(|d| NOW + d);
                v.recent_oom_bumps = bumps.into_iter().map(|ago| NOW - ago).collect();
                let mut recs = Vec::new();
                for (i, (current, recommended, oom, throttled, savings, skipped)) in
                    containers.into_iter().enumerate()
                {
                    let name = format!("c{i}");
                    v.containers.push((name.clone(), current));
                    let mut r = rec(&w, &name, current, recommended, savings);
                    r.evidence.oom_kills = oom;
                    r.evidence.cpu_throttled_ratio = throttled;
                    r.skipped_reason = skipped.then(|| "no usage samples".to_string());
                    recs.push(r);
                }
                (v, recs)
            },
        )
}

fn arb_fleet() -> impl Strategy<Value = (Vec<WorkloadView>, Vec<Recommendation>)> {
    (0usize..8)
        .prop_flat_map(|n| (0..n).map(arb_workload).collect::<Vec<_>>())
        .prop_map(|workloads| {
            let mut views = Vec::new();
            let mut recs = Vec::new();
            for (v, r) in workloads {
                views.push(v);
                recs.extend(r);
            }
            (views, recs)
        })
}

fn arb_guardrails() -> impl Strategy<Value = Guardrails> {
    (
        arb_mode(),
        1usize..4,
        1u32..20,
        0.01f64..0.99,
        0..2 * DAY_S,
        0.0f64..20.0,
        any::<bool>(),
        prop::bool::weighted(0.3),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        1u32..5,
        1..8 * DAY_S,
    )
        .prop_map(
            |(
                mode,
                max_in_flight,
                per_hour,
                ratio,
                cooldown,
                min_usd,
                single,
                exclude,
                freeze,
                paused,
                leak_max,
                leak_window,
            )| {
                Guardrails {
                    mode,
                    max_in_flight,
                    changes_per_hour: per_hour,
                    max_decrease_ratio: ratio,
                    cooldown: Duration::from_secs(cooldown as u64),
                    min_monthly_savings_usd: min_usd,
                    allow_single_replica: single,
                    exclude_namespaces: if exclude {
                        vec!["kube-.*".into()]
                    } else {
                        vec![]
                    },
                    freeze_windows: if freeze {
                        vec![FreezeWindow {
                            days: vec![Day::Fri],
                            start: TimeOfDay::parse("11:00").unwrap(),
                            end: TimeOfDay::parse("13:00").unwrap(),
                        }]
                    } else {
                        vec![]
                    },
                    paused,
                    leak_max_bumps: leak_max,
                    leak_window: Duration::from_secs(leak_window as u64),
                    ..Guardrails::default()
                }
            },
        )
}

fn changes(decisions: &[Decision]) -> impl Iterator<Item = &Change> {
    decisions.iter().filter_map(|d| match d {
        Decision::Apply(c) | Decision::Propose(c) => Some(c),
        Decision::Skip { .. } => None,
    })
}

fn normal_applies(decisions: &[Decision]) -> usize {
    decisions
        .iter()
        .filter(|d| matches!(d, Decision::Apply(c) if !c.fast_path))
        .count()
}

/// (from, to, rounding step, is a limit) for every value of a container change.
fn values(c: &ContainerChange) -> [(Option<u64>, Option<u64>, u64, bool); 4] {
    let (f, t) = (&c.from, &c.to);
    let cpu = |v: Option<MilliCores>| v.map(|v| v.0);
    let mem = |v: Option<Bytes>| v.map(|v| v.0);
    [
        (
            cpu(f.cpu_request),
            cpu(t.cpu_request),
            step::CPU_STEP.0,
            false,
        ),
        (cpu(f.cpu_limit), cpu(t.cpu_limit), step::CPU_STEP.0, true),
        (
            mem(f.memory_request),
            mem(t.memory_request),
            step::MEMORY_STEP.0,
            false,
        ),
        (
            mem(f.memory_limit),
            mem(t.memory_limit),
            step::MEMORY_STEP.0,
            true,
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn steps_stay_within_the_decrease_ratio(
        g in arb_guardrails(),
        (views, recs) in arb_fleet(),
        in_flight in 0usize..4,
    ) {
        let decisions = run(&g, &views, &recs, in_flight);
        for change in changes(&decisions) {
            for c in &change.containers {
                for (from, to, rounding, is_limit) in values(c) {
                    if change.fast_path {
                        prop_assert!(!step::is_increase(to, from, is_limit), "fast path decreased: {c:?}");
                    } else if let (Some(from), Some(to)) = (from, to) && to < from {
                        let allowed = from as f64 * g.max_decrease_ratio + rounding as f64;
                        prop_assert!(((from - to) as f64) <= allowed, "{from} -> {to}: {c:?}");
                    }
                }
                let to = &c.to;
                if let (Some(l), Some(r)) = (to.cpu_limit, to.cpu_request) {
                    prop_assert!(l >= r, "{c:?}");
                }
                if let (Some(l), Some(r)) = (to.memory_limit, to.memory_request) {
                    prop_assert!(l >= r, "{c:?}");
                }
            }
        }
    }

    #[test]
    fn normal_applies_fit_the_free_slots(
        g in arb_guardrails(),
        (views, recs) in arb_fleet(),
        in_flight in 0usize..4,
    ) {
        let decisions = run(&g, &views, &recs, in_flight);
        prop_assert!(normal_applies(&decisions) <= g.max_in_flight.saturating_sub(in_flight));
    }

    #[test]
    fn observe_mode_never_applies(
        g in arb_guardrails(),
        (mut views, recs) in arb_fleet(),
    ) {
        let g = Guardrails { mode: Mode::Observe, ..g };
        for v in &mut views {
            v.mode = v.mode.filter(|m| *m == Mode::Observe);
        }
        let decisions = run(&g, &views, &recs, 0);
        prop_assert!(!decisions.iter().any(|d| matches!(d, Decision::Apply(_))));
    }

    #[test]
    fn paused_workloads_never_change(
        g in arb_guardrails(),
        (views, recs) in arb_fleet(),
    ) {
        let decisions = run(&g, &views, &recs, 0);
        for d in &decisions {
            if let Decision::Apply(c) = d {
                prop_assert!(!g.paused);
                let view = views.iter().find(|v| v.workload == c.workload);
                prop_assert!(view.is_some_and(|v| !v.paused), "{c:?}");
            }
        }
    }

    #[test]
    fn every_workload_gets_one_decision(
        g in arb_guardrails(),
        (views, recs) in arb_fleet(),
        in_flight in 0usize..4,
    ) {
        let decisions = run(&g, &views, &recs, in_flight);
        let mut per_workload: BTreeMap<&WorkloadRef, Vec<&str>> = BTreeMap::new();
        for d in &decisions {
            let kind = match d {
                Decision::Apply(_) => "apply",
                Decision::Propose(_) => "propose",
                Decision::Skip { .. } => "skip",
            };
            per_workload.entry(d.workload()).or_default().push(kind);
        }
        prop_assert_eq!(per_workload.len(), views.len());
        for kinds in per_workload.values() {
            prop_assert!(
                matches!(kinds.as_slice(), ["apply"] | ["skip"] | ["propose"] | ["propose", "skip"]),
                "{kinds:?}"
            );
        }
        // Deterministic: the same inputs plan the same way.
        prop_assert_eq!(run(&g, &views, &recs, in_flight), decisions);
    }

    #[test]
    fn a_simulated_day_never_exceeds_the_hourly_rate(
        g in arb_guardrails(),
        (views, recs) in arb_fleet(),
    ) {
        let g = Guardrails { mode: Mode::Auto, paused: false, freeze_windows: vec![], ..g };
        // Always-eligible decreases on top of the arbitrary fleet.
        let mut views = views;
        let mut recs = recs;
        for i in 0..3 {
            let w = workload("steady", &format!("s{i}"));
            views.push(view(&w, &[("app", res(4000, 4000))]));
            recs.push(rec(&w, "app", res(4000, 4000), res(100, 100), 1000.0));
        }
        let mut budget = RateBudget::new(g.changes_per_hour);
        let mut applied_at = Vec::new();
        for cycle in 0..24 * 12 {
            let now = NOW + cycle * 300;
            let decisions = plan(now, &g, &views, &recs, 0, &mut budget);
            applied_at.extend(std::iter::repeat_n(now, normal_applies(&decisions)));
        }
        prop_assert!(!applied_at.is_empty());
        for &start in &applied_at {
            let in_hour = applied_at.iter().filter(|&&t| t >= start && t < start + HOUR_S).count();
            prop_assert!(in_hour <= g.changes_per_hour as usize, "{in_hour} in the hour from {start}");
        }
    }
}

//! What `tailor report` adds to a recommend-only report for a FinOps
//! review: who owns each workload (a team label), where it runs and at
//! which prices (node pools), and what approving each change means (the
//! Recommendation it is filed under, the fingerprint `tailor approve`
//! records, or why the agent would leave it alone).
//!
//! Pure: the caller reads team labels and node pools from Prometheus
//! (`backtest::context`) and passes them in. The approval listing runs the
//! real planner ([`crate::plan::plan`]) in `approve` mode over the report's
//! recommendations, so the fingerprint shown is the one the agent proposes
//! for the same current values and recommendation.

use std::collections::BTreeMap;

use crate::cluster::crd::object_name;
use crate::config::{Config, PricingConfig, WELL_KNOWN_NODE_POOL_LABELS};
use crate::domain::{WorkloadKind, WorkloadRef};
use crate::plan::{self, ChangeReason, ContainerChange, Decision, Guardrails, Mode, WorkloadView};
use crate::recommend::Recommendation;

use super::{PricingSummary, Report, monthly_cost_usd};

/// The review's additions to a [`Report`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReviewContext {
    /// Where the default prices come from.
    pub pricing_source: String,
    /// Per node pool prices, in config order.
    pub node_pools: Vec<NodePoolPrice>,
    /// The node label read for pools; `None` when no pool is configured.
    pub node_pool_label: Option<String>,
    /// The pod label naming teams; `None`: no grouping by team.
    pub team_label: Option<String>,
    /// `guardrails.mode` of the config the report was made with.
    pub mode: Mode,
    /// How many containers the top-savings chart shows.
    pub top: usize,
    pub workloads: BTreeMap<WorkloadRef, WorkloadReview>,
}

/// One node pool's prices.
#[derive(Clone, Debug, PartialEq)]
pub struct NodePoolPrice {
    pub name: String,
    pub pricing: PricingSummary,
    pub source: Option<String>,
}

/// What the review knows of one workload.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WorkloadReview {
    /// The value of the team label on its pods.
    pub team: Option<String>,
    /// The node pool most of its pods ran on.
    pub node_pool: Option<String>,
    /// `None` when approvals were not asked for (a backtest's past instant).
    pub approval: Option<Approval>,
}

/// What approving a workload's recommendation means.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Approval {
    /// tailor only changes Deployments, StatefulSets and DaemonSets.
    #[default]
    NotManaged,
    /// The agent proposes this change and waits for a human.
    NeedsApproval {
        fingerprint: String,
        /// The first step: decreases are limited per change.
        step: Vec<ContainerChange>,
        savings_per_month_usd: f64,
    },
    /// An urgent increase (OOM kills, throttling) the agent makes without
    /// approval.
    FastPath {
        fingerprint: String,
        reason: ChangeReason,
        step: Vec<ContainerChange>,
    },
    /// The agent would leave the workload alone, and why.
    Skipped { reason: String },
}

impl Approval {
    /// One word for tables and CSV: `needs-approval`, `fast-path`,
    /// `skipped`, `not-managed`.
    pub fn status(&self) -> &'static str {
        match self {
            Approval::NotManaged => "not-managed",
            Approval::NeedsApproval { .. } => "needs-approval",
            Approval::FastPath { .. } => "fast-path",
            Approval::Skipped { .. } => "skipped",
        }
    }

    pub fn fingerprint(&self) -> Option<&str> {
        match self {
            Approval::NeedsApproval { fingerprint, .. }
            | Approval::FastPath { fingerprint, .. } => Some(fingerprint),
            _ => None,
        }
    }

    /// One line saying what happens next.
    pub fn detail(&self) -> String {
        match self {
            Approval::NotManaged => {
                "report only: tailor changes Deployments, StatefulSets and DaemonSets".to_string()
            }
            Approval::NeedsApproval { .. } => "waits for approval".to_string(),
            Approval::FastPath { reason, .. } => format!(
                "urgent increase ({}): applied without approval",
                match reason {
                    ChangeReason::OomKill => "OOM kills",
                    ChangeReason::Throttling => "CPU throttling",
                    ChangeReason::Increase => "increase",
                    ChangeReason::Savings => "savings",
                }
            ),
            Approval::Skipped { reason } => reason.clone(),
        }
    }
}

/// Whether tailor changes workloads of this kind (and files a
/// Recommendation for them).
pub fn managed(kind: WorkloadKind) -> bool {
    matches!(
        kind,
        WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet
    )
}

/// The Recommendation a workload's approval is recorded on,
/// `namespace/kind-name` (e.g. `shop/deployment-web`); `None` for kinds
/// tailor does not change.
pub fn recommendation_id(workload: &WorkloadRef) -> Option<String> {
    managed(workload.kind).then(|| {
        format!(
            "{}/{}",
            workload.namespace,
            object_name(workload.kind, &workload.name)
        )
    })
}

/// `tailor approve shop/deployment/web`; `None` for kinds tailor does not
/// change.
pub fn approve_command(workload: &WorkloadRef) -> Option<String> {
    managed(workload.kind).then(|| {
        format!(
            "tailor approve {}/{}/{}",
            workload.namespace,
            workload.kind.as_str().to_ascii_lowercase(),
            workload.name
        )
    })
}

impl ReviewContext {
    /// The prices, sources and labels of `config`, with no workload yet.
    pub fn from_config(config: &Config) -> ReviewContext {
        let pricing = &config.pricing;
        ReviewContext {
            pricing_source: pricing.source_text(),
            node_pools: pricing
                .node_pools
                .iter()
                .map(|pool| NodePoolPrice {
                    name: pool.name.clone(),
                    pricing: PricingSummary {
                        cpu_core_hour_usd: pool.cpu_core_hour_usd,
                        memory_gib_hour_usd: pool.memory_gib_hour_usd,
                    },
                    source: pool.source.clone(),
                })
                .collect(),
            node_pool_label: (!pricing.node_pools.is_empty()).then(|| {
                pricing
                    .node_pool_label
                    .clone()
                    .unwrap_or_else(|| WELL_KNOWN_NODE_POOL_LABELS.join(" or "))
            }),
            team_label: config.report.team_label.clone(),
            mode: config.guardrails.mode,
            top: config.report.top,
            workloads: BTreeMap::new(),
        }
    }

    pub fn pool(&self, name: &str) -> Option<&NodePoolPrice> {
        self.node_pools.iter().find(|p| p.name == name)
    }
}

/// The summary of a config's default prices.
pub fn pricing_summary(pricing: &PricingConfig) -> PricingSummary {
    PricingSummary {
        cpu_core_hour_usd: pricing.cpu_core_hour_usd,
        memory_gib_hour_usd: pricing.memory_gib_hour_usd,
    }
}

impl Report {
    /// The prices of the node pool `rec`'s workload runs on, or the
    /// default prices.
    pub fn pricing_for(&self, rec: &Recommendation) -> PricingSummary {
        self.review
            .as_ref()
            .and_then(|review| {
                let pool = review
                    .workloads
                    .get(&rec.target.workload)?
                    .node_pool
                    .as_deref()?;
                review.pool(pool).map(|p| p.pricing)
            })
            .unwrap_or(self.pricing)
    }

    /// Re-prices every recommendation with [`Report::pricing_for`]: the
    /// engine priced them with the default prices.
    pub fn reprice(&mut self) {
        let prices: Vec<PricingSummary> = self
            .recommendations
            .iter()
            .map(|rec| self.pricing_for(rec))
            .collect();
        for (rec, pricing) in self.recommendations.iter_mut().zip(prices) {
            let replicas = rec.evidence.cost_replicas();
            rec.savings_per_month_usd = monthly_cost_usd(&rec.current, replicas, &pricing)
                - monthly_cost_usd(&rec.recommended, replicas, &pricing);
        }
    }
}

/// What the planner makes of each workload in `approve` mode, as of `at`
/// (unix seconds), from the recommendations alone: every workload is taken
/// as ready, not rolling out, with no change in flight, no hold and no
/// approval yet. Workloads of kinds tailor does not change are
/// [`Approval::NotManaged`].
pub fn approvals(
    recommendations: &[Recommendation],
    guardrails: &Guardrails,
    at: i64,
) -> BTreeMap<WorkloadRef, Approval> {
    let mut views: BTreeMap<&WorkloadRef, WorkloadView> = BTreeMap::new();
    let mut out = BTreeMap::new();
    for rec in recommendations {
        let workload = &rec.target.workload;
        if !managed(workload.kind) {
            out.insert(workload.clone(), Approval::NotManaged);
            continue;
        }
        let view = views.entry(workload).or_insert_with(|| WorkloadView {
            workload: workload.clone(),
            mode: None,
            paused: false,
            replicas: 0,
            ready: true,
            rolling_out: false,
            gitops_managed: false,
            change_in_flight: false,
            approved_change: None,
            containers: Vec::new(),
            last_confirmed_at: None,
            held_until: None,
            recent_oom_bumps: Vec::new(),
            last_throttling_bump: None,
        });
        view.replicas = view.replicas.max(rec.evidence.replicas);
        view.containers
            .push((rec.target.container.clone(), rec.current));
    }
    let views: Vec<WorkloadView> = views.into_values().collect();
    let managed_recs: Vec<Recommendation> = recommendations
        .iter()
        .filter(|r| managed(r.target.workload.kind))
        .cloned()
        .collect();
    let guardrails = Guardrails {
        mode: Mode::Approve,
        ..guardrails.clone()
    };
    let mut budget = plan::RateBudget::new(guardrails.changes_per_hour);
    for decision in plan::plan(at, &guardrails, &views, &managed_recs, 0, &mut budget) {
        match decision {
            Decision::Propose(change) => {
                out.insert(
                    change.workload,
                    Approval::NeedsApproval {
                        fingerprint: change.fingerprint,
                        step: change.containers,
                        savings_per_month_usd: change.savings_per_month_usd,
                    },
                );
            }
            Decision::Apply(change) => {
                out.insert(
                    change.workload,
                    Approval::FastPath {
                        fingerprint: change.fingerprint,
                        reason: change.reason,
                        step: change.containers,
                    },
                );
            }
            // A held-back proposal is followed by its reason; the proposal
            // is what a reviewer acts on.
            Decision::Skip { workload, reason } => {
                out.entry(workload).or_insert(Approval::Skipped { reason });
            }
        }
    }
    out
}

/// Savings per group (namespace, team…), largest first; containers whose
/// group is unknown go under `unknown`.
pub fn savings_by(
    report: &Report,
    group: impl Fn(&Recommendation) -> Option<String>,
) -> Vec<(String, f64)> {
    let mut sums: BTreeMap<String, f64> = BTreeMap::new();
    for rec in &report.recommendations {
        let key = group(rec).unwrap_or_else(|| "(none)".to_string());
        *sums.entry(key).or_default() += rec.savings_per_month_usd;
    }
    let mut out: Vec<(String, f64)> = sums.into_iter().collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    out
}

/// The team of a recommendation's workload, when known.
pub fn team_of(report: &Report, rec: &Recommendation) -> Option<String> {
    report
        .review
        .as_ref()?
        .workloads
        .get(&rec.target.workload)?
        .team
        .clone()
}

/// The node pool of a recommendation's workload, when known.
pub fn node_pool_of(report: &Report, rec: &Recommendation) -> Option<String> {
    report
        .review
        .as_ref()?
        .workloads
        .get(&rec.target.workload)?
        .node_pool
        .clone()
}

/// One risk a reviewer should see before approving.
#[derive(Clone, Debug, PartialEq)]
pub struct Risk<'a> {
    pub rec: &'a Recommendation,
    /// Higher is worse: 3 OOM kills, 2 heavy throttling, 1 restarts or
    /// light throttling.
    pub severity: u8,
    pub what: String,
}

/// Throttling at or above this share of CFS periods is listed as a risk.
pub const THROTTLING_RISK_RATIO: f64 = 0.01;

/// OOM kills, CPU throttling and restarts in the history, from the
/// evidence the engine gathered; worst first.
pub fn risks(report: &Report) -> Vec<Risk<'_>> {
    let mut out = Vec::new();
    for rec in report.sorted_recommendations() {
        let e = &rec.evidence;
        let mut parts = Vec::new();
        let mut severity = 0;
        if e.oom_kills > 0 {
            severity = 3;
            parts.push(format!(
                "{} OOM kill{} in the history",
                e.oom_kills,
                if e.oom_kills == 1 { "" } else { "s" }
            ));
        }
        if let Some(ratio) = e
            .cpu_throttled_ratio
            .filter(|r| *r >= THROTTLING_RISK_RATIO)
        {
            severity = severity.max(if ratio >= plan::THROTTLING_FAST_PATH_RATIO {
                2
            } else {
                1
            });
            parts.push(format!(
                "CPU throttled in {:.1} % of periods",
                ratio * 100.0
            ));
        }
        let other_restarts = e.restarts.saturating_sub(e.oom_kills);
        if other_restarts > 0 {
            severity = severity.max(1);
            parts.push(format!(
                "{other_restarts} other restart{}",
                if other_restarts == 1 { "" } else { "s" }
            ));
        }
        if !parts.is_empty() {
            out.push(Risk {
                rec,
                severity,
                what: parts.join("; "),
            });
        }
    }
    out.sort_by_key(|risk| std::cmp::Reverse(risk.severity));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::report;
    use crate::units::{Bytes, MilliCores};

    /// 2025-06-01T12:00:00Z, the fixture's evaluation instant (a Sunday).
    const AT: i64 = 1_748_779_200;

    fn workload(namespace: &str, kind: WorkloadKind, name: &str) -> WorkloadRef {
        WorkloadRef {
            namespace: namespace.into(),
            kind,
            name: name.into(),
        }
    }

    #[test]
    fn ids_and_commands_name_the_recommendation_resource() {
        let web = workload("shop", WorkloadKind::Deployment, "web");
        assert_eq!(
            recommendation_id(&web).as_deref(),
            Some("shop/deployment-web")
        );
        assert_eq!(
            approve_command(&web).as_deref(),
            Some("tailor approve shop/deployment/web")
        );
        let db = workload("shop", WorkloadKind::StatefulSet, "db");
        assert_eq!(
            recommendation_id(&db).as_deref(),
            Some("shop/statefulset-db")
        );
        let nightly = workload("batch", WorkloadKind::CronJob, "nightly");
        assert_eq!(recommendation_id(&nightly), None);
        assert_eq!(approve_command(&nightly), None);
    }

    /// The fixture without checkout's throttling, which would make the
    /// removal of its CPU limit an urgent increase.
    fn unthrottled() -> Report {
        let mut report = report();
        for rec in &mut report.recommendations {
            rec.evidence.cpu_throttled_ratio = None;
        }
        report
    }

    #[test]
    fn approvals_come_from_the_planner_in_approve_mode() {
        // Throttled in 25 % of periods: removing the CPU limit is an urgent
        // increase, made at once and alone (requests wait).
        let listed = approvals(&report().recommendations, &Guardrails::default(), AT);
        let checkout = &listed[&workload("shop", WorkloadKind::Deployment, "checkout")];
        match checkout {
            Approval::FastPath {
                reason: ChangeReason::Throttling,
                step,
                ..
            } => {
                assert_eq!(step[0].to.cpu_limit, None);
                assert_eq!(step[0].to.cpu_request, Some(MilliCores(500)));
            }
            other => panic!("checkout: {other:?}"),
        }

        let report = unthrottled();
        let listed = approvals(&report.recommendations, &Guardrails::default(), AT);
        assert_eq!(listed.len(), 4, "{listed:#?}");

        // Three replicas, decreases: the first step takes 25 % off each request.
        let checkout = &listed[&workload("shop", WorkloadKind::Deployment, "checkout")];
        let Approval::NeedsApproval {
            fingerprint, step, ..
        } = checkout
        else {
            panic!("checkout: {checkout:?}");
        };
        assert_eq!(fingerprint.len(), 12, "{fingerprint}");
        assert_eq!(step.len(), 1);
        assert_eq!(step[0].container, "app");
        assert_eq!(step[0].to.cpu_request, Some(MilliCores(375)));
        assert_eq!(step[0].to.memory_request, Some(Bytes::mib(768)));

        // An increase also waits for a human.
        let ledger = &listed[&workload(
            "payments-platform-eu-west",
            WorkloadKind::StatefulSet,
            "ledger-reconciliation-batch-processor-worker",
        )];
        assert_eq!(ledger.status(), "needs-approval", "{ledger:?}");

        // Skipped by the engine: nothing to change, with the engine's reason.
        let legacy = &listed[&workload("shop", WorkloadKind::Deployment, "legacy")];
        match legacy {
            Approval::Skipped { reason } => {
                assert!(reason.contains("insufficient data"), "{reason}")
            }
            other => panic!("legacy: {other:?}"),
        }
        assert_eq!(
            listed[&workload("batch", WorkloadKind::CronJob, "nightly")],
            Approval::NotManaged
        );
    }

    #[test]
    fn the_listed_fingerprint_is_what_the_agent_applies_once_approved() {
        let report = unthrottled();
        let listed = approvals(&report.recommendations, &Guardrails::default(), AT);
        let checkout = workload("shop", WorkloadKind::Deployment, "checkout");
        let fingerprint = listed[&checkout]
            .fingerprint()
            .expect("fingerprint")
            .to_string();
        let rec = report
            .recommendations
            .iter()
            .find(|r| r.target.workload == checkout)
            .expect("checkout")
            .clone();
        let view = WorkloadView {
            workload: checkout.clone(),
            mode: None,
            paused: false,
            replicas: 3,
            ready: true,
            rolling_out: false,
            gitops_managed: false,
            change_in_flight: false,
            approved_change: Some(fingerprint.clone()),
            containers: vec![("app".into(), rec.current)],
            last_confirmed_at: None,
            held_until: None,
            recent_oom_bumps: Vec::new(),
            last_throttling_bump: None,
        };
        let guardrails = Guardrails {
            mode: Mode::Approve,
            ..Guardrails::default()
        };
        let mut budget = plan::RateBudget::new(guardrails.changes_per_hour);
        let decisions = plan::plan(AT, &guardrails, &[view], &[rec], 0, &mut budget);
        match decisions.as_slice() {
            [Decision::Apply(change)] => assert_eq!(change.fingerprint, fingerprint),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_single_replica_or_an_oom_kill_changes_what_approval_means() {
        let mut report = unthrottled();
        let checkout = report
            .recommendations
            .iter_mut()
            .find(|r| r.target.workload.name == "checkout")
            .expect("checkout");
        checkout.evidence.replicas = 1;
        let listed = approvals(&report.recommendations, &Guardrails::default(), AT);
        let status = &listed[&workload("shop", WorkloadKind::Deployment, "checkout")];
        assert!(
            matches!(status, Approval::Skipped { reason } if reason.contains("single replica")),
            "{status:?}"
        );

        let ledger = report
            .recommendations
            .iter_mut()
            .find(|r| r.target.workload.name.starts_with("ledger"))
            .expect("ledger");
        ledger.evidence.oom_kills = 2;
        ledger.recommended.memory_request = Some(Bytes::mib(512));
        let listed = approvals(&report.recommendations, &Guardrails::default(), AT);
        let status = listed
            .iter()
            .find(|(w, _)| w.name.starts_with("ledger"))
            .map(|(_, a)| a)
            .expect("ledger");
        assert!(
            matches!(
                status,
                Approval::FastPath {
                    reason: ChangeReason::OomKill,
                    ..
                }
            ),
            "{status:?}"
        );
        assert!(
            status.detail().contains("without approval"),
            "{}",
            status.detail()
        );
    }

    #[test]
    fn node_pool_prices_reprice_savings_and_totals() {
        let mut report = report();
        let checkout = workload("shop", WorkloadKind::Deployment, "checkout");
        let mut review = ReviewContext {
            node_pools: vec![NodePoolPrice {
                name: "spot".into(),
                pricing: PricingSummary {
                    cpu_core_hour_usd: 0.03,
                    memory_gib_hour_usd: 0.002,
                },
                source: None,
            }],
            ..ReviewContext::default()
        };
        review.workloads.insert(
            checkout.clone(),
            WorkloadReview {
                team: Some("storefront".into()),
                node_pool: Some("spot".into()),
                approval: None,
            },
        );
        // A pool nobody priced keeps the default prices.
        review.workloads.insert(
            workload("shop", WorkloadKind::Deployment, "legacy"),
            WorkloadReview {
                node_pool: Some("gpu".into()),
                ..WorkloadReview::default()
            },
        );
        report.review = Some(review);
        report.reprice();
        let rec = report
            .recommendations
            .iter()
            .find(|r| r.target.workload == checkout)
            .expect("checkout");
        // 3 × ((0.5 − 0.1) cores × 0.03 + (1 − 0.5) GiB × 0.002) × 730 = 28.47
        assert!(
            (rec.savings_per_month_usd - 28.47).abs() < 1e-9,
            "{}",
            rec.savings_per_month_usd
        );
        let totals = report.totals();
        // Was 54.75 + 25.55 + 0 − 3.65; checkout's 54.75 became 28.47.
        assert!((totals.savings_per_month_usd - (28.47 + 25.55 - 3.65)).abs() < 1e-9);
        // Checkout now costs 3 × (0.5 × 0.03 + 1 × 0.002) × 730 = 37.23, not 76.65.
        assert!((totals.current_cost_per_month_usd - (204.4 - 76.65 + 37.23)).abs() < 1e-9);
        let by_team = savings_by(&report, |r| team_of(&report, r));
        let names: Vec<&str> = by_team.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["storefront", "(none)"]);
        assert!((by_team[0].1 - 28.47).abs() < 1e-9);
        assert!((by_team[1].1 - (25.55 - 3.65)).abs() < 1e-9);
    }

    #[test]
    fn risks_put_oom_kills_first() {
        let mut report = report();
        report.recommendations[0].evidence.oom_kills = 2;
        report.recommendations[0].evidence.restarts = 3;
        let risks = risks(&report);
        assert_eq!(risks[0].severity, 3, "{risks:?}");
        assert_eq!(risks[0].what, "2 OOM kills in the history; 1 other restart");
        // checkout: throttled 25 % of periods and one restart.
        let checkout = risks
            .iter()
            .find(|r| r.rec.target.workload.name == "checkout")
            .expect("checkout");
        assert_eq!(checkout.severity, 2);
        assert_eq!(
            checkout.what,
            "CPU throttled in 25.0 % of periods; 1 other restart"
        );
    }
}

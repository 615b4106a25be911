//! `recommendations.tailor.dev/v1alpha1`: one `Recommendation` per
//! workload, in the workload's namespace, named `<kind>-<name>` in lower
//! case. Its spec names the workload; its status is written only by tailor
//! and holds the recommendation, the rollout of the change in flight (the
//! durable state an agent resumes from, DESIGN §6) and its verdict.
//!
//! The committed YAML in `deploy/crds/` is generated from these types by
//! `tailor crd` (a test checks they match).

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which workload a Recommendation is about.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "tailor.dev",
    version = "v1alpha1",
    kind = "Recommendation",
    namespaced,
    shortname = "rec",
    status = "RecommendationStatus",
    printcolumn = r#"{"name":"Workload","type":"string","jsonPath":".spec.targetRef.name"}"#,
    printcolumn = r#"{"name":"Current","type":"string","jsonPath":".status.summary.current"}"#,
    printcolumn = r#"{"name":"Recommended","type":"string","jsonPath":".status.summary.recommended"}"#,
    printcolumn = r#"{"name":"$/month saved","type":"number","jsonPath":".status.savingsPerMonthUsd"}"#,
    printcolumn = r#"{"name":"State","type":"string","jsonPath":".status.phase"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationSpec {
    pub target_ref: TargetRef,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetRef {
    /// `apps/v1`.
    pub api_version: String,
    /// `Deployment`, `StatefulSet` or `DaemonSet`.
    pub kind: String,
    pub name: String,
}

/// What tailor knows and did; written by tailor only.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationStatus {
    /// `observing`, `proposed`, `approved`, or the phase of the change in
    /// flight (`planned`, `rolling-out`, `baking`, `confirmed`,
    /// `reverting`, `reverted`, `abandoned`), or `held`.
    #[serde(default)]
    pub phase: String,
    /// Short text for `kubectl get rec`: `cpu 500m, memory 1Gi` per container.
    #[serde(default)]
    pub summary: Summary,
    #[serde(default)]
    pub containers: Vec<ContainerStatus>,
    #[serde(default)]
    pub savings_per_month_usd: f64,
    /// The change proposed or in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_id: Option<String>,
    /// What approval (`tailor.dev/approved` on this object) refers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
    /// The rollout record of the latest change (see `rollout::RolloutRecord`),
    /// as JSON: the state an agent resumes from after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "any_object")]
    pub rollout: Option<serde_json::Value>,
    /// One line: the verdict of the latest change and its numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Why nothing is proposed now (cooldown, hold, too little history…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    #[serde(default)]
    pub current: String,
    #[serde(default)]
    pub recommended: String,
}

/// One container's values, as integers like the JSON output contract
/// (`docs/output.md`): millicores and bytes, absent when not set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceValues {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_request_millicores: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_limit_millicores: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_request_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStatus {
    pub name: String,
    pub current: ResourceValues,
    pub recommended: ResourceValues,
    /// Values before tailor's last change (what a revert restores).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<ResourceValues>,
    #[serde(default)]
    pub confidence: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped_reason: Option<String>,
}

fn any_object(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": true
    })
}

impl From<crate::domain::Resources> for ResourceValues {
    fn from(r: crate::domain::Resources) -> Self {
        ResourceValues {
            cpu_request_millicores: r.cpu_request.map(|m| m.0),
            cpu_limit_millicores: r.cpu_limit.map(|m| m.0),
            memory_request_bytes: r.memory_request.map(|b| b.0),
            memory_limit_bytes: r.memory_limit.map(|b| b.0),
        }
    }
}

impl From<ResourceValues> for crate::domain::Resources {
    fn from(v: ResourceValues) -> Self {
        crate::domain::Resources {
            cpu_request: v.cpu_request_millicores.map(crate::units::MilliCores),
            cpu_limit: v.cpu_limit_millicores.map(crate::units::MilliCores),
            memory_request: v.memory_request_bytes.map(crate::units::Bytes),
            memory_limit: v.memory_limit_bytes.map(crate::units::Bytes),
        }
    }
}

/// The Recommendation's name for a workload: `deployment-web`.
pub fn object_name(kind: crate::domain::WorkloadKind, name: &str) -> String {
    format!("{}-{}", kind.as_str().to_ascii_lowercase(), name)
}

/// Where the generated CRD is committed, relative to the repository root.
pub const CRD_PATH: &str = "deploy/crds/recommendations.tailor.dev.yaml";

/// The `recommendations.tailor.dev` CustomResourceDefinition as YAML, with a
/// header saying it is generated: what `tailor crd` prints and what
/// `deploy/crds/` holds.
pub fn crd_yaml() -> String {
    use kube::CustomResourceExt;
    let body = serde_yaml_ng::to_string(&Recommendation::crd())
        .expect("a CRD is plain data with string keys, so it always serializes to YAML");
    format!(
        "# generated by `tailor crd`; do not edit.\n\
         # Regenerate after changing src/cluster/crd.rs: tailor crd > {CRD_PATH}\n\
         ---\n{body}"
    )
}

#[cfg(test)]
mod tests {
    use kube::CustomResourceExt;

    use super::*;

    /// Set `TAILOR_BLESS=1` to rewrite the committed file from the types.
    #[test]
    fn the_committed_crd_matches_the_types() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(CRD_PATH);
        let generated = crd_yaml();
        if std::env::var_os("TAILOR_BLESS").is_some() {
            std::fs::write(&path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == generated,
            "{CRD_PATH} is out of date with src/cluster/crd.rs; regenerate it with \
             `tailor crd > {CRD_PATH}` (or `TAILOR_BLESS=1 cargo test --lib cluster::crd`) \
             and commit it"
        );
        let parsed: serde_json::Value = serde_yaml_ng::from_str(&committed).unwrap();
        assert_eq!(parsed["metadata"]["name"], "recommendations.tailor.dev");
    }

    /// Kubernetes refuses (v1) or prunes wrongly (non-structural) schemas
    /// whose nodes lack a `type`; `status.rollout` is free-form on purpose.
    #[test]
    fn the_schema_is_structural() {
        let crd = serde_json::to_value(Recommendation::crd()).unwrap();
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(schema.is_object(), "{crd}");
        let mut problems = Vec::new();
        check_structural(schema, "", &mut problems);
        assert!(problems.is_empty(), "not structural: {problems:#?}");
        let rollout = &schema["properties"]["status"]["properties"]["rollout"];
        assert_eq!(rollout["type"], "object", "{rollout}");
        assert_eq!(rollout["x-kubernetes-preserve-unknown-fields"], true);
        let spec = &schema["properties"]["spec"];
        assert_eq!(spec["required"], serde_json::json!(["targetRef"]));
    }

    fn check_structural(node: &serde_json::Value, at: &str, problems: &mut Vec<String>) {
        let here = if at.is_empty() { "." } else { at };
        if node.get("type").and_then(|t| t.as_str()).is_none() {
            problems.push(format!("{here}: no type"));
        }
        for banned in [
            "$ref",
            "anyOf",
            "oneOf",
            "allOf",
            "not",
            "definitions",
            "$defs",
        ] {
            if node.get(banned).is_some() {
                problems.push(format!("{here}: uses {banned}"));
            }
        }
        if let Some(properties) = node.get("properties").and_then(|p| p.as_object()) {
            for (name, child) in properties {
                check_structural(child, &format!("{at}.{name}"), problems);
            }
        }
        if let Some(items) = node.get("items") {
            check_structural(items, &format!("{at}[]"), problems);
        }
        if let Some(extra) = node.get("additionalProperties").filter(|a| a.is_object()) {
            check_structural(extra, &format!("{at}.*"), problems);
        }
    }

    #[test]
    fn the_crd_has_its_names_and_columns() {
        let crd = Recommendation::crd();
        assert_eq!(
            crd.metadata.name.as_deref(),
            Some("recommendations.tailor.dev")
        );
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, "v1alpha1");
        let columns: Vec<&str> = version
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(
            columns,
            [
                "Workload",
                "Current",
                "Recommended",
                "$/month saved",
                "State"
            ]
        );
        assert_eq!(crd.spec.names.short_names, Some(vec!["rec".to_string()]));
    }

    #[test]
    fn values_round_trip() {
        let r = crate::domain::Resources {
            cpu_request: Some(crate::units::MilliCores(250)),
            cpu_limit: None,
            memory_request: Some(crate::units::Bytes::mib(512)),
            memory_limit: Some(crate::units::Bytes::gib(1)),
        };
        assert_eq!(crate::domain::Resources::from(ResourceValues::from(r)), r);
        assert_eq!(
            object_name(crate::domain::WorkloadKind::StatefulSet, "db"),
            "statefulset-db"
        );
    }
}

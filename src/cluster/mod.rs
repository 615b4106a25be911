//! The Kubernetes adapter: the agent's [`crate::ports::Cluster`] over the
//! real API through kube-rs, the `Recommendation` custom resource, and the
//! annotations and labels tailor reads and writes (its public API, listed
//! in `docs/kubernetes.md`).

pub mod crd;
pub mod kube;
pub mod patch;
pub mod view;

/// Annotation keys and values tailor reads on workloads and namespaces.
pub mod annotations {
    /// `observe` | `approve` | `auto`: this workload's mode.
    pub const MODE: &str = "tailor.dev/mode";
    /// `"true"` on a workload or namespace: the kill switch.
    pub const PAUSED: &str = "tailor.dev/paused";
    /// `"true"`: tailor never changes this workload (recommendations only).
    pub const OPT_OUT: &str = "tailor.dev/opt-out";
    /// `in-place`: resize running pods through `pods/resize` where the
    /// cluster allows (≥ 1.33), instead of patching the template.
    pub const APPLY: &str = "tailor.dev/apply";
    /// Written by tailor: JSON map container → resources before its last
    /// change, what `tailor revert` restores.
    pub const LAST_KNOWN_GOOD: &str = "tailor.dev/last-known-good";
    /// Written by tailor: the id of the change that set the current values.
    pub const CHANGE_ID: &str = "tailor.dev/change-id";
    /// Written by tailor on a workload whose pods it resized in place: JSON
    /// [`crate::cluster::patch::InPlaceRecord`] (the values the running
    /// pods should have, whether the template has them too, and why a
    /// change went to the template after all).
    pub const IN_PLACE: &str = "tailor.dev/in-place";
    /// The value of [`APPLY`] that asks for in-place resizes.
    pub const APPLY_IN_PLACE: &str = "in-place";
    /// On a Recommendation: the fingerprint of the change a human approved.
    pub const APPROVED: &str = "tailor.dev/approved";
}

/// Markers of GitOps controllers that own a workload's spec.
pub mod gitops {
    /// Argo CD's tracking annotation (tracking method `annotation`).
    pub const ARGOCD_TRACKING_ID: &str = "argocd.argoproj.io/tracking-id";
    /// Argo CD's default tracking label.
    pub const ARGOCD_INSTANCE_LABEL: &str = "app.kubernetes.io/instance";
    /// Flux's kustomize-controller and helm-controller labels.
    pub const FLUX_KUSTOMIZE_NAME: &str = "kustomize.toolkit.fluxcd.io/name";
    pub const FLUX_HELM_NAME: &str = "helm.toolkit.fluxcd.io/name";
}

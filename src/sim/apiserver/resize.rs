//! In-place pod resize as Kubernetes 1.33 does it (KEP-1287, beta in 1.33):
//! what the API server accepts on `pods/{name}/resize`, and what the kubelet
//! then does with the new desired values.
//!
//! - **API server** ([`validate`]): only `spec.containers[*].resources`
//!   change (the rest of the body is dropped by the store); containers may
//!   not be renamed or reordered; a request or limit may not be removed; the
//!   pod's QoS class may not change; a memory limit may not decrease unless
//!   the container's memory `resizePolicy` is `RestartContainer`. Each
//!   failure is a 422 `Invalid` worded like the real validation.
//! - **Kubelet** ([`admit`]): a resize whose pod requests exceed the node's
//!   allocatable is `Infeasible` (never retried until the spec changes);
//!   one that fits the node but not next to the other pods' allocated
//!   requests is `Deferred` (retried every tick); otherwise it is allocated,
//!   `PodResizeInProgress` for `resize_ticks` ticks, then actuated
//!   (`status.containerStatuses[].resources`), restarting only containers
//!   whose `resizePolicy` for a changed resource is `RestartContainer`.
//!
//! Pure: JSON in, JSON or decisions out.

use serde_json::{Value, json};

use super::store::{ApiError, quantity_text};
use crate::cluster::patch::{self, QosClass, restart_policy};
use crate::domain::Resources;
use crate::units::{Bytes, MilliCores};

/// The first minor version that serves `pods/resize` by default (the
/// `InPlacePodVerticalScaling` gate went beta, on by default, in 1.33).
pub const MIN_MINOR: u32 = 33;

pub const PENDING: &str = "PodResizePending";
pub const IN_PROGRESS: &str = "PodResizeInProgress";

/// A container's CPU and memory requests and limits, parsed (unparsable
/// values read as unset).
pub fn resources_of(container: &Value) -> Resources {
    let q = |pointer: &str| container.pointer(pointer).map(quantity_text);
    Resources {
        cpu_request: q("/resources/requests/cpu").and_then(|t| t.parse::<MilliCores>().ok()),
        cpu_limit: q("/resources/limits/cpu").and_then(|t| t.parse::<MilliCores>().ok()),
        memory_request: q("/resources/requests/memory").and_then(|t| t.parse::<Bytes>().ok()),
        memory_limit: q("/resources/limits/memory").and_then(|t| t.parse::<Bytes>().ok()),
    }
}

fn containers(pod: &Value) -> &[Value] {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The pod's QoS class, as the API server computes it.
pub fn qos_class(pod: &Value) -> QosClass {
    let all: Vec<Resources> = containers(pod).iter().map(resources_of).collect();
    patch::qos_class(&all)
}

/// The API server's checks on a resize, `old` the stored pod and `new` the
/// pod the request would leave (already reduced to resource changes).
pub fn validate(name: &str, old: &Value, new: &Value) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    let (before, after) = (containers(old), containers(new));
    for (i, (o, n)) in before.iter().zip(after).enumerate() {
        if o.get("name") != n.get("name") {
            errors.push(format!(
                "spec.containers[{i}].name: Forbidden: containers may not be renamed or reordered on resize"
            ));
            continue;
        }
        for section in ["requests", "limits"] {
            let names = |c: &Value| -> Vec<String> {
                c.pointer(&format!("/resources/{section}"))
                    .and_then(Value::as_object)
                    .map(|m| m.keys().cloned().collect())
                    .unwrap_or_default()
            };
            for resource in names(o) {
                let pointer = format!("/resources/{section}/{resource}");
                let was = o.pointer(&pointer).map(quantity_text);
                let is = n.pointer(&pointer).map(quantity_text);
                if resource != "cpu" && resource != "memory" {
                    if was != is {
                        errors.push(format!(
                            "spec.containers[{i}].resources.{section}[{resource}]: Forbidden: \
                             only cpu and memory resources are mutable"
                        ));
                    }
                } else if is.is_none() {
                    errors.push(format!(
                        "spec.containers[{i}].resources.{section}[{resource}]: Forbidden: \
                         resource {section} cannot be removed"
                    ));
                }
            }
        }
        let (was, is) = (resources_of(o), resources_of(n));
        let lowered = matches!((was.memory_limit, is.memory_limit), (Some(a), Some(b)) if b < a);
        if lowered && restart_policy(o, "memory") != "RestartContainer" {
            errors.push(format!(
                "spec.containers[{i}].resources.limits[memory]: Forbidden: memory limits cannot \
                 be decreased unless resizePolicy is RestartContainer"
            ));
        }
    }
    if errors.is_empty() && qos_class(old) != qos_class(new) {
        errors.push("spec: Forbidden: Pod QOS Class may not change as a result of resizing".into());
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(format!(
            "Pod {name:?} is invalid: {}",
            errors.join(", ")
        )))
    }
}

/// CPU and memory requested by a set of containers' resources.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Requests {
    pub cpu: MilliCores,
    pub memory: Bytes,
}

impl Requests {
    fn add(self, r: &Resources) -> Requests {
        // The API server defaults a missing request to the limit.
        let cpu = r.cpu_request.or(r.cpu_limit).unwrap_or(MilliCores(0));
        let memory = r.memory_request.or(r.memory_limit).unwrap_or(Bytes(0));
        Requests {
            cpu: MilliCores(self.cpu.0 + cpu.0),
            memory: Bytes(self.memory.0 + memory.0),
        }
    }

    pub fn plus(self, other: Requests) -> Requests {
        Requests {
            cpu: MilliCores(self.cpu.0 + other.cpu.0),
            memory: Bytes(self.memory.0 + other.memory.0),
        }
    }

    pub fn minus(self, other: Requests) -> Requests {
        Requests {
            cpu: MilliCores(self.cpu.0.saturating_sub(other.cpu.0)),
            memory: Bytes(self.memory.0.saturating_sub(other.memory.0)),
        }
    }
}

/// What the pod asks for in its spec (the desired values).
pub fn desired_requests(pod: &Value) -> Requests {
    containers(pod)
        .iter()
        .map(resources_of)
        .fold(Requests::default(), |sum, r| sum.add(&r))
}

/// What the kubelet has allocated to the pod: `allocatedResources` of its
/// container statuses, or the spec for a pod that has none yet.
pub fn allocated_requests(pod: &Value) -> Requests {
    let statuses = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array);
    match statuses {
        Some(s) if s.iter().all(|c| c.get("allocatedResources").is_some()) => {
            s.iter().fold(Requests::default(), |sum, c| {
                let requests = json!({"resources": {"requests": c["allocatedResources"].clone()}});
                sum.add(&resources_of(&requests))
            })
        }
        _ => desired_requests(pod),
    }
}

/// The kubelet's answer to a resize.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Fits,
    /// Fits the node, not next to the pods already on it: retried.
    Deferred(String),
    /// More than the node has: not retried until the spec changes.
    Infeasible(String),
}

/// Whether `wanted` (the pod's new requests) fits a node with `capacity`
/// allocatable, `others` being what the other pods on it were allocated.
/// The messages are the kubelet's.
pub fn admit(wanted: Requests, others: Requests, capacity: Requests) -> Admission {
    let rows = [
        ("cpu", wanted.cpu.0, others.cpu.0, capacity.cpu.0),
        (
            "memory",
            wanted.memory.0,
            others.memory.0,
            capacity.memory.0,
        ),
    ];
    for (name, want, _, cap) in rows {
        if want > cap {
            return Admission::Infeasible(format!(
                "Node didn't have enough capacity: {name}, requested: {want}, capacity: {cap}"
            ));
        }
    }
    for (name, want, used, cap) in rows {
        if want + used > cap {
            return Admission::Deferred(format!(
                "Node didn't have enough resource: {name}, requested: {want}, used: {used}, capacity: {cap}"
            ));
        }
    }
    Admission::Fits
}

/// Whether every container runs with what its spec asks (parsed, so `1`
/// and `1000m` agree).
pub fn actuated(pod: &Value) -> bool {
    containers(pod).iter().all(|c| {
        let name = c.get("name");
        pod.pointer("/status/containerStatuses")
            .and_then(Value::as_array)
            .and_then(|s| s.iter().find(|s| s.get("name") == name))
            .is_none_or(|s| resources_of(s) == resources_of(c))
    })
}

/// Records the desired requests as allocated.
pub fn allocate(pod: &mut Value) {
    let wanted: Vec<(Value, Value)> = containers(pod)
        .iter()
        .map(|c| {
            let requests = c
                .pointer("/resources/requests")
                .cloned()
                .unwrap_or(json!({}));
            (c.get("name").cloned().unwrap_or(Value::Null), requests)
        })
        .collect();
    for_each_status(pod, |status| {
        if let Some((_, requests)) = wanted.iter().find(|(n, _)| Some(n) == status.get("name")) {
            status["allocatedResources"] = requests.clone();
        }
    });
}

/// Makes the spec's values the running ones. Returns the names of the
/// containers a `RestartContainer` policy restarts.
pub fn actuate(pod: &mut Value) -> Vec<String> {
    let spec: Vec<Value> = containers(pod).to_vec();
    let mut restarted = Vec::new();
    for_each_status(pod, |status| {
        let Some(c) = spec.iter().find(|c| c.get("name") == status.get("name")) else {
            return;
        };
        let (was, is) = (resources_of(status), resources_of(c));
        let cpu_changed = was.cpu_request != is.cpu_request || was.cpu_limit != is.cpu_limit;
        let memory_changed =
            was.memory_request != is.memory_request || was.memory_limit != is.memory_limit;
        if (cpu_changed && restart_policy(c, "cpu") == "RestartContainer")
            || (memory_changed && restart_policy(c, "memory") == "RestartContainer")
        {
            restarted.push(
                c.get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            );
        }
        status["resources"] = c.get("resources").cloned().unwrap_or(json!({}));
    });
    restarted
}

fn for_each_status(pod: &mut Value, mut f: impl FnMut(&mut Value)) {
    if let Some(statuses) = pod
        .pointer_mut("/status/containerStatuses")
        .and_then(Value::as_array_mut)
    {
        for s in statuses.iter_mut() {
            f(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(resources: Value, policy: Option<&str>) -> Value {
        let mut c = json!({"name": "app", "resources": resources});
        if let Some(p) = policy {
            c["resizePolicy"] = json!([{"resourceName": "memory", "restartPolicy": p}]);
        }
        json!({"metadata": {"name": "web-1"}, "spec": {"containers": [c]}})
    }

    #[test]
    fn qos_classes() {
        let rows = [
            (json!({}), QosClass::BestEffort),
            (json!({"requests": {"cpu": "1"}}), QosClass::Burstable),
            (
                json!({"limits": {"cpu": "1", "memory": "1Gi"}}),
                QosClass::Guaranteed,
            ),
            (
                json!({"requests": {"cpu": "1000m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1024Mi"}}),
                QosClass::Guaranteed,
            ),
            (
                json!({"requests": {"cpu": "500m"}, "limits": {"cpu": "1", "memory": "1Gi"}}),
                QosClass::Burstable,
            ),
        ];
        for (resources, class) in rows {
            assert_eq!(
                qos_class(&pod(resources.clone(), None)),
                class,
                "{resources}"
            );
        }
    }

    #[test]
    fn what_a_resize_may_not_do() {
        let old = pod(
            json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}),
            None,
        );
        let ok = pod(
            json!({"requests": {"cpu": "250m", "memory": "300Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}}),
            None,
        );
        assert_eq!(validate("web-1", &old, &ok), Ok(()));
        let rows = [
            (
                json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}),
                "spec.containers[0].resources.limits[cpu]: Forbidden: resource limits cannot be removed",
            ),
            (
                json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "400Mi"}}),
                "memory limits cannot be decreased unless resizePolicy is RestartContainer",
            ),
            (
                json!({"requests": {"cpu": "1", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}),
                "spec: Forbidden: Pod QOS Class may not change as a result of resizing",
            ),
        ];
        for (resources, message) in rows {
            let err = validate("web-1", &old, &pod(resources, None)).expect_err(message);
            assert_eq!((err.code, err.reason), (422, "Invalid"));
            assert!(
                err.message.starts_with("Pod \"web-1\" is invalid: "),
                "{err}"
            );
            assert!(err.message.contains(message), "{err}");
        }
        let restartable = pod(
            json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}}),
            Some("RestartContainer"),
        );
        let lower = pod(
            json!({"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "300Mi"}}),
            Some("RestartContainer"),
        );
        assert_eq!(validate("web-1", &restartable, &lower), Ok(()));
        let mut renamed = ok.clone();
        renamed["spec"]["containers"][0]["name"] = json!("other");
        let err = validate("web-1", &old, &renamed).expect_err("renamed");
        assert!(
            err.message.contains("may not be renamed or reordered"),
            "{err}"
        );
    }

    #[test]
    fn the_kubelet_admits_defers_or_refuses() {
        let r = |cpu: u64, gib: u64| Requests {
            cpu: MilliCores(cpu),
            memory: Bytes::gib(gib),
        };
        assert_eq!(admit(r(1000, 1), r(6000, 8), r(8000, 32)), Admission::Fits);
        assert_eq!(
            admit(r(3000, 1), r(6000, 8), r(8000, 32)),
            Admission::Deferred(
                "Node didn't have enough resource: cpu, requested: 3000, used: 6000, capacity: 8000"
                    .into()
            )
        );
        assert_eq!(
            admit(r(9000, 1), r(0, 0), r(8000, 32)),
            Admission::Infeasible(
                "Node didn't have enough capacity: cpu, requested: 9000, capacity: 8000".into()
            )
        );
    }

    #[test]
    fn actuation_restarts_only_restart_container_resources() {
        let mut p = pod(
            json!({"requests": {"cpu": "250m", "memory": "300Mi"}, "limits": {"memory": "300Mi"}}),
            Some("RestartContainer"),
        );
        p["status"] = json!({"containerStatuses": [{"name": "app", "resources":
            {"requests": {"cpu": "500m", "memory": "300Mi"}, "limits": {"memory": "300Mi"}}}]});
        assert!(!actuated(&p));
        allocate(&mut p);
        assert_eq!(
            p["status"]["containerStatuses"][0]["allocatedResources"],
            json!({"cpu": "250m", "memory": "300Mi"})
        );
        assert!(actuate(&mut p).is_empty(), "only CPU changed");
        assert!(actuated(&p));
        p["spec"]["containers"][0]["resources"]["limits"]["memory"] = json!("200Mi");
        p["spec"]["containers"][0]["resources"]["requests"]["memory"] = json!("200Mi");
        assert_eq!(actuate(&mut p), vec!["app".to_string()]);
    }
}

//! `/metrics`: what a real Prometheus would scrape from cAdvisor,
//! kube-state-metrics and the apps, with the names and labels
//! `sim::history` writes and `metrics::discovery` queries. Prometheus adds
//! `job` and `instance` itself when it scrapes.

use std::fmt::Write;

use serde_json::Value;

use super::ClusterState;
use super::controllers::LATENCY_BOUNDS;
use super::resources::find;
use super::store::{name_of, namespace_of, quantity_text};
use crate::units::{Bytes, MilliCores};

const NONE: &str = "<none>";

struct Text(String);

impl Text {
    fn family(&mut self, name: &str, kind: &str) {
        let _ = writeln!(self.0, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                let escaped = v
                    .replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n");
                let _ = write!(self.0, "{k}=\"{escaped}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

fn str_at<'v>(object: &'v Value, pointer: &str) -> &'v str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn controller(object: &Value) -> (String, String) {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .and_then(|refs| refs.iter().find(|r| r["controller"] == true))
        .map(|r| {
            (
                str_at(r, "/kind").to_string(),
                str_at(r, "/name").to_string(),
            )
        })
        .unwrap_or_else(|| (NONE.to_string(), NONE.to_string()))
}

fn unix(text: &str) -> Option<f64> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.timestamp() as f64)
}

/// A quantity in base units: cores for CPU, bytes for memory.
fn amount(resource: &str, value: &Value) -> Option<f64> {
    let text = quantity_text(value);
    match resource {
        "cpu" => text.parse::<MilliCores>().ok().map(MilliCores::cores),
        _ => text.parse::<Bytes>().ok().map(Bytes::as_f64),
    }
}

fn containers(pod: &Value) -> &[Value] {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn sanitize(key: &str) -> String {
    key.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The exposition text, as of now.
pub fn render(state: &ClusterState, _tick: std::time::Duration) -> String {
    let mut out = Text(String::with_capacity(64 * 1024));
    let (Some(pods_rt), Some(rs_rt), Some(hpa_rt), Some(nodes_rt)) = (
        find("", "v1", "pods"),
        find("apps", "v1", "replicasets"),
        find("autoscaling", "v2", "horizontalpodautoscalers"),
        find("", "v1", "nodes"),
    ) else {
        return out.0;
    };
    let pods: Vec<&Value> = state.store.iter(pods_rt, None).collect();
    let sim_of = |pod: &Value| {
        state
            .sim
            .pods
            .get(&(namespace_of(pod), name_of(pod).unwrap_or_default()))
    };

    // cAdvisor: the first container runs the model.
    type Pick = fn(&super::controllers::PodSim) -> f64;
    let cadvisor: [(&str, &str, Pick, bool); 4] = [
        (
            "container_cpu_usage_seconds_total",
            "counter",
            |s| s.cpu_seconds,
            false,
        ),
        (
            "container_memory_working_set_bytes",
            "gauge",
            |s| s.memory_bytes,
            false,
        ),
        (
            "container_cpu_cfs_periods_total",
            "counter",
            |s| s.cfs_periods,
            true,
        ),
        (
            "container_cpu_cfs_throttled_periods_total",
            "counter",
            |s| s.throttled_periods,
            true,
        ),
    ];
    for (name, kind, pick, limited) in cadvisor {
        out.family(name, kind);
        for pod in &pods {
            let Some(sim) = sim_of(pod) else { continue };
            let Some(c) = containers(pod).first() else {
                continue;
            };
            // cAdvisor reads the cgroup: the actuated limit, which after an
            // in-place resize may not be the spec's yet.
            let running = pod
                .pointer("/status/containerStatuses/0")
                .filter(|s| s.get("resources").is_some())
                .unwrap_or(c);
            if limited && running.pointer("/resources/limits/cpu").is_none() {
                continue;
            }
            let ns = namespace_of(pod);
            let pod_name = name_of(pod).unwrap_or_default();
            out.sample(
                name,
                &[
                    ("namespace", &ns),
                    ("pod", &pod_name),
                    ("container", str_at(c, "/name")),
                    ("image", str_at(c, "/image")),
                ],
                pick(sim),
            );
        }
    }

    out.family("kube_pod_owner", "gauge");
    for pod in &pods {
        let (kind, owner) = controller(pod);
        let is_controller = if kind == NONE { NONE } else { "true" };
        out.sample(
            "kube_pod_owner",
            &[
                ("namespace", &namespace_of(pod)),
                ("pod", &name_of(pod).unwrap_or_default()),
                ("uid", str_at(pod, "/metadata/uid")),
                ("owner_kind", &kind),
                ("owner_name", &owner),
                ("owner_is_controller", is_controller),
            ],
            1.0,
        );
    }
    out.family("kube_pod_start_time", "gauge");
    for pod in &pods {
        if let Some(t) = unix(str_at(pod, "/status/startTime")) {
            out.sample(
                "kube_pod_start_time",
                &[
                    ("namespace", &namespace_of(pod)),
                    ("pod", &name_of(pod).unwrap_or_default()),
                ],
                t,
            );
        }
    }
    out.family("kube_pod_labels", "gauge");
    for pod in &pods {
        let ns = namespace_of(pod);
        let pod_name = name_of(pod).unwrap_or_default();
        let labels: Vec<(String, String)> = pod
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| {
                        (
                            format!("label_{}", sanitize(k)),
                            v.as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let mut all: Vec<(&str, &str)> = vec![("namespace", &ns), ("pod", &pod_name)];
        all.extend(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        out.sample("kube_pod_labels", &all, 1.0);
    }

    out.family("kube_pod_container_info", "gauge");
    for pod in &pods {
        for c in containers(pod) {
            let name = str_at(c, "/name");
            let id = status_of(pod, name)
                .map(|s| str_at(s, "/containerID").to_string())
                .unwrap_or_default();
            out.sample(
                "kube_pod_container_info",
                &[
                    ("namespace", &namespace_of(pod)),
                    ("pod", &name_of(pod).unwrap_or_default()),
                    ("container", name),
                    ("image", str_at(c, "/image")),
                    ("container_id", &id),
                ],
                1.0,
            );
        }
    }
    for (family, which) in [
        ("kube_pod_container_resource_requests", "requests"),
        ("kube_pod_container_resource_limits", "limits"),
    ] {
        out.family(family, "gauge");
        for pod in &pods {
            for c in containers(pod) {
                for (resource, unit) in [("cpu", "core"), ("memory", "byte")] {
                    let Some(value) = c
                        .pointer(&format!("/resources/{which}/{resource}"))
                        .and_then(|v| amount(resource, v))
                    else {
                        continue;
                    };
                    out.sample(
                        family,
                        &[
                            ("namespace", &namespace_of(pod)),
                            ("pod", &name_of(pod).unwrap_or_default()),
                            ("container", str_at(c, "/name")),
                            ("node", str_at(pod, "/spec/nodeName")),
                            ("resource", resource),
                            ("unit", unit),
                        ],
                        value,
                    );
                }
            }
        }
    }
    out.family("kube_pod_container_status_restarts_total", "counter");
    for pod in &pods {
        for c in containers(pod) {
            let name = str_at(c, "/name");
            let restarts = status_of(pod, name)
                .and_then(|s| s.get("restartCount"))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            out.sample(
                "kube_pod_container_status_restarts_total",
                &[
                    ("namespace", &namespace_of(pod)),
                    ("pod", &name_of(pod).unwrap_or_default()),
                    ("container", name),
                ],
                restarts,
            );
        }
    }
    out.family("kube_pod_container_status_last_terminated_reason", "gauge");
    for pod in &pods {
        for c in containers(pod) {
            let name = str_at(c, "/name");
            let Some(reason) = status_of(pod, name)
                .and_then(|s| s.pointer("/lastState/terminated/reason"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            out.sample(
                "kube_pod_container_status_last_terminated_reason",
                &[
                    ("namespace", &namespace_of(pod)),
                    ("pod", &name_of(pod).unwrap_or_default()),
                    ("container", name),
                    ("reason", reason),
                ],
                1.0,
            );
        }
    }

    out.family("kube_replicaset_owner", "gauge");
    for rs in state.store.iter(rs_rt, None) {
        let (kind, owner) = controller(rs);
        let is_controller = if kind == NONE { NONE } else { "true" };
        out.sample(
            "kube_replicaset_owner",
            &[
                ("namespace", &namespace_of(rs)),
                ("replicaset", &name_of(rs).unwrap_or_default()),
                ("owner_kind", &kind),
                ("owner_name", &owner),
                ("owner_is_controller", is_controller),
            ],
            1.0,
        );
    }

    let hpas: Vec<&Value> = state.store.iter(hpa_rt, None).collect();
    out.family("kube_horizontalpodautoscaler_info", "gauge");
    for hpa in &hpas {
        out.sample(
            "kube_horizontalpodautoscaler_info",
            &[
                ("namespace", &namespace_of(hpa)),
                ("horizontalpodautoscaler", &name_of(hpa).unwrap_or_default()),
                (
                    "scaletargetref_api_version",
                    str_at(hpa, "/spec/scaleTargetRef/apiVersion"),
                ),
                (
                    "scaletargetref_kind",
                    str_at(hpa, "/spec/scaleTargetRef/kind"),
                ),
                (
                    "scaletargetref_name",
                    str_at(hpa, "/spec/scaleTargetRef/name"),
                ),
            ],
            1.0,
        );
    }
    out.family("kube_horizontalpodautoscaler_spec_target_metric", "gauge");
    for hpa in &hpas {
        let metrics = hpa
            .pointer("/spec/metrics")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for m in metrics {
            let Some(target) = m
                .pointer("/resource/target/averageUtilization")
                .and_then(Value::as_f64)
            else {
                continue;
            };
            out.sample(
                "kube_horizontalpodautoscaler_spec_target_metric",
                &[
                    ("namespace", &namespace_of(hpa)),
                    ("horizontalpodautoscaler", &name_of(hpa).unwrap_or_default()),
                    ("metric_name", str_at(m, "/resource/name")),
                    ("metric_target_type", "utilization"),
                ],
                target,
            );
        }
    }

    out.family("kube_node_status_allocatable", "gauge");
    for node in state.store.iter(nodes_rt, None) {
        for (resource, unit) in [("cpu", "core"), ("memory", "byte")] {
            let Some(value) = node
                .pointer(&format!("/status/allocatable/{resource}"))
                .and_then(|v| amount(resource, v))
            else {
                continue;
            };
            out.sample(
                "kube_node_status_allocatable",
                &[
                    ("node", &name_of(node).unwrap_or_default()),
                    ("resource", resource),
                    ("unit", unit),
                ],
                value,
            );
        }
    }

    // The apps' own SLIs.
    out.family("http_requests_total", "counter");
    for pod in &pods {
        let Some(sim) = sim_of(pod) else { continue };
        let ns = namespace_of(pod);
        let pod_name = name_of(pod).unwrap_or_default();
        for (code, value) in [("200", sim.requests_ok), ("500", sim.requests_error)] {
            out.sample(
                "http_requests_total",
                &[("namespace", &ns), ("pod", &pod_name), ("code", code)],
                value,
            );
        }
    }
    out.family("http_request_duration_seconds", "histogram");
    for pod in &pods {
        let Some(sim) = sim_of(pod) else { continue };
        let ns = namespace_of(pod);
        let pod_name = name_of(pod).unwrap_or_default();
        for (bound, count) in LATENCY_BOUNDS.iter().zip(&sim.buckets) {
            let le = bound.to_string();
            out.sample(
                "http_request_duration_seconds_bucket",
                &[("namespace", &ns), ("pod", &pod_name), ("le", &le)],
                *count,
            );
        }
        let labels = [("namespace", ns.as_str()), ("pod", pod_name.as_str())];
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        out.sample(
            "http_request_duration_seconds_bucket",
            &inf,
            sim.latency_count,
        );
        out.sample(
            "http_request_duration_seconds_sum",
            &labels,
            sim.latency_sum,
        );
        out.sample(
            "http_request_duration_seconds_count",
            &labels,
            sim.latency_count,
        );
    }
    out.0
}

fn status_of<'p>(pod: &'p Value, container: &str) -> Option<&'p Value> {
    pod.pointer("/status/containerStatuses")?
        .as_array()?
        .iter()
        .find(|s| s["name"] == container)
}

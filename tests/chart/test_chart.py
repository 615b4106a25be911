"""The Helm chart in deploy/helm/tailor, checked offline.

Helm itself comes from PyPI's helm-python-sdk (Helm v4's Go SDK as a shared
library: `helm_python.lint` is `helm lint`, `Chart.render` is `helm
template`); the Kubernetes schemas from kubernetes-validate; the agent's
config check from the real `tailor` binary; PromQL from the real `promtool`.
Run through scripts/chart-check (docs/testing.md, "The Helm chart").
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "tailor"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
SCHEMAS = Path(__file__).resolve().parent / "schemas"
RELEASE, NAMESPACE = "tailor", "tailor-system"
# Chart.yaml's kubeVersion floor, the API the agent's client is built for
# (k8s-openapi's v1_33), and the newest minor kubernetes-validate bundles.
K8S_VERSIONS = ["1.29", "1.33", kubernetes_validate.utils.latest_version()]
SECRETS_DIR = "/var/run/secrets/tailor"

# Values files: the chart's defaults, then each file under ci/.
VALUES = {"defaults": {}} | {p.name: yaml.safe_load(p.read_text()) for p in CI_VALUES}


def tailor_bin() -> str:
    path = os.environ.get("TAILOR_BIN")
    assert path and Path(path).is_file(), (
        "TAILOR_BIN must name the built tailor binary; run scripts/chart-check, which builds it"
    )
    return path


def promtool() -> str:
    path = shutil.which("promtool")
    assert path, "promtool is not installed: run scripts/test (it installs the Debian package prometheus)"
    return path


def render(values: dict) -> list[dict]:
    """Every object the chart renders for `values`, CRDs included."""
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
        crds = chart.crds
    objects = []
    for name, text in sorted(manifests.items()):
        if name.endswith("NOTES.txt"):
            continue
        objects.extend(o for o in yaml.safe_load_all(text) if o)
    for crd in crds:
        objects.extend(o for o in yaml.safe_load_all(crd["data"]) if o)
    return objects


def notes(values: dict) -> str:
    with helm.Chart.load(CHART) as chart:
        manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return next(text for name, text in manifests.items() if name.endswith("NOTES.txt"))


def only(objects: list[dict], kind: str) -> dict:
    found = [o for o in objects if o["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
    return found[0]


def merged(values: dict) -> dict:
    with helm.Chart.load(CHART) as chart:
        return chart.merge_values(values)


@pytest.fixture(scope="module", params=sorted(VALUES), ids=sorted(VALUES))
def case(request):
    values = VALUES[request.param]
    return request.param, values, render(values)


def test_kubernetes_versions():
    assert len(set(K8S_VERSIONS)) == 3 and K8S_VERSIONS[-1] >= "1.37", K8S_VERSIONS
    with helm.Chart.load(CHART) as chart:
        assert chart.metadata["kubeVersion"] == f">={K8S_VERSIONS[0]}.0-0"


def test_there_are_the_three_required_values_files():
    names = {p.name for p in CI_VALUES}
    assert {"auto-ha-values.yaml", "thanos-tenant-values.yaml"} <= names, names
    assert len(VALUES) >= 3


# --- lint -----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VALUES))
def test_lint_strict(name):
    report = helm.lint(CHART, VALUES[name], strict=True, namespace=NAMESPACE)
    assert report["total_charts_linted"] == 1
    # Severity 2 is a warning, 3 an error; strict lint fails on both.
    findings = [m for m in report["messages"] if m["severity"] >= 2]
    assert not findings and not report["errors"], findings or report["errors"]


def test_lint_fails_on_bad_values():
    """The lint above can fail: the same call on a bad value reports it."""
    report = helm.lint(CHART, {"mode": "yolo"}, strict=True, namespace=NAMESPACE)
    assert report["errors"], report
    assert any("/mode" in e for e in report["errors"]), report["errors"]


# --- Kubernetes schemas ------------------------------------------------------

OPERATOR_SCHEMAS = {
    "ServiceMonitor": "servicemonitor-monitoring-v1.json",
    "PrometheusRule": "prometheusrule-monitoring-v1.json",
}


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates_strictly(case, version):
    _, _, objects = case
    checked = 0
    for obj in objects:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # test_prometheus_operator_objects_validate
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']}: {e.message}")
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(p) for p in e.path)
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} against {version}: {path}: {e.message}")
        checked += 1
    assert checked >= 8, f"only {checked} objects rendered"


def test_strict_validation_rejects_an_unknown_field():
    """kubernetes-validate's strict mode does reject a field Kubernetes does not know."""
    deployment = only(render({}), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)


def operator_validator(kind: str) -> jsonschema.Draft7Validator:
    schema = json.loads((SCHEMAS / OPERATOR_SCHEMAS[kind]).read_text())
    return jsonschema.Draft7Validator(schema)


def test_prometheus_operator_objects_validate(case):
    name, values, objects = case
    operator = [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com/")]
    expected = {k for k, key in [("ServiceMonitor", "serviceMonitor"), ("PrometheusRule", "prometheusRule")]
                if merged(values)[key]["enabled"]}
    assert {o["kind"] for o in operator} == expected
    for obj in operator:
        errors = sorted(operator_validator(obj["kind"]).iter_errors(obj), key=str)
        assert not errors, f"{name}: {obj['kind']}: " + "; ".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors)


def test_operator_schemas_reject_a_wrong_object():
    objects = render(VALUES["auto-ha-values.yaml"])
    monitor = only(objects, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["interval"] = "30 seconds"
    assert list(operator_validator("ServiceMonitor").iter_errors(monitor))
    rule = only(objects, "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["expresion"] = "up"
    assert list(operator_validator("PrometheusRule").iter_errors(rule))


# --- policy ----------------------------------------------------------------

# What `tailor run` calls (src/cluster/kube.rs, src/daemon/leader.rs), as
# (apiGroup, resource) -> verbs. docs/install.md explains each.
CLUSTER_RULES = {
    ("apps", "deployments"): {"get", "list", "patch"},
    ("apps", "statefulsets"): {"get", "list", "patch"},
    ("apps", "daemonsets"): {"get", "list", "patch"},
    ("", "namespaces"): {"list"},
    ("tailor.dev", "recommendations"): {"get", "list", "create"},
    ("tailor.dev", "recommendations/status"): {"patch"},
    ("events.k8s.io", "events"): {"create"},
}
IN_PLACE_RULES = {
    ("", "pods"): {"list"},
    ("apps", "replicasets"): {"list"},
    ("", "pods/resize"): {"patch"},
}
LEASE_RULES = {("coordination.k8s.io", "leases"): {"get", "create", "update"}}


def grants(role: dict) -> dict:
    out: dict = {}
    for rule in role["rules"]:
        for field in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(field, []), f"{role['kind']} {role['metadata']['name']}: wildcard in {field}"
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                out.setdefault((group, resource), set()).update(rule["verbs"])
    return out


def test_rbac_is_exactly_what_tailor_uses(case):
    _, values, objects = case
    cluster = grants(only(objects, "ClusterRole"))
    in_place = merged(values)["rbac"].get("inPlaceResize", False)
    assert cluster == (CLUSTER_RULES | IN_PLACE_RULES if in_place else CLUSTER_RULES)
    roles = [o for o in objects if o["kind"] == "Role"]
    leader = merged(values)["leaderElection"]["enabled"]
    assert len(roles) == (1 if leader else 0)
    for role in roles:
        assert grants(role) == LEASE_RULES
        named = [r for r in role["rules"] if set(r["verbs"]) & {"get", "update"}]
        assert all(r.get("resourceNames") for r in named), "get/update must be limited to the Lease"
    for kind in ("ClusterRole", "Role"):
        for role in (o for o in objects if o["kind"] == kind):
            for (group, resource) in grants(role):
                assert not (group == "" and resource.split("/")[0] == "secrets"), "no Secrets access"
    binding = only(objects, "ClusterRoleBinding")
    account = only(objects, "ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}]


def test_pod_security_is_restricted(case):
    _, _, objects = case
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    sc = pod["securityContext"]
    assert sc["runAsNonRoot"] is True and sc["runAsUser"] == 65532 and sc["runAsGroup"] == 65532
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    for c in pod["containers"]:
        csc = c["securityContext"]
        assert csc["allowPrivilegeEscalation"] is False
        assert csc["readOnlyRootFilesystem"] is True
        assert csc["runAsNonRoot"] is True
        assert csc.get("privileged", False) is False
        assert csc["capabilities"] == {"drop": ["ALL"]}
        assert csc["seccompProfile"] == {"type": "RuntimeDefault"}
        res = c["resources"]
        assert res["requests"]["cpu"] and res["requests"]["memory"] and res["limits"]["memory"]
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert not c["image"].endswith(":latest")
    assert all("hostPath" not in v for v in pod.get("volumes", []))


def test_replicas_strategy_and_disruption_budget(case):
    _, values, objects = case
    replicas = merged(values)["replicas"]
    deployment = only(objects, "Deployment")
    assert deployment["spec"]["replicas"] == replicas
    pdbs = [o for o in objects if o["kind"] == "PodDisruptionBudget"]
    if replicas > 1:
        assert len(pdbs) == 1 and pdbs[0]["spec"]["minAvailable"] < replicas
        assert deployment["spec"]["strategy"]["type"] == "RollingUpdate"
    else:
        assert pdbs == []
        assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_dashboard_configmap(case):
    _, values, objects = case
    m = merged(values)["dashboards"]
    cm = next(o for o in objects if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-dashboard"))
    assert cm["metadata"]["labels"][m["label"]] == m["labelValue"] == "1"
    assert cm["metadata"]["namespace"] == (m["namespace"] or NAMESPACE)
    assert json.loads(cm["data"]["tailor.json"]) == json.loads((ROOT / "deploy/grafana/tailor.json").read_text())


# --- the agent config ---------------------------------------------------------


def rendered_config(objects: list[dict]) -> str:
    cm = next(o for o in objects if o["kind"] == "ConfigMap" and "config.yaml" in o.get("data", {}))
    return cm["data"]["config.yaml"]


def test_tailor_accepts_the_rendered_config(case, tmp_path):
    name, _, objects = case
    path = tmp_path / "config.yaml"
    path.write_text(rendered_config(objects))
    run = subprocess.run([tailor_bin(), "config", "check", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, f"{name}: tailor config check: {run.stderr}"
    assert run.stdout.strip() == f"{path}: ok"


def test_tailor_config_check_can_fail(tmp_path):
    """The check above is not a formality: a config the chart could never
    render on its own (a typo in `config`) is refused by the same binary."""
    objects = render({"config": {"rollout": {"bake": "forever"}}})
    path = tmp_path / "config.yaml"
    path.write_text(rendered_config(objects))
    run = subprocess.run([tailor_bin(), "config", "check", str(path)], capture_output=True, text=True)
    assert run.returncode == 2 and "rollout.bake" in run.stderr, run


def test_config_carries_the_values(case):
    _, values, objects = case
    v = merged(values)
    config = yaml.safe_load(rendered_config(objects))
    assert config["guardrails"]["mode"] == v["mode"]
    assert config["prometheus"]["url"] == v["prometheus"]["url"]
    assert config["prometheus"].get("headers", {}) == v["prometheus"]["headers"]
    assert config["agent"]["metrics_address"] == f"0.0.0.0:{v['metrics']['port']}"
    lease = config["agent"]["leader_election"]
    assert lease["enabled"] == v["leaderElection"]["enabled"]
    roles = [o for o in objects if o["kind"] == "Role"]
    for role in roles:
        named = next(r for r in role["rules"] if r.get("resourceNames"))
        assert named["resourceNames"] == [lease["lease_name"]]
    for key, value in v["config"].items():
        for sub, subvalue in (value.items() if isinstance(value, dict) else [(None, value)]):
            got = config[key] if sub is None else config[key][sub]
            assert got == subvalue, f"config.{key}.{sub} was not carried over"


def mounts(objects: list[dict]) -> dict[str, dict]:
    """mountPath -> volume, for the agent container."""
    pod = only(objects, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in pod["containers"][0]["volumeMounts"]}


def mounted_file(objects: list[dict], path: str) -> tuple[str, str, str]:
    """(kind, name, key) of the Secret or ConfigMap key mounted at `path`."""
    directory, file = path.rsplit("/", 1)
    volume = mounts(objects).get(directory)
    assert volume, f"{path}: nothing is mounted at {directory}"
    source = volume.get("secret") or volume.get("configMap")
    item = next(i for i in source["items"] if i["path"] == file)
    kind = "Secret" if "secret" in volume else "ConfigMap"
    return kind, source.get("secretName") or source.get("name"), item["key"]


def test_credentials_are_mounted_where_the_config_reads_them(case):
    _, values, objects = case
    v = merged(values)["prometheus"]
    prom = yaml.safe_load(rendered_config(objects))["prometheus"]
    token = v["bearerToken"]["existingSecret"]
    if token:
        assert mounted_file(objects, prom["bearer_token_file"]) == ("Secret", token["name"], token["key"])
    else:
        assert "bearer_token_file" not in prom
    password = v["basicAuth"]["existingSecret"]
    if password:
        assert prom["basic_auth"]["username"] == v["basicAuth"]["username"]
        assert mounted_file(objects, prom["basic_auth"]["password_file"]) == ("Secret", password["name"], password["key"])
    else:
        assert "basic_auth" not in prom
    ca = v["tls"]["caSecret"] or v["tls"]["caConfigMap"]
    if ca:
        kind = "Secret" if v["tls"]["caSecret"] else "ConfigMap"
        assert mounted_file(objects, prom["ca_file"]) == (kind, ca["name"], ca["key"])
    else:
        assert "ca_file" not in prom


def test_notification_sinks_read_mounted_secrets(case):
    _, values, objects = case
    n = merged(values)["notifications"]
    config = yaml.safe_load(rendered_config(objects))
    sinks = {s["name"]: s for s in config.get("notifications", {}).get("sinks", [])}
    for channel in ("slack", "teams", "webhook"):
        ref = n[channel]["existingSecret"]
        path = f"{SECRETS_DIR}/{channel}/url"
        if ref:
            assert mounted_file(objects, path) == ("Secret", ref["name"], ref["key"])
            assert sinks[channel]["type"] == channel and sinks[channel]["url_file"] == path
            assert "url" not in sinks[channel], "a URL never enters the ConfigMap"
        else:
            assert f"{SECRETS_DIR}/{channel}" not in mounts(objects)
            assert channel not in sinks
    if n["webhook"]["existingSecret"]:
        secret = n["webhook"]["signingSecret"]
        path = f"{SECRETS_DIR}/webhook-secret/secret"
        assert sinks["webhook"]["secret_file"] == path
        assert mounted_file(objects, path) == ("Secret", secret["name"], secret["key"])


def test_notes_say_the_mode():
    for mode in ("observe", "approve", "auto"):
        text = notes({"mode": mode})
        assert f"Mode: {mode}" in text
        assert "/api/v1/recommendations" in text and "tailor revert --all" in text


# --- values.schema.json: one bad value per rule -------------------------------

BAD_VALUES = [
    ("unknown mode", {"mode": "yolo"}, "/mode"),
    ("mode of the wrong type", {"mode": 1}, "/mode"),
    ("zero replicas", {"replicas": 0}, "/replicas"),
    ("replicas as text", {"replicas": "2"}, "/replicas"),
    ("two replicas without leader election", {"replicas": 2, "leaderElection": {"enabled": False}}, "/leaderElection/enabled"),
    ("unknown top-level key", {"replica": 2}, "'replica' not allowed"),
    ("unknown nested key", {"prometheus": {"ulr": "http://p:9090"}}, "'ulr' not allowed"),
    ("empty image repository", {"image": {"repository": ""}}, "/image/repository"),
    ("bad image digest", {"image": {"digest": "sha256:abc"}}, "/image/digest"),
    ("unknown pull policy", {"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
    ("URL without scheme", {"prometheus": {"url": "prometheus:9090"}}, "/prometheus/url"),
    ("URL with /api/v1", {"prometheus": {"url": "http://p:9090/api/v1"}}, "/prometheus/url"),
    ("URL with a password", {"prometheus": {"url": "http://u:pw@p:9090"}}, "/prometheus/url"),
    ("Authorization header", {"prometheus": {"headers": {"Authorization": "Bearer x"}}}, "Authorization"),
    ("header value on two lines", {"prometheus": {"headers": {"X-Scope-OrgID": "a\nb"}}}, "/prometheus/headers/X-Scope-OrgID"),
    ("cluster label without cluster", {"prometheus": {"clusterLabel": "cluster"}}, "/prometheus/cluster"),
    ("cluster without cluster label", {"prometheus": {"cluster": "prod"}}, "/prometheus/clusterLabel"),
    ("bad cluster label", {"prometheus": {"clusterLabel": "k8s-cluster", "cluster": "a"}}, "/prometheus/clusterLabel"),
    ("timeout that is not a duration", {"prometheus": {"timeout": "60"}}, "/prometheus/timeout"),
    ("zero queries per second", {"prometheus": {"maxQueriesPerSecond": 0}}, "/prometheus/maxQueriesPerSecond"),
    ("secret reference without key", {"prometheus": {"bearerToken": {"existingSecret": {"name": "t"}}}}, "/prometheus/bearerToken/existingSecret"),
    ("bearer token and basic auth", {"prometheus": {"bearerToken": {"existingSecret": {"name": "t", "key": "k"}},
                                                    "basicAuth": {"username": "u", "existingSecret": {"name": "p", "key": "k"}}}}, "/prometheus"),
    ("basic auth without user", {"prometheus": {"basicAuth": {"existingSecret": {"name": "p", "key": "k"}}}}, "/prometheus/basicAuth/username"),
    ("basic auth user without password", {"prometheus": {"basicAuth": {"username": "u"}}}, "/prometheus/basicAuth"),
    ("two CA sources", {"prometheus": {"tls": {"caSecret": {"name": "a", "key": "k"}, "caConfigMap": {"name": "b", "key": "k"}}}}, "/prometheus/tls"),
    ("empty namespace pattern", {"selection": {"namespaces": [""]}}, "/selection/namespaces/0"),
    ("negative CPU price", {"pricing": {"cpuCoreHourUsd": -0.01}}, "/pricing/cpuCoreHourUsd"),
    ("negative memory price", {"pricing": {"memoryGibHourUsd": -1}}, "/pricing/memoryGibHourUsd"),
    ("price as text", {"pricing": {"cpuCoreHourUsd": "cheap"}}, "/pricing/cpuCoreHourUsd"),
    ("zero changes per hour", {"guardrails": {"changesPerHour": 0}}, "/guardrails/changesPerHour"),
    ("negative changes per hour", {"guardrails": {"changesPerHour": -5}}, "/guardrails/changesPerHour"),
    ("zero changes in flight", {"guardrails": {"maxInFlight": 0}}, "/guardrails/maxInFlight"),
    ("paused as text", {"guardrails": {"paused": "yes"}}, "/guardrails/paused"),
    ("bad lease name", {"leaderElection": {"leaseName": "Tailor_Leader"}}, "/leaderElection/leaseName"),
    ("lease duration without unit", {"leaderElection": {"leaseDuration": "15"}}, "/leaderElection/leaseDuration"),
    ("privileged metrics port", {"metrics": {"port": 80}}, "/metrics/port"),
    ("metrics port out of range", {"metrics": {"port": 70000}}, "/metrics/port"),
    ("config not a map", {"config": "mode: auto"}, "/config"),
    ("unknown log level", {"logLevel": "verbose"}, "/logLevel"),
    ("unknown log format", {"logFormat": "xml"}, "/logFormat"),
    ("no CPU request", {"resources": {"requests": {"cpu": None}}}, "/resources/requests"),
    ("no memory limit", {"resources": {"limits": {"memory": None}}}, "/resources/limits"),
    ("unknown service type", {"service": {"type": "ExternalName"}}, "/service/type"),
    ("scrape interval that is not a duration", {"serviceMonitor": {"interval": "30 seconds"}}, "/serviceMonitor/interval"),
    ("negative revert threshold", {"prometheusRule": {"revertsPerHour": -1}}, "/prometheusRule/revertsPerHour"),
    ("negative minAvailable", {"podDisruptionBudget": {"minAvailable": -1}}, "/podDisruptionBudget/minAvailable"),
    ("dashboard label value too long", {"dashboards": {"labelValue": "x" * 64}}, "/dashboards/labelValue"),
    ("slack secret without key", {"notifications": {"slack": {"existingSecret": {"name": "s"}}}}, "/notifications/slack/existingSecret"),
    ("link that is not a URL", {"notifications": {"links": [{"name": "Grafana", "url": "grafana/d/x"}]}}, "/notifications/links/0/url"),
    ("digest interval that is not a duration", {"notifications": {"digestInterval": "daily"}}, "/notifications/digestInterval"),
]


@pytest.mark.parametrize("values,where", [(v, w) for _, v, w in BAD_VALUES], ids=[n for n, _, _ in BAD_VALUES])
def test_schema_rejects(values, where):
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError) as refused:
            chart.validate_schema(values)
        # An install renders, and rendering checks the schema too.
        with pytest.raises(helm.HelmValuesError):
            chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert where in str(refused.value), str(refused.value)


def test_every_values_file_passes_the_schema():
    with helm.Chart.load(CHART) as chart:
        for values in VALUES.values():
            chart.validate_schema(values)


# Rules the schema cannot express; the templates refuse them with a message.
TEMPLATE_REFUSALS = [
    ("config.prometheus set twice", {"config": {"prometheus": {"url": "http://a:9090"}}}, "config.prometheus: set it through the chart's `prometheus` values"),
    ("config.guardrails.mode set twice", {"config": {"guardrails": {"mode": "auto"}}}, "config.guardrails.mode: set it through the chart value `mode`"),
    ("config.agent.leader_election set twice", {"config": {"agent": {"leader_election": {"enabled": False}}}}, "config.agent.leader_election: set it through the chart values `leaderElection`"),
    ("PDB that blocks every eviction", {"replicas": 2, "podDisruptionBudget": {"minAvailable": 2}}, "podDisruptionBudget.minAvailable"),
    ("existing ServiceAccount without a name", {"serviceAccount": {"create": False}}, "serviceAccount.name"),
    ("webhook without a signing secret", {"notifications": {"webhook": {"existingSecret": {"name": "w", "key": "url"}}}}, "notifications.webhook.signingSecret"),
    ("notification sinks set twice", {"notifications": {"slack": {"existingSecret": {"name": "s", "key": "url"}}}, "config": {"notifications": {"sinks": []}}}, "config.notifications: set the sinks through the chart's `notifications` values"),
]


@pytest.mark.parametrize("values,message", [(v, m) for _, v, m in TEMPLATE_REFUSALS], ids=[n for n, _, _ in TEMPLATE_REFUSALS])
def test_templates_refuse(values, message):
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmRenderError) as refused:
            chart.render(values, name=RELEASE, namespace=NAMESPACE)
    assert message in str(refused.value), str(refused.value)


def test_every_key_in_values_yaml_is_commented():
    lines = (CHART / "values.yaml").read_text().splitlines()
    uncommented = []
    for i, line in enumerate(lines):
        m = re.match(r"^(\s*)([A-Za-z][A-Za-z0-9]*):(.*)$", line)
        if not m:
            continue
        before = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        is_parent = m.group(3).strip() == ""
        if not before.startswith("#") and not is_parent:
            uncommented.append(f"values.yaml:{i + 1}: {m.group(2)}")
    assert not uncommented, uncommented


# --- files that must stay in step ------------------------------------------------


def test_chart_crd_is_the_generated_one():
    chart = (CHART / "crds" / "recommendations.tailor.dev.yaml").read_bytes()
    generated = (ROOT / "deploy" / "crds" / "recommendations.tailor.dev.yaml").read_bytes()
    assert chart == generated, (
        "deploy/helm/tailor/crds/ differs from deploy/crds/: "
        "cp deploy/crds/recommendations.tailor.dev.yaml deploy/helm/tailor/crds/")


def test_chart_dashboard_is_the_grafana_one():
    assert (CHART / "dashboards" / "tailor.json").read_bytes() == (ROOT / "deploy/grafana/tailor.json").read_bytes(), (
        "cp deploy/grafana/tailor.json deploy/helm/tailor/dashboards/")


def test_app_version_is_the_crate_version():
    cargo = (ROOT / "Cargo.toml").read_text()
    version = re.search(r'(?m)^version = "([^"]+)"', cargo).group(1)
    with helm.Chart.load(CHART) as chart:
        assert chart.metadata["appVersion"] == version


def test_binary_runs_on_the_image_base():
    """The Dockerfile's runtime base (distroless cc) ships glibc, libm and
    libgcc_s and nothing else; the binary CI built must need no more."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"(?m)^FROM gcr\.io/distroless/cc-debian12:nonroot\b", dockerfile)
    assert re.search(r"(?m)^USER 65532:65532$", dockerfile)
    assert "cargo build --release --locked --bin tailor" in dockerfile
    readelf = shutil.which("readelf")
    assert readelf, "readelf (binutils) is missing"
    dynamic = subprocess.run([readelf, "-d", tailor_bin()], capture_output=True, text=True, check=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    assert needed, "no NEEDED entries: readelf output changed?"
    assert needed <= {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
                      "libpthread.so.0", "libdl.so.2", "librt.so.1"}, needed


# --- alerts and dashboard queries, through promtool ------------------------------

def documented_metrics() -> dict[str, str]:
    """family -> type, from the metrics table of docs/daemon.md."""
    text = (ROOT / "docs" / "daemon.md").read_text()
    return dict(re.findall(r"(?m)^\| `(tailor_[a-z_]+)` \| (counter|gauge|histogram) \|", text))


def registered_metrics() -> set[str]:
    """Series names the daemon exports: the families registered in
    src/daemon/state.rs, typed by the table in docs/daemon.md."""
    source = (ROOT / "src" / "daemon" / "state.rs").read_text()
    registered = set(re.findall(r'"(tailor_[a-z_]+)"', source))
    types = documented_metrics()
    names: set[str] = set()
    for family, kind in types.items():
        base = family.removesuffix("_total")
        assert base in registered, f"docs/daemon.md lists {family}, src/daemon/state.rs does not register {base}"
        if kind == "histogram":
            names.update(family + s for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family)
    undocumented = registered - {f.removesuffix("_total") for f in types}
    assert not undocumented, f"registered but not in docs/daemon.md: {undocumented}"
    return names


def used_metrics(expr: str) -> set[str]:
    return set(re.findall(r"\btailor_[a-z_]+\b", expr))


def test_metrics_are_read_from_the_registry():
    names = registered_metrics()
    assert len(documented_metrics()) >= 11
    assert {"tailor_changes_total", "tailor_leader", "tailor_loop_duration_seconds_bucket"} <= names


def alert_rules() -> dict:
    rule = only(render(VALUES["auto-ha-values.yaml"]), "PrometheusRule")
    return {"groups": rule["spec"]["groups"]}


def test_alerts_pass_promtool_check(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(alert_rules()))
    run = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    for group in alert_rules()["groups"]:
        for rule in group["rules"]:
            unknown = used_metrics(rule["expr"]) - registered_metrics()
            assert not unknown, f"{rule['alert']}: not exported by the daemon: {unknown}"


def test_alerts_fire_when_they_should(tmp_path):
    """promtool's rule unit tests: each alert fires on the series that mean
    trouble and stays quiet on healthy ones."""
    rules = alert_rules()
    by_name = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(by_name) == {"TailorDown", "TailorNoLeader", "TailorRevertsSpiking", "TailorPrometheusUnreachable"}
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    sel = f'job="{RELEASE}",namespace="{NAMESPACE}"'

    def fired(name):
        r = by_name[name]
        return [{"exp_labels": r["labels"], "exp_annotations": r["annotations"]}]

    def case(series, name, at, alerts):
        return {"interval": "1m", "input_series": series,
                "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": alerts}]}

    tests = [
        case([{"series": f"up{{{sel}}}", "values": "0x30"}], "TailorDown", "15m", fired("TailorDown")),
        case([], "TailorDown", "15m", fired("TailorDown")),  # no target at all
        case([{"series": f"up{{{sel}}}", "values": "1x30"}], "TailorDown", "15m", []),
        case([{"series": f"up{{{sel}}}", "values": "0x5 1x30"}], "TailorDown", "15m", []),
        case([{"series": f"tailor_leader{{{sel},pod=\"a\"}}", "values": "0x30"},
              {"series": f"tailor_leader{{{sel},pod=\"b\"}}", "values": "0x30"}], "TailorNoLeader", "15m", fired("TailorNoLeader")),
        case([{"series": f"tailor_leader{{{sel},pod=\"a\"}}", "values": "0x30"},
              {"series": f"tailor_leader{{{sel},pod=\"b\"}}", "values": "1x30"}], "TailorNoLeader", "15m", []),
        # One revert every five minutes: 12 an hour, over the threshold of 3.
        case([{"series": f'tailor_changes_total{{{sel},outcome="reverted"}}', "values": "0 0 0 0 0 1 1 1 1 1 2 2 2 2 2 3 3 3 3 3 4 4 4 4 4 5 5 5 5 5 6 6 6 6 6 7 7 7 7 7 8 8 8 8 8 9 9 9 9 9 10 10 10 10 10 11 11 11 11 11 12"}],
             "TailorRevertsSpiking", "60m", fired("TailorRevertsSpiking")),
        case([{"series": f'tailor_changes_total{{{sel},outcome="reverted"}}', "values": "0x30 1x30"},
              {"series": f'tailor_changes_total{{{sel},outcome="confirmed"}}', "values": "0+1x60"}],
             "TailorRevertsSpiking", "60m", []),
        case([{"series": f"tailor_prometheus_query_errors_total{{{sel},pod=\"a\"}}", "values": "0+1x40"}],
             "TailorPrometheusUnreachable", "30m", fired("TailorPrometheusUnreachable")),
        # One failed query, then none: a blip, not an outage.
        case([{"series": f"tailor_prometheus_query_errors_total{{{sel},pod=\"a\"}}", "values": "0x5 1x35"}],
             "TailorPrometheusUnreachable", "30m", []),
    ]
    (tmp_path / "alerts.test.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    run = subprocess.run([promtool(), "test", "rules", "alerts.test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


GRAFANA_VARIABLES = {
    "$__rate_interval": "5m", "$__range": "1h", "$job": "tailor", "$namespace": ".*", "$workload": ".*",
    "$cpu_price": "0.04048", "$memory_price": "0.004445",
}


def dashboard() -> dict:
    return json.loads((ROOT / "deploy" / "grafana" / "tailor.json").read_text())


def dashboard_targets(board: dict):
    for panel in board["panels"]:
        for t in panel.get("targets", []):
            yield panel, t


def test_dashboard_uses_the_datasource_variable_only():
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if "datasource" in node and node["datasource"] is not None:
                refs.append(node["datasource"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(board["panels"])
    walk([v for v in board["templating"]["list"] if v["type"] == "query"])
    assert refs and all(r == {"type": "prometheus", "uid": "${datasource}"} for r in refs), refs
    assert "__inputs" not in board and "id" not in board


def test_dashboard_covers_what_the_issue_asks():
    titles = " | ".join(p["title"].lower() for p in dashboard()["panels"])
    for topic in ("savings over time", "current vs recommended", "changes", "verdict", "agent health", "query latency"):
        assert topic in titles, f"no panel about {topic}: {titles}"


def test_dashboard_queries_parse_and_use_real_metrics(tmp_path):
    board = dashboard()
    exprs = [t["expr"] for _, t in dashboard_targets(board)]
    exprs += [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    rules = []
    for i, expr in enumerate(exprs):
        text = expr
        for var, value in sorted(GRAFANA_VARIABLES.items(), key=lambda kv: -len(kv[0])):
            text = text.replace(var, value)
        m = re.fullmatch(r"label_values\((.*), *[a-z_]+\)", text)
        if m:
            text = m.group(1)
        assert "$" not in text.replace("$1", ""), f"unknown Grafana variable in {expr}"
        rules.append({"record": f"dashboard:query_{i}", "expr": text})
    (tmp_path / "dashboard.yaml").write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    run = subprocess.run([promtool(), "check", "rules", str(tmp_path / "dashboard.yaml")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    used = set().union(*(used_metrics(e) for e in exprs))
    assert used <= registered_metrics(), used - registered_metrics()
    families = {n.removesuffix("_bucket").removesuffix("_sum").removesuffix("_count") for n in registered_metrics()}
    shown = {n.removesuffix("_bucket") for n in used}
    assert families <= shown, f"metrics on no panel: {families - shown}"


def test_docker_build_context_has_what_cargo_reads():
    """No Docker engine runs here, so the image build is checked by parts:
    .dockerignore lets in, and the Dockerfile copies, every file the crate
    includes at compile time (a directory missing from the context would
    only fail at `docker build`)."""
    allowed = [line[1:].rstrip("/") for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.startswith("!")]
    dockerfile = (ROOT / "Dockerfile").read_text()
    copied = set(re.findall(r"(?m)^COPY (?!--from)(.+) \S+$", dockerfile))
    copied = {p for line in copied for p in line.split()}
    assert set(allowed) == copied, f".dockerignore lets in {allowed}, the Dockerfile copies {copied}"
    included = []
    for source in (ROOT / "src").rglob("*.rs"):
        for target in re.findall(r'include_(?:str|bytes)!\("([^"]+)"\)', source.read_text()):
            included.append((source.parent / target).resolve().relative_to(ROOT))
    assert included, "no include_str! found: the pattern is wrong"
    for path in included:
        assert path.parts[0] in allowed or str(path) in allowed, f"{path} is not in the Docker build context"


def test_dashboard_savings_query_computes_the_saving(tmp_path):
    """The savings panel's PromQL on known series, through promtool: two
    agent replicas exporting the same gauges (counted once), replicas from
    kube-state-metrics, a StatefulSet whose memory is not recommended."""
    panel = next(p for p in dashboard()["panels"] if p["title"] == "Savings at the recommended requests")
    expr = panel["targets"][0]["expr"]
    for var, value in {**GRAFANA_VARIABLES, "$cpu_price": "0.5", "$memory_price": "0.25"}.items():
        expr = expr.replace(var, value)
    gib = 1 << 30
    series = []
    for instance in ("10.0.0.1:8080", "10.0.0.2:8080"):
        base = f'job="tailor",instance="{instance}",namespace="shop"'
        web = f'{base},workload_kind="Deployment",workload="web",container="app"'
        db = f'{base},workload_kind="StatefulSet",workload="db",container="postgres"'
        series += [
            {"series": f'tailor_recommendation_cpu_millicores{{{web},kind="current"}}', "values": "1000x10"},
            {"series": f'tailor_recommendation_cpu_millicores{{{web},kind="recommended"}}', "values": "500x10"},
            {"series": f'tailor_recommendation_memory_bytes{{{web},kind="current"}}', "values": f"{2 * gib}x10"},
            {"series": f'tailor_recommendation_memory_bytes{{{web},kind="recommended"}}', "values": f"{gib}x10"},
            {"series": f'tailor_recommendation_cpu_millicores{{{db},kind="current"}}', "values": "2000x10"},
            {"series": f'tailor_recommendation_cpu_millicores{{{db},kind="recommended"}}', "values": "1000x10"},
        ]
    ksm = 'job="kube-state-metrics",instance="10.0.0.9:8080",namespace="shop"'
    series += [
        {"series": f'kube_deployment_spec_replicas{{{ksm},deployment="web"}}', "values": "3x10"},
        {"series": f'kube_statefulset_replicas{{{ksm},statefulset="db"}}', "values": "2x10"},
        {"series": f'kube_daemonset_status_desired_number_scheduled{{{ksm},daemonset="agent"}}', "values": "5x10"},
    ]
    # web: 0.5 core x $0.5 + 1 GiB x $0.25, x 3 replicas = 1.5; db: 1 core x $0.5 x 2 = 1; x 730 h.
    expected = (1.5 + 1.0) * 730
    (tmp_path / "empty.yaml").write_text(yaml.safe_dump({"groups": []}))
    test = {"rule_files": ["empty.yaml"], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": series,
        "promql_expr_test": [{"expr": expr, "eval_time": "5m", "exp_samples": [{"labels": "{}", "value": expected}]}],
    }]}
    (tmp_path / "savings.test.yaml").write_text(yaml.safe_dump(test))
    run = subprocess.run([promtool(), "test", "rules", "savings.test.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr

"""The deployment files: generated ones up to date, compose and Kubernetes manifests valid for
the official tools (docker compose's own binary, kubectl's kustomize, kubernetes-validate
--strict, nats-server -t), and consistent with each other and with the contracts."""

from __future__ import annotations

import http.server
import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import pytest
import yaml

from renkei.stack import DEFAULT_CITIES, principals_for
from shared.observability import Metrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"


def load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


generate = load(DEPLOY / "generate.py", "generate")


def tool(name: str) -> str:
    """A binary that a dev dependency installed beside this interpreter."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    found = str(candidate) if candidate.exists() else shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} not found: install the dev extras (pip install -e '.[dev]')"
    return found


def run(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=120, **kwargs)


def docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def rendered(overlay: Path, tmp_path: Path) -> Path:
    result = run(tool("kubectl"), "kustomize", str(overlay))
    assert result.returncode == 0, result.stderr
    out = tmp_path / f"{overlay.name}.yaml"
    out.write_text(result.stdout)
    return out


def validate(path: Path) -> subprocess.CompletedProcess:
    return run(tool("kubernetes-validate"), "--strict", "--quiet", str(path))


# --- generated files ----------------------------------------------------------------------


def test_the_generated_files_are_up_to_date():
    stale = generate.stale(generate.outputs())
    assert not stale, f"out of date: {[str(p.relative_to(ROOT)) for p in stale]}; run: python deploy/generate.py"


def test_the_check_mode_reports_a_stale_file(tmp_path, monkeypatch):
    files = generate.outputs()
    first = next(iter(files))
    copy = {tmp_path / p.name: text for p, text in files.items()}
    (tmp_path / first.name).write_text(files[first] + "# edited by hand\n")
    assert generate.stale(copy) == [tmp_path / p.name for p in files]  # others were never written there
    for path, text in copy.items():
        path.write_text(text)
    (tmp_path / first.name).write_text(files[first] + "# edited by hand\n")
    assert generate.stale(copy) == [tmp_path / first.name]


# --- docker compose -----------------------------------------------------------------------


def test_compose_is_valid_for_docker_compose_itself(tmp_path):
    compose = tool("docker-compose")
    ok = run(compose, "-f", str(DEPLOY / "docker-compose.yml"), "config", "-q")
    assert ok.returncode == 0, ok.stderr
    broken = tmp_path / "docker-compose.yml"
    text = (DEPLOY / "docker-compose.yml").read_text().replace("condition: service_healthy", "condition: healthy_enough", 1)
    broken.write_text(text)
    assert run(compose, "-f", str(broken), "config", "-q").returncode != 0


def test_compose_runs_every_service_of_two_cities_healthy_after_nats_and_postgres():
    services = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    members = generate.members(list(DEFAULT_CITIES))
    assert len(members) == len(principals_for(list(DEFAULT_CITIES)))
    for member in members:
        entry = services[member.host]
        assert entry["environment"]["RENKEI_SERVICE"] == member.service
        assert entry["environment"].get("RENKEI_CITY") == member.city
        assert entry["healthcheck"]["test"] == ["CMD", "python", "/app/deploy/probe.py"]  # /readyz of the service
        assert entry["depends_on"]["nats"] == {"condition": "service_healthy"}
        assert entry["depends_on"]["postgres"] == {"condition": "service_healthy"}
        assert entry["depends_on"]["prepare"] == {"condition": "service_completed_successfully"}
        assert entry["environment"]["RENKEI_DATABASE_URL"].startswith("postgresql://")
    assert services["prepare"]["command"][:2] == ["renkei", "prepare"]
    assert "/data/nats/nats.conf" in services["nats"]["command"]
    assert "js-enabled-only" in " ".join(services["nats"]["healthcheck"]["test"])
    console = json.loads((DEPLOY / "compose" / "ops-console-members.json").read_text())
    assert {m["url"] for m in console["services"]} == {f"{'https' if m.tls else 'http'}://{m.host}:8000" for m in members}
    prefecture = next(m for m in members if m.service == "juki_prefecture")
    assert services["juki-cs-112224"]["environment"]["RENKEI_PREFECTURE_URL"] == prefecture.url == "https://juki-prefecture:8000"
    assert all(m["url"].split("//")[1].split(":")[0] in services for m in console["services"])


def test_prometheus_scrapes_every_service_as_compose_names_it():
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())["services"]
    targets = {t: group["labels"] for group in config["scrape_configs"][0]["static_configs"] for t in group["targets"]}
    members = [m for m in generate.members(list(DEFAULT_CITIES)) if not m.tls]
    assert set(targets) == {f"{m.host}:8000" for m in members}
    assert all(t.split(":")[0] in compose for t in targets)
    assert {(labels["service"], labels["city"]) for labels in targets.values()} == {(m.service, m.city or "global") for m in members}


def test_the_dashboard_asks_only_for_metrics_the_services_expose():
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "renkei.json").read_text())
    source = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text())
    exposed = set()
    for family in Metrics().registry.collect():
        exposed.add(family.name)
        exposed.update(sample.name for sample in family.samples)
        if family.type == "counter":
            exposed.add(family.name + "_total")
        if family.type == "histogram":
            exposed.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    import re

    asked = set()
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["datasources"][0]["uid"]
        for target in panel["targets"]:
            asked.update(re.findall(r"\b(renkei_[a-z_]+)", target["expr"]))
    assert asked and asked <= exposed, asked - exposed
    assert {
        "renkei_ready",
        "renkei_outbox_backlog",
        "renkei_http_request_duration_seconds_bucket",
        "renkei_consumer_pending",
        "renkei_ledger_records",
        "renkei_ledger_checkpoint_age_seconds",
        "renkei_provision_records_total",
    } <= asked


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", [K8S / "base", K8S / "overlays" / "production"], ids=["base", "production"])
def test_kustomize_renders_what_kubernetes_validate_accepts(overlay, tmp_path):
    out = rendered(overlay, tmp_path)
    result = validate(out)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_validate_refuses_an_unknown_field(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(rendered(K8S / "base", tmp_path).read_text().replace("readinessProbe:", "readinessProbes:", 1))
    assert validate(broken).returncode != 0


def test_every_service_has_probes_and_resource_requests(tmp_path):
    manifests = docs(rendered(K8S / "overlays" / "production", tmp_path))
    deployments = {d["metadata"]["name"]: d for d in manifests if d["kind"] == "Deployment"}
    assert set(deployments) == {m.host for m in generate.members(list(DEFAULT_CITIES))}
    for name, deployment in deployments.items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        if "httpGet" in container["readinessProbe"]:
            assert container["livenessProbe"]["httpGet"]["path"] == "/livez", name
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
        assert container["image"].startswith("registry.city.koshigaya.example/renkei:"), name
        assert all(d["metadata"].get("namespace") == "renkei" for d in manifests if d["kind"] != "Namespace")
    postgres = next(d for d in manifests if d["kind"] == "Service" and d["metadata"]["name"] == "renkei-postgres")
    assert postgres["spec"]["type"] == "ExternalName" and postgres["spec"]["externalName"] != "postgres.invalid"


def test_nats_is_a_three_server_jetstream_cluster_whose_config_nats_accepts(tmp_path):
    manifests = docs(K8S / "base" / "nats.yaml")
    statefulset = next(d for d in manifests if d["kind"] == "StatefulSet")
    conf = next(d for d in manifests if d["kind"] == "ConfigMap")["data"]["nats.conf"]
    assert statefulset["spec"]["replicas"] == 3
    assert "jetstream {" in conf and "sync_interval: always" in conf and conf.count("nats://renkei-nats-") == 3
    env = {"PATH": "/usr/bin:/bin"}
    for variable in statefulset["spec"]["template"]["spec"]["containers"][0]["env"]:
        env[variable["name"]] = "renkei-nats-0" if variable["name"] == "POD_NAME" else f"secret-{variable['name'].lower()}"
    (tmp_path / "nats.conf").write_text(conf)
    nats = str(Path(sysconfig.get_path("scripts")) / "nats-server")
    accepted = run(nats, "-t", "-c", str(tmp_path / "nats.conf"), env=env)
    assert accepted.returncode == 0, accepted.stderr
    missing = dict(env)
    missing.pop(next(k for k in env if k.startswith("NATS_PASSWORD_")))
    assert run(nats, "-t", "-c", str(tmp_path / "nats.conf"), env=missing).returncode != 0
    services = {d["metadata"]["name"] for d in manifests if d["kind"] == "Service"}
    assert services == {"renkei-nats", "renkei-nats-cluster"}


def test_network_policies_deny_by_default_and_open_only_the_links(tmp_path):
    policies = {d["metadata"]["name"]: d for d in docs(K8S / "base" / "networkpolicies.yaml")}
    deny = policies["renkei-default-deny"]["spec"]
    assert deny["podSelector"] == {} and deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny
    members = generate.members(list(DEFAULT_CITIES))
    for member in members:
        policy = policies[f"renkei-{member.host}"]
        assert policy["spec"]["podSelector"]["matchLabels"] == member.labels
    hub = policies["renkei-provision-network"]["spec"]
    hub_callers = [peer["podSelector"]["matchLabels"] for rule in hub["ingress"] for peer in rule["from"] if "podSelector" in peer]
    assert {"renkei/service": "intermediate_server"} in hub_callers  # every city's intermediate server reaches the hub
    koshigaya = policies["renkei-intermediate-server-112224"]["spec"]
    reached = [peer["podSelector"]["matchLabels"] for rule in koshigaya["egress"] for peer in rule.get("to", []) if "podSelector" in peer]
    assert {"renkei/service": "provision_network"} in reached
    health = policies["renkei-health-mgmt-112224"]["spec"]
    health_reaches = [peer["podSelector"]["matchLabels"] for rule in health["egress"] for peer in rule.get("to", []) if "podSelector" in peer]
    assert health_reaches == [{"k8s-app": "kube-dns"}, {"renkei/component": "nats"}]  # DNS and the bus: no other pod
    assert "integrated_address.assign" in policies["renkei-health-mgmt-112224"]["metadata"]["annotations"]["renkei/bus-calls"]


def test_the_secrets_script_makes_every_secret_the_manifests_use(tmp_path):
    out = run(
        sys.executable, str(K8S / "make_secrets.py"), "--data", str(tmp_path / "stack"),
        "--database-url", "postgresql://renkei:secret@renkei-postgres:5432/renkei", cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr
    (tmp_path / "secrets.yaml").write_text(out.stdout)
    assert validate(tmp_path / "secrets.yaml").returncode == 0
    made = {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(out.stdout)}
    keys = {name: set((d.get("stringData") or d.get("data")).keys()) for (_, name), d in made.items()}

    def uses(node):
        if isinstance(node, dict):
            if "secretKeyRef" in node:
                yield node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]
            for source in ("secret", "configMap"):
                if source in node and isinstance(node[source], dict) and "items" in node[source]:
                    ref = node[source]
                    for item in ref["items"]:
                        yield ref.get("name") or ref.get("secretName"), item["key"]
            for value in node.values():
                yield from uses(value)
        elif isinstance(node, list):
            for item in node:
                yield from uses(item)

    used = set()
    for path in (K8S / "base" / "services.yaml", K8S / "base" / "nats.yaml"):
        for document in docs(path):
            used.update(uses(document))
    generated = {"renkei-nats-config", "renkei-ops-console-members"}
    missing = {(name, key) for name, key in used if name not in generated and key not in keys.get(name, set())}
    assert used and not missing, missing
    assert not any(d["kind"] == "Secret" and "0.0.0.0" in json.dumps(d) for d in made.values())


# --- the image's own scripts ---------------------------------------------------------------


def test_the_entrypoint_starts_only_services_of_the_suite(tmp_path):
    entrypoint = str(DEPLOY / "entrypoint.py")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "RENKEI_DATA_DIR": str(tmp_path)}
    unknown = run(sys.executable, entrypoint, env={**env, "RENKEI_SERVICE": "os.system"})
    assert unknown.returncode != 0 and "must name a service" in unknown.stderr
    cityless = run(sys.executable, entrypoint, env={**env, "RENKEI_SERVICE": "health_mgmt"})
    assert cityless.returncode != 0 and "needs RENKEI_CITY" in cityless.stderr
    no_password = run(sys.executable, entrypoint, env={**env, "RENKEI_SERVICE": "health_mgmt", "RENKEI_CITY": "112224"})
    assert no_password.returncode != 0 and "no NATS password for health_mgmt-112224" in no_password.stderr


def test_the_probe_passes_on_200_only():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/readyz" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = server.server_address[1]
    probe = str(DEPLOY / "probe.py")
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "RENKEI_PORT": str(port)}
    try:
        assert run(sys.executable, probe, env=env).returncode == 0
        assert run(sys.executable, probe, "--path", "/livez", env=env).returncode == 1
        assert run(sys.executable, probe, f"http://127.0.0.1:{port}/readyz", env=env).returncode == 0
    finally:
        server.shutdown()
    assert run(sys.executable, probe, env=env).returncode == 1  # nothing listens any more


def test_the_dockerfile_copies_what_the_image_runs():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text()
    for source in ("renkei", "shared", "services", "pyproject.toml", "deploy/entrypoint.py", "deploy/probe.py"):
        assert source in dockerfile and (ROOT / source).exists()
        assert f"!{source}" in ignore
    assert 'CMD ["python", "/app/deploy/entrypoint.py"]' in dockerfile
    assert "USER 10001" in dockerfile

"""What can be checked of the container and cluster set-up without a Docker engine or a cluster."""
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT
from server import metric

BIN = Path(sys.executable).parent
K8S = sorted((ROOT / "deploy" / "k8s").glob("*.yaml"))
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def k8s(kind):
    for path in K8S:
        doc = yaml.safe_load(path.read_text())
        if doc["kind"] == kind:
            return doc
    raise AssertionError(f"no {kind} manifest")


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "deploy/bulk.Dockerfile"])
def test_hadolint_finds_nothing_in_the_dockerfile(dockerfile):
    out = subprocess.run([BIN / "hadolint", str(ROOT / dockerfile)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_kubernetes_manifest_validates_strictly():
    out = subprocess.run([BIN / "kubernetes-validate", "--strict", *map(str, K8S)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "passed for resource deployment/nerve" in out.stdout + out.stderr


def test_the_image_runs_as_non_root_and_starts_through_the_entrypoint():
    runtime = DOCKERFILE.split("FROM base AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.M)
    assert 'CMD ["deploy/entrypoint.sh"]' in runtime
    assert "COPY --chown=10001:10001 models/default/ models/default/" in runtime
    assert "FROM base AS train" in DOCKERFILE


def test_the_healthcheck_command_passes_against_a_real_server(server):
    line = next(ln for ln in DOCKERFILE.replace("\\\n", " ").splitlines() if ln.startswith("HEALTHCHECK"))
    argv = json.loads(line.split("CMD", 1)[1].strip())
    argv[0] = sys.executable
    env = {**os.environ, "PORT": str(server.port)}
    assert subprocess.run(argv, env=env, timeout=10).returncode == 0
    env["PORT"] = "1"  # nothing listens there: the check must fail
    assert subprocess.run(argv, env=env, timeout=10, capture_output=True).returncode != 0


def test_probes_and_ports_fit_the_service(server):
    deploy = k8s("Deployment")
    pod = deploy["spec"]["template"]["spec"]
    container = pod["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        path = container[probe]["httpGet"]["path"]
        assert path in ("/healthz", "/readyz") and server.request("GET", path)[0] == 200
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    assert pod["terminationGracePeriodSeconds"] > int(env["NERVE_GRACEFUL_TIMEOUT"]) + pre_stop
    assert container["securityContext"]["readOnlyRootFilesystem"] and pod["securityContext"]["runAsNonRoot"]
    port_names = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert str(port_names["http"]) == env["PORT"]
    svc = k8s("Service")
    assert svc["spec"]["ports"][0]["targetPort"] in port_names
    assert svc["spec"]["selector"].items() <= deploy["spec"]["template"]["metadata"]["labels"].items()
    monitor = k8s("ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == svc["spec"]["ports"][0]["name"]
    assert k8s("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] == deploy["metadata"]["name"]
    kustomization = yaml.safe_load((ROOT / "deploy" / "k8s" / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(p.name for p in K8S if p.name != "kustomization.yaml")


def test_compose_prometheus_and_dashboard_agree_with_the_service(server):
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    nerve, prom = compose["services"]["nerve"], compose["services"]["prometheus"]
    assert "8000:8000" in nerve["ports"] and nerve["build"]["context"] == ".."
    mounts = dict(v.split(":")[:2] for v in prom["volumes"])
    config_path = ROOT / "deploy" / next(src for src in mounts if "prometheus.yml" in src).lstrip("./")
    scrape = yaml.safe_load(config_path.read_text())["scrape_configs"][0]
    assert scrape["metrics_path"] == "/metrics"
    assert scrape["static_configs"][0]["targets"] == [f"nerve:{nerve['environment']['PORT']}"]
    for src in (v.split(":")[0] for v in compose["services"]["grafana"]["volumes"]):
        assert (ROOT / "deploy" / src).exists(), src

    assert server.ner({"text": "Anna Berg visited Oslo."})[0] == 200
    assert server.request("POST", "/v1/ner", b"x", {"Content-Type": "text/csv"})[0] == 415
    exposed = server.request("GET", "/metrics")[2]
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "nerve.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(nerve_[a-z_]+)", e)}
    assert len(used) >= 6
    defined = (ROOT / "service" / "metrics.py").read_text()
    for name in used:
        if name.startswith("nerve_candidate_"):  # written once a candidate is configured (test_models.py)
            assert f'"{re.sub(r"_(bucket|count|sum)$", "", name)}"' in defined, name
        else:
            assert re.search(rf"^{name}[{{ ]", exposed, re.M), name
    assert metric(exposed, "nerve_requests_total", status="415") >= 1


@pytest.mark.parametrize("target", ["serve", "test"])
def test_readme_commands_are_make_targets(target):
    readme = (ROOT / "README.md").read_text()
    assert f"make {target}" in readme
    out = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    if target == "serve":
        assert "deploy/entrypoint.sh" in out.stdout
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in shlex.split(ci, comments=True)[-2:] or "make test" in ci


def _pins(path):
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and not line.startswith("-r"):
            req = Requirement(line)
            assert str(req.specifier).startswith("=="), f"{path.name}: {line} is not pinned"
            pins[canonicalize_name(req.name)] = req
    return pins


@pytest.mark.parametrize("files", [["requirements.txt"], ["requirements.txt", "requirements-train.txt"],
                                   ["requirements.txt", "requirements-ray.txt"]])
def test_every_dependency_of_an_image_is_pinned_in_its_own_files(files):
    """Everything the runtime (or train) image installs is pinned by the files it installs from."""
    from importlib.metadata import requires

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    pinned = {}
    for name in files:
        pinned.update(_pins(ROOT / name))
    seen, todo = set(), list(pinned)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in requires(name) or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    assert not sorted(seen - set(pinned)), f"installed but not pinned by {files}"


def test_the_ray_job_runs_the_bulk_tagger_on_ray_as_non_root():
    job = yaml.safe_load((ROOT / "deploy" / "k8s" / "ray" / "rayjob.yaml").read_text())
    assert job["apiVersion"] == "ray.io/v1" and job["kind"] == "RayJob"
    assert job["spec"]["entrypoint"].startswith("python -m bulk --engine ray --address auto")
    pins = (ROOT / "requirements-ray.txt").read_text().splitlines()
    ray_pin = next(line for line in pins if line.startswith("ray=="))
    assert job["spec"]["rayClusterSpec"]["rayVersion"] == ray_pin.split("==")[1]
    cluster = job["spec"]["rayClusterSpec"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        assert pod["securityContext"]["runAsUser"] == 10001 and pod["securityContext"]["runAsNonRoot"]
        assert all(c["image"].startswith("nerve-bulk:") for c in pod["containers"])


def test_every_relative_link_of_the_readme_and_docs_leads_to_a_file():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    assert len(pages) > 5
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not target.startswith(("http://", "https://")):
                assert (page.parent / target).exists(), f"{page.name}: {target}"
    linked = set(re.findall(r"\]\(docs/([^)#]+)", (ROOT / "README.md").read_text()))
    assert linked == {p.name for p in pages[1:]}  # every page of docs/ is linked from the README


def test_the_label_studio_compose_file_wires_the_service_and_its_trainer_to_the_same_folders():
    from service import SETTINGS

    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.label-studio.yml").read_text())
    nerve, trainer = compose["services"]["nerve"], compose["services"]["trainer"]
    known = {var for var, _, _ in SETTINGS.values()}
    assert set(nerve["environment"]) <= known, set(nerve["environment"]) - known
    assert trainer["entrypoint"][-1] == "training.label_studio" and trainer["build"]["target"] == "train"
    args = dict(zip(trainer["command"][::2], trainer["command"][1::2]))
    assert args["--dir"] == nerve["environment"]["NERVE_TRAINING_DIR"]
    assert args["--models"] == nerve["environment"]["NERVE_MODELS"]
    assert set(trainer["volumes"]) == set(nerve["volumes"]) and trainer["user"] == "10001:10001"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "chown 10001:10001 /training" in dockerfile and "--chown=10001:10001 models/default/" in dockerfile


LABEL_STUDIO_K8S = ROOT / "deploy" / "k8s-label-studio"


def _mounts(container, volumes):
    """{claim name: mount path} of a container's volumes backed by claims."""
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v}
    return {claims[m["name"]]: m["mountPath"] for m in container["volumeMounts"] if m["name"] in claims}


def _overlay(name):
    return list(yaml.safe_load_all((LABEL_STUDIO_K8S / name).read_text()))


def test_the_kubernetes_trainer_and_the_service_share_the_same_volumes():
    load = _overlay
    claims = {c["metadata"]["name"] for c in load("volumes.yaml")}
    trainer = load("trainer.yaml")[0]["spec"]["template"]["spec"]
    patch = load("nerve.yaml")[0]["spec"]["template"]["spec"]
    args = trainer["containers"][0]["args"]
    option = {args[i]: args[i + 1] for i in range(0, len(args), 2)}
    on_trainer = _mounts(trainer["containers"][0], trainer["volumes"])
    served = patch["containers"][0]
    on_service = _mounts(served, patch["volumes"])
    env = {e["name"]: e.get("value") for e in served["env"]}
    assert set(on_trainer) == set(on_service) == claims
    models, training = (next(c for c in claims if c.endswith(k)) for k in ("models", "training"))
    assert option["--models"] == on_trainer[models] == env["NERVE_MODELS"] == on_service[models]
    assert option["--dir"] == on_trainer[training] == env["NERVE_TRAINING_DIR"] == on_service[training]
    default = json.loads((ROOT / "models" / "default" / "model.json").read_text())["name"]
    assert option["--model"] == env["NERVE_MODEL"] == default
    seed = patch["initContainers"][0]
    assert seed["volumeMounts"][0]["name"] in {v["name"] for v in patch["volumes"]}
    assert "models/default" in seed["command"][-1] and "mv " in seed["command"][-1]  # copied whole, then renamed
    for container in (*trainer["containers"], seed):
        assert container["securityContext"]["readOnlyRootFilesystem"]
    assert trainer["securityContext"]["runAsUser"] == 10001


@pytest.mark.skipif(not shutil.which("kubectl"), reason="kubectl (its kustomize) is not installed here")
def test_the_label_studio_overlay_builds_and_validates(tmp_path):
    built = subprocess.run(["kubectl", "kustomize", str(LABEL_STUDIO_K8S)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr
    path = tmp_path / "built.yaml"
    path.write_text(built.stdout)
    out = subprocess.run([BIN / "kubernetes-validate", "--strict", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    for resource in ("deployment/nerve-trainer", "deployment/nerve", "persistentvolumeclaim/nerve-models"):
        assert f"passed for resource {resource}" in out.stdout + out.stderr

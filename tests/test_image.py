"""The Docker images, built and run for real. Skipped, saying why, where no container engine runs.

The base image is python:3.11-slim where it can be had; where no image registry can be reached it is
made from Debian packages by deploy/base-image.sh (which needs mmdebstrap).
"""
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import FIXTURES, ROOT
from server import free_port

RUNTIME, TRAIN = "nerve:image-test", "nerve-train:image-test"
DOCKER_STOP_DEFAULT = 10  # seconds a plain `docker stop` waits before SIGKILL


def docker(*args, timeout=600, check=True):
    out = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and out.returncode:
        raise AssertionError(f"docker {' '.join(args)} exited {out.returncode}: {out.stderr[-2000:]}")
    return out


def have_image(name):
    return docker("image", "inspect", name, check=False).returncode == 0


def base_image():
    wanted = os.environ.get("NERVE_BASE_IMAGE")
    if wanted:
        return wanted
    for name in ("python:3.11-slim", "nerve-base:bookworm"):
        if have_image(name):
            return name
    if shutil.which("mmdebstrap"):
        out = subprocess.run([str(ROOT / "deploy" / "base-image.sh")], capture_output=True, text=True, timeout=900)
        if out.returncode == 0:
            return "nerve-base:bookworm"
        raise AssertionError(f"deploy/base-image.sh failed: {out.stderr[-2000:]}")
    if docker("pull", "python:3.11-slim", timeout=120, check=False).returncode == 0:
        return "python:3.11-slim"
    pytest.skip("no base image: python:3.11-slim cannot be pulled and mmdebstrap is not installed")


@pytest.fixture(scope="module")
def images():
    if not shutil.which("docker"):
        pytest.skip("no docker client on PATH")
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=20, check=False)
    except subprocess.TimeoutExpired:
        pytest.skip("the Docker engine does not answer")
    if info.returncode:
        pytest.skip(f"no Docker engine runs here: {info.stderr.strip()[:200]}")
    base = base_image()
    seconds = {}
    for tag, target in ((RUNTIME, "runtime"), (TRAIN, "train")):
        t0 = time.monotonic()
        docker("build", "--network", "host", "--build-arg", f"BASE_IMAGE={base}", "--target", target, "-t", tag,
               str(ROOT), timeout=1200)
        seconds[target] = time.monotonic() - t0
    sizes = {tag: int(docker("image", "inspect", "--format", "{{.Size}}", tag).stdout) for tag in (RUNTIME, TRAIN)}
    print(f"\nimages from {base}: built in {seconds}; sizes {({t: f'{s / 1e6:.0f} MB' for t, s in sizes.items()})}")
    return base


def wait_for(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def http(url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return r.status, json.loads(r.read())


def answers(url):
    try:
        return http(url)[0] == 200
    except OSError:
        return False


def test_runtime_image_serves_read_only_as_uid_10001_and_stops_cleanly(images):
    env = dict(line.split("=", 1) for line in json.loads(
        docker("image", "inspect", "--format", "{{json .Config.Env}}", RUNTIME).stdout))
    assert int(env["NERVE_GRACEFUL_TIMEOUT"]) + 1 < DOCKER_STOP_DEFAULT  # one second of draining first
    port = free_port()  # the host's network (engines without a bridge cannot publish ports), loopback only
    cid = docker("run", "-d", "--network", "host", "-e", "HOST=127.0.0.1", "-e", f"PORT={port}", "--read-only",
                 "--tmpfs", "/tmp", RUNTIME).stdout.strip()
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: answers(f"{base}/readyz"), 90, "/readyz")
        status, answer = http(f"{base}/v1/ner", {"text": "Angela Merkel visited Paris."})
        assert status == 200 and {e["label"] for e in answer["entities"]} == {"PER", "LOC"}
        wait_for(lambda: docker("inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip() == "healthy",
                 90, "Docker's HEALTHCHECK to report healthy")
        processes = docker("top", cid, "-eo", "uid,pid,args").stdout.splitlines()[1:]
        assert len(processes) >= 3 and all(p.split()[0] == "10001" for p in processes), processes
        assert docker("exec", cid, "id").stdout.split()[:2] == ["uid=10001(nerve)", "gid=10001(nerve)"]
        t0 = time.monotonic()
        docker("stop", cid, timeout=60)
        stopped_in = time.monotonic() - t0
        assert docker("inspect", "--format", "{{.State.ExitCode}}", cid).stdout.strip() == "0"
        assert stopped_in < DOCKER_STOP_DEFAULT
        log = docker("logs", cid).stdout + docker("logs", cid).stderr
        assert "Booting worker" in log
        bad = [ln for ln in log.splitlines() if re.search(r"error|errno|traceback|denied|warn", ln, re.I)]
        assert not bad, bad
    finally:
        docker("rm", "-f", cid, check=False)


def train_into(out):
    return docker("run", "--rm", "--network", "none", "-v", f"{FIXTURES}:/data:ro", "-v", f"{out}:/out", TRAIN,
                  "--train", "/data/tiny_train.conll", "--dev", "/data/tiny_dev.bio", "--out", "/out/mine",
                  "--embeddings", "/data/vectors.txt", "--hidden", "8", "--epochs", "2", "--quiet", check=False)


def test_train_image_writes_into_the_folder_mounted_for_it(images, tmp_path):
    out = tmp_path / "out"  # missing: docker creates it, as root, for the mount
    run = train_into(out)
    assert run.returncode == 0, run.stderr
    assert (out / "mine" / "model.json").exists() and (out / "mine" / "report" / "report.html").exists()
    assert not re.search(r"matplotlib|mkdir|denied|warn", run.stdout + run.stderr, re.I), run.stderr
    assert (out / "mine" / "model.json").stat().st_uid == 10001

    mine = tmp_path / "mine"  # a user's own folder: what is written there is theirs
    mine.mkdir()
    os.chown(mine, 12345, 12345)
    assert train_into(mine).returncode == 0
    assert {p.stat().st_uid for p in (mine / "mine").iterdir()} == {12345}

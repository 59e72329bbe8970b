"""schemathesis against the served /openapi.json on a real gunicorn, every phase (examples, coverage,
fuzzing, stateful) and its default checks: no 5xx, every answer as documented, valid requests
accepted and invalid ones refused."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_every_phase_of_schemathesis_passes_against_the_served_schema(server):
    command = Path(sys.executable).parent / "schemathesis"
    config = Path(__file__).parent / "schemathesis.toml"
    out = subprocess.run([str(command), "--config-file", str(config), "run", f"http://127.0.0.1:{server.port}/openapi.json",
                          "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", "60", "--seed", "7",
                          "--request-timeout", "30"], capture_output=True, text=True, timeout=900)
    summary = out.stdout[out.stdout.find("SUMMARY"):]
    print(summary)
    assert out.returncode == 0, out.stdout[-6000:]
    tested = re.search(r"Tested: (\d+)", out.stdout)
    assert tested and int(tested.group(1)) >= 16, summary
    for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", out.stdout), summary

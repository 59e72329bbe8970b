"""The bulk tagger: the same entities as the HTTP API, a resumable job, bad records reported."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, fixture_sentences


def bulk(*args, check=True):
    out = subprocess.run([sys.executable, "-m", "bulk", *map(str, args), "--quiet"], capture_output=True, text=True,
                         cwd=ROOT, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr
    return out


def fixture_documents():
    """Documents of a few sentences each, rebuilt from the training fixture's words."""
    sentences = fixture_sentences()
    return [" ".join(sentences[i: i + 3]) for i in range(0, len(sentences), 3)]


def records(folder, suffix=".jsonl"):
    names = sorted(n for n in os.listdir(folder) if n.endswith(suffix) and not n.endswith(".stats.json"))
    return [json.loads(line) for n in names for line in (folder / n).read_text(encoding="utf-8").splitlines()]


def test_bulk_gives_the_entities_the_http_api_gives(server, tiny_model_dir, tmp_path):
    # a lone surrogate is valid JSON, not valid UTF-8: both read it, and it comes back escaped
    docs = fixture_documents() + ["Zoë met Anna Berg in Oslo 🙂 on Monday.", "Anna \ud800 Berg met Bob in Oslo."]
    (tmp_path / "docs.jsonl").write_text("".join(json.dumps({"id": f"d{i}", "text": t}) + "\n"
                                                 for i, t in enumerate(docs)))
    bulk("--model", tiny_model_dir, tmp_path / "docs.jsonl", "--out", tmp_path / "out", "--workers", 2,
         "--shard-size", 3, "--tokens")
    got = records(tmp_path / "out")
    assert [r["id"] for r in got] == [f"d{i}" for i in range(len(docs))]
    for lo in range(0, len(docs), 3):  # a shard's documents go through the network together, as a request's do
        status, _, answer = server.ner({"texts": docs[lo: lo + 3]})
        assert status == 200
        for record, result in zip(got[lo: lo + 3], answer["results"]):
            assert record["entities"] == result["entities"] and record["tokens"] == result["tokens"]
    assert any(r["entities"] for r in got)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["documents"] == len(docs) and summary["skipped"] == []
    assert sum(summary["entities"].values()) == sum(len(r["entities"]) for r in got)


def test_a_run_killed_half_way_resumes_to_exactly_the_uninterrupted_output(tiny_model_dir, tmp_path):
    docs = fixture_documents()
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("".join(f"{docs[i % len(docs)]} Item {i}.\n" for i in range(12_000)), encoding="utf-8")
    args = ["--model", tiny_model_dir, corpus, "--workers", 2, "--shard-size", 100]
    bulk(*args, "--out", tmp_path / "whole")
    whole = tmp_path / "whole"
    expected = {n: (whole / n).read_bytes() for n in os.listdir(whole) if n.startswith("part-")}
    assert len(expected) == 2 * 120

    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "bulk", *map(str, args), "--out", str(out), "--quiet"], cwd=ROOT,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len([n for n in os.listdir(out) if n.endswith(".jsonl")]) < 10 \
            if out.exists() else time.monotonic() < deadline:
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its workers, at once
    proc.wait()
    done_at_kill = len([n for n in os.listdir(out) if n.endswith(".jsonl")])
    assert 10 <= done_at_kill < 120, done_at_kill

    again = bulk(*args, "--out", out)
    got = {n: (out / n).read_bytes() for n in os.listdir(out) if n.startswith("part-")}
    assert got == expected
    assert not [n for n in os.listdir(out) if n.startswith(".tmp-")]
    assert f"({120 - done_at_kill} written now)" in again.stderr


def test_every_kind_of_bad_record_is_reported_with_its_line(tiny_model_dir, tmp_path):
    lines = [json.dumps({"id": "a", "text": "Anna Berg visited Oslo."}).encode(),
             b"{not json",
             json.dumps(["a", "list"]).encode(),
             json.dumps({"id": "b"}).encode(),
             json.dumps({"id": "c", "text": 42}).encode(),
             json.dumps({"id": "d", "text": "x" * 500}).encode(),
             b'{"id": "e", "text": "caf\xe9"}',
             json.dumps({"id": True, "text": "Oslo"}).encode(),
             b"",
             json.dumps({"id": "f", "text": "Lars Holm left."}).encode()]
    data = tmp_path / "mixed.jsonl"
    data.write_bytes(b"\n".join(lines) + b"\n")
    out = bulk("--model", tiny_model_dir, data, "--out", tmp_path / "out", "--max-chars", 100, "--shard-size", 4)
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [r["id"] for r in records(tmp_path / "out")] == ["a", "f"]
    expected = {2: "invalid JSON", 3: "an array, not a JSON object", 4: "no 'text' field",
                5: "'text' is a number, not a string", 6: "text of 500 characters; at most 100", 7: "not UTF-8",
                8: "'id' must be a string or an integer"}
    assert len(summary["skipped"]) == len(expected)
    for (line, reason), reported in zip(sorted(expected.items()), summary["skipped"]):
        assert reported.startswith(f"{data}:{line}: ") and reason in reported, reported
        assert f"skipped {reported}" in out.stderr

    strict = bulk("--model", tiny_model_dir, data, "--out", tmp_path / "strict", "--strict", check=False)
    assert strict.returncode == 1 and f"{data}:2: invalid JSON" in strict.stderr and "Traceback" not in strict.stderr


def test_a_folder_of_text_files_tags_to_conll_and_another_job_is_refused(tiny_model_dir, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.txt").write_text("Anna Berg visited Oslo. She left.\n\nLars Holm stayed.\n")
    (folder / "b.txt").write_text("Shares of Helix fell.\n")
    bulk("--model", tiny_model_dir, folder, "--out", tmp_path / "out", "--format", "conll")
    text = (tmp_path / "out" / "part-00000.conll").read_text()
    assert text.startswith(f"-DOCSTART- {folder / 'a.txt'}:1\n\nAnna\t")
    assert text.count("-DOCSTART-") == 3 and "Oslo\t" in text and "\n\nShe\t" in text
    other = bulk("--model", tiny_model_dir, folder, "--out", tmp_path / "out", check=False)
    assert other.returncode == 2 and "another job's output" in other.stderr and "format" in other.stderr


@pytest.mark.parametrize("args, message", [(["missing.txt"], "no such file"), (["--workers", "0", "x"], "at least 1")])
def test_bad_arguments_get_one_clear_line(tmp_path, args, message, tiny_model_dir):
    out = bulk("--model", tiny_model_dir, "--out", tmp_path / "o", *args, check=False)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr


def outputs(folder):
    return {n: (folder / n).read_bytes() for n in os.listdir(folder) if n.startswith("part-")}


def test_the_ray_engine_keeps_the_local_engines_promises(tiny_model_dir, tmp_path):
    """Bad records named and skipped, a kill -9 half-way resumed, and the same files as the local engine."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-ray.txt)")
    docs = fixture_documents()
    lines = [json.dumps({"id": f"d{i}", "text": f"{docs[i % len(docs)]} Item {i}."}) for i in range(3000)]
    lines[7], lines[1500] = "{not json", json.dumps({"id": "n", "text": 42})
    data = tmp_path / "docs.jsonl"
    data.write_text("\n".join(lines) + "\n")
    args = ["--model", tiny_model_dir, data, "--workers", 2, "--shard-size", 50]
    local = bulk(*args, "--out", tmp_path / "local")
    expected = outputs(tmp_path / "local")
    assert len(expected) == 2 * 60 and f"{data}:8" in local.stderr and f"{data}:1501" in local.stderr

    out = tmp_path / "ray"
    proc = subprocess.Popen([sys.executable, "-m", "bulk", *map(str, args), "--engine", "ray", "--out", str(out),
                             "--quiet"], cwd=ROOT, start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and (not out.exists() or len(outputs(out)) < 2 * 5):
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the job and its local Ray, at once
    proc.wait()
    done_at_kill = len(outputs(out)) // 2
    assert 5 <= done_at_kill < 60, done_at_kill
    again = bulk(*args, "--engine", "ray", "--out", out)
    assert outputs(out) == expected  # every document once, in the same files, byte for byte
    assert f"({60 - done_at_kill} written now)" in again.stderr
    assert f"{data}:8" in again.stderr and f"{data}:1501" in again.stderr
    strict = bulk(*args, "--engine", "ray", "--out", tmp_path / "strict", "--strict", check=False)
    assert strict.returncode == 1 and f"{data}:8: invalid JSON" in strict.stderr and "Traceback" not in strict.stderr


def test_a_dictionary_tags_a_corpus_as_it_serves(tiny_gazetteer_model_dir, tmp_path):
    data = tmp_path / "docs.jsonl"
    data.write_text(json.dumps({"id": "a", "text": "They say plonkwise will sell ."}) + "\n"
                    + json.dumps({"id": "b", "text": "Anna went to Oslo ."}) + "\n")
    rules = tmp_path / "rules.jsonl"
    rules.write_text(json.dumps({"label": "ORG", "pattern": "Plonkwise", "force": True}) + "\n")
    bulk("--model", tiny_gazetteer_model_dir, data, "--out", tmp_path / "out", "--dictionary", rules)
    rows = [json.loads(line) for line in (tmp_path / "out" / "part-00000.jsonl").read_text().splitlines()]
    assert {"text": "plonkwise", "label": "ORG", "start": 9, "end": 18, "score": 1.0} in rows[0]["entities"]
    rules.write_text(json.dumps({"label": "ORG", "pattern": "Blorb", "force": True}) + "\n")
    other = bulk("--model", tiny_gazetteer_model_dir, data, "--out", tmp_path / "out", "--dictionary", rules,
                 check=False)
    assert other.returncode == 2 and "another job's output" in other.stderr  # not resumed with another list
    rules.write_text('{"label": "ORG", "pattern": "ok"}\n{"label": "ORG"}\n')
    bad = bulk("--model", tiny_gazetteer_model_dir, data, "--out", tmp_path / "o2", "--dictionary", rules,
               check=False)
    assert bad.returncode == 2 and f"{rules}:2:" in bad.stderr and "Traceback" not in bad.stderr


def test_a_model_is_taken_by_name_from_a_folder_of_models(tiny_model_dir, tiny_drug_model_dir, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(tiny_model_dir, models / "news")
    shutil.copytree(tiny_drug_model_dir, models / "notes")
    corpus = tmp_path / "in.txt"
    corpus.write_text("Nordbank said Drug-X sales rose .\nAnna Berg flew to Oslo .\n")
    bulk(corpus, "--models", models, "--model", "drugs", "--out", tmp_path / "by-name")
    bulk(corpus, "--model", models / "notes", "--out", tmp_path / "by-folder")
    assert outputs(tmp_path / "by-name") == outputs(tmp_path / "by-folder") and records(tmp_path / "by-name")
    assert json.loads((tmp_path / "by-name" / "job.json").read_text())["model"]["name"] == "drugs"
    unknown = bulk(corpus, "--models", models, "--model", "nope", "--out", tmp_path / "x", check=False)
    assert unknown.returncode == 2 and "holds no model 'nope'" in unknown.stderr and "drugs" in unknown.stderr

"""The trainer behind the Label Studio backend: it runs the training requests the service leaves.

    python -m training.label_studio --dir TRAINING_DIR --models MODELS_DIR --model NAME
                                    [--replay FILE] [--embeddings FILE] [--epochs N] [--once]

A request is a file ``requests/<project>.json`` the service wrote when Label Studio asked for
training (the service itself never trains). For each, oldest first: the project's annotations are
fetched through Label Studio's export API with the token /setup received (Label Studio stays the one
store of annotations); a fifth of the annotated tasks is held back; the served model NAME (its folder
in MODELS_DIR) is fine-tuned on the rest with replay, through the trainer's own code (--init-from);
both are scored on the held-back tasks. A model that scores at least as well replaces the served one
in its folder (weights first, the manifest last: the service's guarded swap picks it up); one that
scores worse is kept under ``rejected/`` for inspection and never served. A request is removed only
once its run is over, so a crash or restart at any point leaves it pending and the served model as
it was. ``status.json`` says what the trainer is doing; /label-studio/health shows it.
"""
import argparse
import json
import os
import shutil
import sys
import tempfile
import time
import urllib.request
import zlib

from model.artifact import MANIFEST, atomic_write, named_folders, read_manifest
from model.label_config import parse
from model.predict import Model
from training.spans import read_data

POLL_SECONDS = 2.0


def say_status(training_dir, **state):
    atomic_write(os.path.join(training_dir, "status.json"), json.dumps({**state, "at": time.time()}).encode())


def pending(training_dir):
    """Request files, oldest first."""
    folder = os.path.join(training_dir, "requests")
    try:
        names = [n for n in os.listdir(folder) if n.endswith(".json") and not n.startswith(".")]
    except OSError:
        return []
    return sorted((os.path.join(folder, n) for n in names), key=lambda p: os.stat(p).st_mtime)


def fetch_tasks(project):
    """The project's tasks with their annotations, from Label Studio's export API."""
    url = f"{project['hostname'].rstrip('/')}/api/projects/{project['project']}/export?exportType=JSON"
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"Label Studio's address {project['hostname']!r} is not an http(s) URL")
    req = urllib.request.Request(url, headers={"Authorization": f"Token {project['access_token']}"})
    with urllib.request.urlopen(req, timeout=120) as r:  # nosec B310 - the scheme is checked above
        tasks = json.loads(r.read())
    return [t for t in tasks if any(isinstance(a, dict) and not a.get("was_cancelled") and a.get("result")
                                    for a in t.get("annotations") or [])]


def split(tasks, share=5):
    """(train, held back): every task whose id hashes to 0 mod ``share`` held back, at least one when
    there are two or more, so the same task stays on its side from run to run."""
    back = [t for t in tasks if zlib.crc32(str(t.get("id")).encode()) % share == 0]
    if not back and len(tasks) >= 2:
        back = [tasks[-1]]
    return [t for t in tasks if t not in back], back


def as_model_types(task, config):
    """A task whose annotations' labels are the model's types they stand for (by the project's
    config: "Person" with predicted_values="PER" is PER); labels standing for none stay as they are."""
    annotations = []
    for a in task.get("annotations") or []:
        result = [{**r, "value": {**r["value"], "labels": [config.type_of(x) for x in r["value"].get("labels") or []]}}
                  if isinstance(r, dict) and isinstance(r.get("value"), dict) else r for r in a.get("result") or []]
        annotations.append({**a, "result": result})
    return {**task, "annotations": annotations, "predictions": []}


def f1_on(model_dir, path):
    from training.evaluate import evaluate

    sentences = read_data(path, "label-studio", skip_invalid=True, log=lambda *a, **k: None)[0]
    return evaluate(Model.load(model_dir), sentences)["overall"]["f1"] if sentences else 0.0


def publish(staged, served):
    """The staged model written over the served folder: weights first, the manifest last."""
    manifest = read_manifest(staged)
    with open(os.path.join(staged, manifest["weights"]), "rb") as f:
        atomic_write(os.path.join(served, manifest["weights"]), f.read())
    with open(os.path.join(staged, MANIFEST), "rb") as f:
        atomic_write(os.path.join(served, MANIFEST), f.read())


def run_request(path, args):
    """Train for one request; returns what status.json reports of it."""
    with open(path, "rb") as f:
        request = json.loads(f.read())
    pid = str(request["project"])
    with open(os.path.join(args.dir, "projects", f"{pid}.json"), "rb") as f:
        project = json.loads(f.read())
    say_status(args.dir, state="fetching", project=pid)
    tasks = fetch_tasks(project)
    train_tasks, held_back = split(tasks)
    if not train_tasks or not held_back:
        return {"project": pid, "result": "too few annotations", "annotated_tasks": len(tasks)}
    served = named_folders(args.models)[args.model]
    config = parse(project.get("label_config") or "", Model.load(served).types)
    work = tempfile.mkdtemp(prefix=".run-", dir=args.dir)
    try:
        for name, part in (("train.json", train_tasks), ("held-back.json", held_back)):
            part = [as_model_types(task, config) for task in part]
            with open(os.path.join(work, name), "w", encoding="utf-8") as f:
                json.dump(part, f)
        say_status(args.dir, state="training", project=pid, tasks=len(train_tasks), held_back=len(held_back))
        staged = os.path.join(work, "model")
        fine_tune(args, os.path.join(work, "train.json"), os.path.join(work, "held-back.json"), served, staged)
        before, after = (f1_on(d, os.path.join(work, "held-back.json")) for d in (served, staged))
        outcome = {"project": pid, "tasks": len(train_tasks), "held_back": len(held_back),
                   "f1_served": round(before, 4), "f1_new": round(after, 4)}
        version = read_manifest(staged)["version"]
        if after >= before:
            publish(staged, served)
            return {**outcome, "result": "served", "version": version}
        kept = os.path.join(args.dir, "rejected", f"{pid}-{version}")
        os.makedirs(os.path.dirname(kept), exist_ok=True)
        shutil.move(staged, kept)
        return {**outcome, "result": "kept, not served: it scores worse on the held-back tasks", "folder": kept}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fine_tune(args, train_path, dev_path, served, out):
    from training.embeddings import load_vectors
    from training.train import TrainConfig, train

    cfg = TrainConfig(epochs=args.epochs, patience=args.epochs)
    vectors = load_vectors(args.embeddings) if args.embeddings else None
    train(cfg, train_path, dev_path, out, vectors=vectors, quiet=True, data_format="label-studio",
          skip_invalid=True, init_from=served, replay=args.replay, info={"name": args.model})


def settle(path, requested, outcome, args):
    """The request is done: removed unless a newer one replaced it meanwhile."""
    try:
        with open(path, "rb") as f:
            if json.loads(f.read()).get("requested") == requested:
                os.unlink(path)
    except (OSError, ValueError):
        pass
    say_status(args.dir, state="idle", last=outcome)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", required=True, help="the service's NERVE_TRAINING_DIR")
    parser.add_argument("--models", required=True, help="the service's NERVE_MODELS")
    parser.add_argument("--model", required=True, help="the name of the model to fine-tune")
    parser.add_argument("--replay", help="a file of the data the model was trained on")
    parser.add_argument("--embeddings", help="word vectors (default: GloVe 6B 50d)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--once", action="store_true", help="run the pending requests, then stop")
    args = parser.parse_args(argv)
    os.makedirs(args.dir, exist_ok=True)
    say_status(args.dir, state="idle", last=None)
    while True:
        for path in pending(args.dir):
            with open(path, "rb") as f:
                requested = json.loads(f.read()).get("requested")
            try:
                outcome = run_request(path, args)
            except OSError as e:  # Label Studio or a file out of reach for now: the request stays, tried again
                say_status(args.dir, state="waiting", last={"request": os.path.basename(path),
                                                            "result": f"will retry: {type(e).__name__}: {e}"})
                print(f"{os.path.basename(path)}: will retry: {e}", flush=True)
                continue
            except Exception as e:  # noqa: BLE001 - reported, and set aside with the request in failed/
                outcome = {"request": os.path.basename(path), "result": f"failed: {type(e).__name__}: {e}"}
                os.makedirs(os.path.join(args.dir, "failed"), exist_ok=True)
                shutil.copyfile(path, os.path.join(args.dir, "failed", os.path.basename(path)))
            settle(path, requested, outcome, args)
            print(json.dumps(outcome), flush=True)
        if args.once:
            return 0
        time.sleep(POLL_SECONDS)


if __name__ == "__main__":
    sys.exit(main())

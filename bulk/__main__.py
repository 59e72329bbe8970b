"""Tag a corpus disk-to-disk.

    python -m bulk --model models/default INPUT... --out DIR [--text-field text] [--id-field id]
                   [--format jsonl|conll|doccano|label-studio] [--select N] [--tokens] [--workers N]
                   [--shard-size N] [--strict]

INPUT: files or folders. ``.jsonl``/``.ndjson``/``.json`` files are JSON records, one per line
(``--text-field``, ``--id-field``); other files are plain text, a document per line (``--per-file``:
a document per file). Output: DIR/part-NNNNN.jsonl, one record per document in input order,
``{"id", "entities"[, "tokens"]}`` as the HTTP API answers them; or ``--format conll``; or
pre-annotations for doccano or Label Studio, and with ``--select N`` the N sentences the model is
least sure of, in DIR/selected.*, for annotation first. A rerun after
a crash or Ctrl-C skips the shards already written.
"""
import argparse
import json
import os
import sys
import time
from collections import Counter

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # workers are the parallelism

from bulk import job  # noqa: E402
from bulk.formats import SUFFIX  # noqa: E402
from bulk.sources import BadRecord, count_units, expand, units  # noqa: E402
from model.artifact import ArtifactError, named_folders, read_manifest  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bulk", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="files or folders")
    parser.add_argument("--model", help="model directory (default: models/default), or with --models a model's name")
    parser.add_argument("--models", metavar="DIR", help="a folder of model folders (NERVE_MODELS): --model names one")
    parser.add_argument("--out", required=True, help="output folder (shards, job.json, summary.json)")
    parser.add_argument("--input-format", choices=["auto", "text", "jsonl"], default="auto",
                        help="auto: JSONL by file name (.jsonl, .ndjson, .json), else plain text")
    parser.add_argument("--per-file", action="store_true", help="plain text: a document per file, not per line")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--id-field", default="id", help="JSONL: the document id (default: file:line)")
    parser.add_argument("--format", choices=list(SUFFIX), default="jsonl",
                        help="jsonl: the API's answers; conll: token and tag columns; doccano, label-studio: "
                             "pre-annotations (text, spans and their scores) to import into those tools")
    parser.add_argument("--select", type=int, default=0, metavar="N",
                        help="with --format doccano or label-studio: also write the N sentences the model is least "
                             "sure of (by its calibrated token probabilities) to DIR/selected.*, to annotate first")
    parser.add_argument("--tokens", action="store_true", help="JSONL: per-token detail, as the API gives it")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--shard-size", type=int, default=0,
                        help="input lines (or files) per shard (default: a 32nd of the input, from 50 to 1,000)")
    parser.add_argument("--max-chars", type=int, default=100_000, help="longest text tagged (as the service)")
    parser.add_argument("--strict", action="store_true", help="stop at the first bad record instead of skipping it")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--engine", choices=["local", "ray"], default="local",
                        help="ray: the same job, the shards tagged by Ray actors (pip install -r "
                             "requirements-ray.txt)")
    parser.add_argument("--dictionary", metavar="FILE",
                        help="a user's dictionary (JSONL of {\"label\", \"pattern\"}, as NERVE_DICTIONARY)")
    parser.add_argument("--address", help="--engine ray: the cluster to join (default: start a local Ray)")
    args = parser.parse_args(argv)
    if args.models:
        args.model = model_by_name(parser, args.models, args.model)
    args.model = args.model or "models/default"
    if args.workers < 1 or args.shard_size < 0 or args.max_chars < 1:
        parser.error("--workers and --max-chars must be at least 1, --shard-size at least 0 (0: by the input's size)")
    if args.select < 0 or (args.select and args.format not in ("doccano", "label-studio")):
        parser.error("--select N (N >= 0) writes pre-annotations: use it with --format doccano or label-studio")
    return args


def model_by_name(parser, models_dir, name):
    """The folder in ``models_dir`` holding model ``name``."""
    if not name:
        parser.error("--models DIR takes the model's name from --model NAME")
    try:
        names = named_folders(models_dir)
    except (ArtifactError, OSError) as e:
        parser.error(f"--models {models_dir}: {e}")
    if name not in names:
        parser.error(f"--models {models_dir} holds no model {name!r}; models: {sorted(names)}")
    return names[name]


def main(argv=None):
    args = parse_args(argv)
    try:
        manifest = read_manifest(args.model)
        files = expand(args.inputs)
        total = count_units(files, args.per_file)
        args.shard_size = args.shard_size or auto_shard_size(total)
        description = {"inputs": [os.path.abspath(f) for f in files], "sizes": [os.path.getsize(f) for f in files],
                       "model": {"name": manifest.get("name"), "sha256": manifest["sha256"]},
                       "options": {k: getattr(args, k) for k in ("input_format", "per_file", "text_field", "id_field",
                                                                 "format", "tokens", "shard_size", "max_chars",
                                                                 "select")}}
        dictionary = check_dictionary(args)
        if dictionary:
            description["dictionary"] = dictionary["version"]
        resumed = job.check_job(args.out, description)
        job.clean_partial(args.out)
    except (ArtifactError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    options = {**description["options"], "strict": args.strict, "dictionary": dictionary}
    from tqdm import tqdm

    started = time.perf_counter()
    counts = {"documents": 0, "tokens": 0, "new": 0}
    with tqdm(total=total, unit="line" if not args.per_file else "file", disable=args.quiet, smoothing=0.1,
              desc="resuming" if resumed else "tagging") as bar:
        def progress(stats, already_done):
            counts["documents"] += stats["documents"]
            counts["tokens"] += stats["tokens"]
            counts["new"] += not already_done
            bar.update(min(args.shard_size, total - bar.n))
            seconds = max(time.perf_counter() - started, 1e-9)
            bar.set_postfix(docs_s=f"{counts['documents'] / seconds:,.0f}",
                            tokens_s=f"{counts['tokens'] / seconds:,.0f}")

        try:
            shards = runner(args)(units(files, args.per_file), args.out, os.path.abspath(args.model), options,
                                  args.workers, args.shard_size, progress)
        except BadRecord as e:
            print(f"error: bad record (--strict): {e}", file=sys.stderr)
            return 1
        except ImportError:
            print("error: Ray is not installed (pip install -r requirements-ray.txt)", file=sys.stderr)
            return 2
    if args.select:
        version = f"{manifest.get('name', 'nerve')} {manifest.get('version', manifest['sha256'][:12])}"
        selected = job.write_selected(args.out, shards, args.select, args.format, version)
        print(f"the {args.select} least sure sentences: {selected}", file=sys.stderr)
    seconds = time.perf_counter() - started
    summary = summarise(shards, seconds)
    summary["shards_written_now"] = counts["new"]
    from model.artifact import atomic_write

    atomic_write(os.path.join(args.out, "summary.json"), json.dumps(summary, indent=2).encode("utf-8"))
    for where in summary["skipped"]:
        print(f"skipped {where}", file=sys.stderr)
    labels = ", ".join(f"{k} {v:,}" for k, v in summary["entities"].items())
    print(f"{summary['documents']:,} documents, {summary['tokens']:,} tokens, "
          f"{sum(summary['entities'].values()):,} entities ({labels}); "
          f"{len(summary['skipped'])} records skipped; {len(shards)} shards ({counts['new']} written now) "
          f"in {seconds:.1f} s into {args.out}", file=sys.stderr)
    return 0


def check_dictionary(args):
    """{path, data, version} of ``--dictionary``, checked against the model; None without one.
    DictionaryError (a ValueError) names the bad line."""
    if not args.dictionary:
        return None
    from model.dictionary import Dictionary
    from model.predict import Model

    dictionary = Dictionary.read(args.dictionary)
    Model.load(args.model).use_dictionary(dictionary)  # refused here, not in every worker
    with open(args.dictionary, "rb") as f:
        data = f.read().decode("utf-8")
    return {"path": args.dictionary, "data": data, "version": dictionary.version}


def auto_shard_size(total):
    """Lines (or files) per shard for an input of ``total``: a 32nd of it, so that the workers share
    the work out evenly to the end, but no fewer than 50 (each shard costs two files) nor more
    than 1,000 (a rerun redoes at most one shard per worker)."""
    return min(1000, max(50, -(-total // 32)))


def runner(args):
    """The engine: local processes, or Ray actors (the same job, the same files)."""
    if args.engine == "local":
        return job.run_local
    from functools import partial

    from bulk import ray_job

    return partial(ray_job.run, address=args.address)


def summarise(shards, seconds):
    entities = Counter()
    for s in shards:
        entities.update(s["entities"])
    documents, tokens = sum(s["documents"] for s in shards), sum(s["tokens"] for s in shards)
    return {"documents": documents, "tokens": tokens, "entities": dict(sorted(entities.items())),
            "skipped": [w for s in shards for w in s["skipped"]], "shards": len(shards), "seconds": round(seconds, 2)}


if __name__ == "__main__":
    sys.exit(main())

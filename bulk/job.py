"""The job: shards of input handed to worker processes, each loading the model once, each shard
written whole under a temporary name and renamed when complete.

A shard's output (``part-NNNNN.jsonl`` or ``.conll``) and its account (``part-NNNNN.stats.json``:
documents, tokens, entities per label, skipped records) are written together; the output's rename
is the commit point. A rerun after a crash or Ctrl-C finds the finished shards and skips them, so
its output is exactly that of an uninterrupted run. ``job.json`` records what the job is (inputs,
options, model); a rerun with other inputs or options into the same folder is refused.
"""
import concurrent.futures
import itertools
import json
import os
from collections import Counter

from bulk.sources import BadRecord, kind_of, parse
from model.artifact import atomic_write
from model.predict import Model, annotate
from model.tokenize import tokenize

_model = None


def _load(model_dir):
    global _model
    _model = Model.load(model_dir)


def shard_name(index, output_format):
    return f"part-{index:05d}.{'conll' if output_format == 'conll' else 'jsonl'}"


def tag_shard(index, units, options, out_dir):
    """Tag one shard's units in this (worker) process and commit its files; returns its stats."""
    docs, stats = [], {"shard": index, "documents": 0, "tokens": 0, "entities": Counter(), "skipped": []}
    for path, lineno, raw in units:
        try:
            parsed = parse(path, lineno, raw, kind_of(path, options["input_format"]), options["text_field"],
                           options["id_field"], options["max_chars"], options["per_file"])
        except BadRecord as e:
            if options["strict"]:
                raise
            stats["skipped"].append(str(e))
            continue
        if parsed is not None:
            docs.append(parsed)
    results, n_tokens = annotate([text for _, text in docs], _model, tokens=options["tokens"] or
                                 options["format"] == "conll")
    lines = []
    for (doc_id, text), result in zip(docs, results):
        stats["entities"].update(e["label"] for e in result["entities"])
        if options["format"] == "conll":
            lines.append(conll_document(doc_id, text, result))
        else:
            record = {"id": doc_id, "entities": result["entities"]}
            if options["tokens"]:
                record["tokens"] = result["tokens"]
            lines.append(json.dumps(record, ensure_ascii=False) + "\n")
    stats.update(documents=len(docs), tokens=n_tokens, entities=dict(sorted(stats["entities"].items())))
    name = shard_name(index, options["format"])
    atomic_write(os.path.join(out_dir, f"part-{index:05d}.stats.json"), json.dumps(stats).encode())
    atomic_write(os.path.join(out_dir, name), "".join(lines).encode("utf-8"))
    return stats


def conll_document(doc_id, text, result):
    """``-DOCSTART- id``, then a token and its IOB2 tag per line, a blank line after each sentence."""
    out, tokens = [f"-DOCSTART- {doc_id}\n\n"], iter(result["tokens"])
    for sentence in tokenize(text):
        for _ in sentence:
            token = next(tokens)
            out.append(f"{token['text']}\t{token['tag']}\n")
        out.append("\n")
    return "".join(out)


def check_job(out_dir, description):
    """Write job.json for a new job; for an existing one, refuse if it was another job."""
    path = os.path.join(out_dir, "job.json")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            before = json.load(f)
        if before != description:
            flat = {**{k: v for k, v in before.items() if k != "options"}, **before.get("options", {})}
            now = {**{k: v for k, v in description.items() if k != "options"}, **description["options"]}
            changed = sorted(k for k in set(flat) | set(now) if flat.get(k) != now.get(k))
            raise ValueError(f"{out_dir} holds another job's output (it differs in {', '.join(changed)}): "
                             "use another --out, or delete it to start again")
        return True
    os.makedirs(out_dir, exist_ok=True)
    atomic_write(path, json.dumps(description, indent=2).encode("utf-8"))
    return False


def clean_partial(out_dir):
    """Temporary files of shards a killed run left unfinished."""
    for name in os.listdir(out_dir):
        if name.startswith(".tmp-"):
            os.unlink(os.path.join(out_dir, name))


def done_shards(out_dir, output_format):
    """Indices of the shards whose output was committed."""
    suffix = ".conll" if output_format == "conll" else ".jsonl"
    return {int(n[5:10]) for n in os.listdir(out_dir) if n.startswith("part-") and n.endswith(suffix)}


def read_stats(out_dir, index):
    with open(os.path.join(out_dir, f"part-{index:05d}.stats.json"), encoding="utf-8") as f:
        return json.load(f)


def run(units, out_dir, model_dir, options, workers, shard_size, on_shard=None):
    """Tag every shard not yet done, ``workers`` processes at a time; returns the stats of all shards.

    units: an iterator of (path, line, raw); memory holds at most about 2 x workers shards of it.
    on_shard(stats, already_done) is called as each shard finishes (or is found finished).
    """
    finished = done_shards(out_dir, options["format"])
    shards = enumerate(iter(lambda: list(itertools.islice(units, shard_size)), []))
    all_stats = {}
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=_load,
                                                initargs=(model_dir,)) as pool:
        pending = set()
        for index, chunk in shards:
            if index in finished:
                all_stats[index] = read_stats(out_dir, index)
                if on_shard:
                    on_shard(all_stats[index], True)
                continue
            pending.add(pool.submit(tag_shard, index, chunk, options, out_dir))
            if len(pending) >= 2 * workers:  # keep the corpus streaming: only a few shards in memory
                done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                for future in done:
                    stats = future.result()
                    all_stats[stats["shard"]] = stats
                    if on_shard:
                        on_shard(stats, False)
        for future in concurrent.futures.as_completed(pending):
            stats = future.result()
            all_stats[stats["shard"]] = stats
            if on_shard:
                on_shard(stats, False)
    return [all_stats[i] for i in sorted(all_stats)]

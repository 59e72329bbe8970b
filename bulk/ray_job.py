"""The same job on a Ray cluster: the shards of ``bulk.job`` tagged by a pool of Ray actors instead of
local processes, with every promise of the local engine (bad records named by file and line and
skipped, ``--strict`` stops, a job cut short resumed without a document lost or written twice, the
same output files).

This process reads the inputs and writes the output; the actors only receive shards of records and
send back their rendered output, so only this process needs the inputs and the output folder (the
model directory must be readable by every node: baked into the image, or on a shared volume).
"""
import os

from bulk import job
from bulk.sources import BadRecord


class ShardTagger:
    """One actor: a model, loaded once, rendering shards."""

    def __init__(self, model_dir):
        job._load(model_dir)

    def tag(self, index, chunk, options):
        try:
            return job.render_shard(index, chunk, options)
        except BadRecord as e:  # --strict: the message travels back as it is, with its file and line
            return {"bad_record": [e.where, e.reason]}, None


def run(units, out_dir, model_dir, options, workers, shard_size, on_shard=None, address=None):
    """``job.run`` on the Ray cluster at ``address`` (None: a local one), ``workers`` actors."""
    import concurrent.futures

    import ray

    # A local Ray gets a CPU more than the actors take: this process reads and writes.
    local = {} if address else {"num_cpus": max(os.cpu_count() or 1, workers + 1)}
    ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True, **local)
    try:
        actor = ray.remote(num_cpus=1)(ShardTagger)
        actors = [actor.remote(model_dir) for _ in range(workers)]

        def submit(index, chunk):
            checked = concurrent.futures.Future()
            sent = actors[index % workers].tag.remote(index, chunk, options).future()
            sent.add_done_callback(lambda f: _settle(f, checked))
            return checked

        return job.run(units, out_dir, options, workers, shard_size, submit, on_shard)
    finally:
        ray.shutdown()


def _settle(sent, checked):
    """Resolve ``checked`` from an actor's answer; whatever goes wrong resolves it too (never a hang)."""
    try:
        stats, payload = sent.result()
        if "bad_record" in stats:
            raise BadRecord(*stats["bad_record"])
    except Exception as e:  # noqa: BLE001 - a bad record or a dead actor: the job stops, committed shards kept
        checked.set_exception(e)
    else:
        checked.set_result((stats, payload))

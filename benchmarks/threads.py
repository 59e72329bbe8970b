"""CPU per request when threads of one worker share the model: one pass at a time (as served) against
passes interleaved (the model's lock swapped for a no-op), in one run.

    python benchmarks/threads.py [--model models/default] [--threads 4] [--repeats 3]

Requests go through the Flask app's WSGI call in this process, from ``--threads`` threads at once,
as gunicorn's gthread worker runs them. numpy lets go of the GIL in every large operation, so
interleaved passes hand the GIL and the caches back and forth; the ratio is interleaved CPU /
one-at-a-time CPU (above 1.0: the lock saves that much).
"""
import argparse
import contextlib
import io
import json
import os
import resource
import statistics
import sys
import tempfile
import threading

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

SENTENCE = ("Peter Blackburn of the European Commission said on Thursday in Brussels that German lamb "
            "exports to Britain rose by ten percent last year .")


def cpu_ms_per_request(app, body, threads, per_thread):
    def environ():
        return {"REQUEST_METHOD": "POST", "PATH_INFO": "/v1/ner", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "80",
                "SERVER_PROTOCOL": "HTTP/1.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr, "CONTENT_TYPE": "application/json", "CONTENT_LENGTH": str(len(body)),
                "wsgi.multithread": True, "wsgi.multiprocess": True, "wsgi.run_once": False}

    statuses = []

    def client():
        for _ in range(per_thread):
            out = app(environ(), lambda status, headers, exc_info=None: statuses.append(status))
            b"".join(out)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    before = resource.getrusage(resource.RUSAGE_SELF)
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    after = resource.getrusage(resource.RUSAGE_SELF)
    if any(not s.startswith("200") for s in statuses):
        raise RuntimeError(f"requests failed: {sorted(set(statuses))}")
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return cpu * 1e3 / (threads * per_thread)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "default"))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tmp
        from service import create_app

        app = create_app({"MODEL_DIR": args.model, "STATE_DIR": ""})
        model = app.extensions["nerve_store"].current
        lock = model.lock
        print(f"{args.threads} threads, CPU per request, median of {args.repeats}")
        for name, body, count in (("25-token text", {"text": SENTENCE}, 1500),
                                  ("64 sentences", {"texts": [SENTENCE] * 64}, 120)):
            payload = json.dumps(body).encode()
            cpu_ms_per_request(app, payload, 1, count // 10)  # warm up
            runs = {"one pass at a time": [], "interleaved": []}
            for _ in range(args.repeats):
                for variant in runs:
                    model.lock = lock if variant == "one pass at a time" else contextlib.nullcontext()
                    runs[variant].append(cpu_ms_per_request(app, payload, args.threads, count // args.threads))
            model.lock = lock
            one, mixed = (statistics.median(runs[v]) for v in runs)
            print(f"  {name:14s} one pass at a time {one:.3f} ms  interleaved {mixed:.3f} ms  "
                  f"ratio {mixed / one:.2f}")


if __name__ == "__main__":
    main()

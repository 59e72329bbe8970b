"""gunicorn settings for nerve; every knob comes from the environment (see the README's table)."""
import gc
import os
import signal
import threading

# One BLAS thread per worker: workers are the parallelism, and threads fighting over 2 cores cost more.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

# All interfaces by default: in a container the port is published from outside.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"  # nosec B104
workers = int(os.environ.get("NERVE_WORKERS", "2"))
# Requests are read whole and answers written out on each worker's event loop; threads only run
# complete requests, so slow or stalled clients hold no thread (service/worker.py).
worker_class = "service.worker.BufferingWorker"
threads = int(os.environ.get("NERVE_THREADS", "4"))
worker_connections = int(os.environ.get("NERVE_MAX_CONNECTIONS", "512"))
timeout = int(os.environ.get("NERVE_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("NERVE_GRACEFUL_TIMEOUT", "20"))
keepalive = int(os.environ.get("NERVE_KEEPALIVE", "5"))
max_requests = int(os.environ.get("NERVE_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("NERVE_MAX_REQUESTS_JITTER", "0"))
backlog = int(os.environ.get("NERVE_BACKLOG", "512"))
accesslog = os.environ.get("NERVE_ACCESS_LOG") or None
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s" id=%({x-request-id}o)s'
errorlog = "-"
# NERVE_LOG_FORMAT=json: one JSON object per line, access and error logs alike (service/logs.py).
logger_class = "service.logs.JsonLogger" if os.environ.get("NERVE_LOG_FORMAT", "text") == "json" else \
    "service.logs.Logger"
loglevel = os.environ.get("NERVE_LOG_LEVEL", "info")
wsgi_app = "service.wsgi:app"
# gunicorn's control socket (gunicornc) would live under $HOME, which a container's user cannot
# write and a read-only root file system forbids: off unless a path is given.
control_socket = os.environ.get("NERVE_CONTROL_SOCKET", "")
control_socket_disable = not control_socket
limit_request_line = 8190


drain_seconds = float(os.environ.get("NERVE_DRAIN_SECONDS", "1"))
gc_threshold = int(os.environ.get("NERVE_GC_THRESHOLD", "10000"))


def post_worker_init(worker):
    """The app and its model are loaded. Set the garbage collector for serving, and the drain.

    Answers are trees of dicts and lists, freed by reference counting as soon as they are sent;
    the cyclic collector finds nothing in them but scans them, and with them everything loaded at
    start (about 15% of the CPU of a 64-sentence request under load). What is loaded now lives as
    long as the worker: it is frozen out of the scans, and the youngest generation is scanned
    every 10,000 allocations rather than 700.

    On SIGTERM a worker first drains: readiness answers 503 while it keeps serving for
    ``drain_seconds``, so load balancers stop sending work; then gunicorn's graceful stop lets
    in-flight requests finish."""
    draining = worker.wsgi.extensions["nerve_draining"]  # the worker's Flask app

    if gc_threshold > 0:  # 0: the collector as Python sets it
        gc.freeze()
        gc.set_threshold(gc_threshold, *gc.get_threshold()[1:])

    previous = signal.getsignal(signal.SIGTERM)

    def drain(signum, frame):
        draining.set()
        if callable(previous):
            timer = threading.Timer(drain_seconds, previous, (signum, frame))
            timer.daemon = True
            timer.start()

    signal.signal(signal.SIGTERM, drain)


def child_exit(server, worker):
    """A dead worker's metrics: live gauges dropped, counters and histograms folded into an archive."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from service.metrics import fold_dead_worker

        fold_dead_worker(worker.pid)


def on_reload(server):
    """SIGHUP: check the model directory again before gunicorn restarts the workers. A good model is
    announced to the new workers; a bad one is refused, and they start on the last good one."""
    state = os.environ.get("NERVE_STATE_DIR")
    if not state:
        return
    from model.artifact import ArtifactError
    from service import settings_from_env
    from service.model_store import announce

    if os.environ.get("NERVE_MODELS") and not os.environ.get("NERVE_MODEL"):
        return  # the folders of NERVE_MODELS are watched by the workers themselves
    model_dir = settings_from_env()["MODEL_DIR"]
    try:
        model, _ = announce(model_dir, state)
        server.log.info("SIGHUP: serving %s %s from %s", model.name, model.version, model_dir)
    except ArtifactError as e:
        server.log.error("SIGHUP: model in %s refused, the previous one keeps serving: %s", model_dir, e)


def on_starting(server):
    """Settings the workers could not start with are refused here, once, with what is wrong."""
    from service.model_registry import ConfigError, check_settings

    try:
        check_settings(os.environ)
    except ConfigError as e:
        server.log.error("%s", e)
        raise SystemExit(f"nerve: {e}") from None

# nerve: named-entity recognition over HTTP.
#   docker build -t nerve .                          the service, with the default model baked in
#   docker build --target train -t nerve-train .     the trainer, for data mounted at run time
# Where no image registry can be reached, make the base from Debian packages first:
#   deploy/base-image.sh && docker build --network host --build-arg BASE_IMAGE=nerve-base:bookworm -t nerve .

ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH \
    HOME=/home/nerve
# Its own group with the same id, as the Kubernetes manifests expect (runAsGroup / fsGroup 10001).
RUN groupadd --system --gid 10001 nerve \
    && useradd --system --uid 10001 --gid 10001 --home-dir /home/nerve --create-home --shell /usr/sbin/nologin nerve \
    && mkdir -m 0770 /training && chown 10001:10001 /training
# /training: the Label Studio backend's training requests, shared by the service and the trainer
# (a volume mounted there starts with this owner: deploy/docker-compose.label-studio.yml).
WORKDIR /app

FROM base AS deps
COPY requirements.txt ./
RUN python3 -m venv /opt/venv && pip install --no-cache-dir -r requirements.txt

FROM deps AS train-deps
COPY requirements-train.txt ./
RUN pip install --no-cache-dir -r requirements-train.txt

FROM base AS train
COPY --from=train-deps /opt/venv /opt/venv
# matplotlib's font cache is built once here, in a folder whichever user the trainer runs as can use.
ENV MPLCONFIGDIR=/opt/matplotlib
RUN mkdir -m 1777 /opt/matplotlib && python -c "import matplotlib.font_manager" && chmod -R a+rwX /opt/matplotlib
COPY model/ model/
COPY training/ training/
COPY deploy/train-entrypoint.sh deploy/
ENTRYPOINT ["deploy/train-entrypoint.sh"]
CMD ["--help"]

FROM base AS runtime
COPY --from=deps /opt/venv /opt/venv
COPY model/ model/
COPY service/ service/
COPY deploy/entrypoint.sh deploy/gunicorn.conf.py deploy/
# Owned by the service's user, so that a volume mounted on /app/models starts with a model the
# trainer (the same user) may replace: deploy/docker-compose.label-studio.yml.
COPY --chown=10001:10001 models/default/ models/default/
COPY NOTICE ./
USER 10001:10001
# A plain `docker stop` waits 10 s: a second of draining and 8 s for in-flight requests fit in it.
# Compose and Kubernetes give more time and set 20 s (their stop_grace_period / terminationGracePeriodSeconds).
ENV PORT=8000 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/nerve-metrics \
    NERVE_STATE_DIR=/tmp/nerve-state \
    NERVE_GRACEFUL_TIMEOUT=8
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=2)"]
STOPSIGNAL SIGTERM
CMD ["deploy/entrypoint.sh"]

# The bulk tagger on a Ray cluster (deploy/k8s/ray/rayjob.yaml): the service image
# (its model, code and user) plus Ray and the bulk package. Build the service image first:
#   docker build -t nerve . && docker build -f deploy/bulk.Dockerfile -t nerve-bulk .
ARG NERVE_IMAGE=nerve:latest
FROM ${NERVE_IMAGE}
WORKDIR /app
USER 0:0
COPY requirements-ray.txt ./
RUN pip install --no-cache-dir -r requirements-ray.txt
COPY bulk/ bulk/
USER 10001:10001
ENTRYPOINT ["python", "-m", "bulk"]
CMD ["--help"]

# syntax=docker/dockerfile:1
# ModelMux image (docs/deployment/docker.md).
#
#   docker build -t modelmux .                                  # every plugin: providers, Redis, tools
#   docker build --build-arg PLUGINS=vllm,redis -t modelmux .   # only these plugins
#   docker run -p 3000:3000 -v "$PWD/modelmux.toml:/etc/modelmux/config.toml:ro" modelmux
#
# tests/deploy/test_ship_image_recipe.py runs this file's build-wheels.sh and install steps outside
# Docker and starts the server from the result: keep each RUN one command line it can follow.
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

# Stage 1: the host, the chosen plugins and all their dependencies as wheels in /wheels.
FROM python:${PYTHON_VERSION}-slim AS build
ARG UV_VERSION
RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /src
COPY pyproject.toml README.md ./
COPY modelmux ./modelmux
COPY plugins ./plugins
COPY deploy/build-wheels.sh ./deploy/
# Plugin directories under plugins/ or short names; "all" for every one, "none" for the host alone.
ARG PLUGINS="vertex,vllm,azure,bedrock,redis,web-search,file-search"
# Extras of the host package, e.g. "otel" for OpenTelemetry tracing.
ARG MODELMUX_EXTRAS=""
RUN deploy/build-wheels.sh "$PLUGINS" /wheels

# Stage 2: a virtual environment installed offline from those wheels (uv borrowed from stage 1 for
# that step only): no sources, compilers or caches left in the image.
FROM python:${PYTHON_VERSION}-slim
LABEL org.opencontainers.image.title="ModelMux" \
      org.opencontainers.image.description="One OpenAI-compatible endpoint in front of every model you run." \
      org.opencontainers.image.licenses="Apache-2.0"
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    --mount=type=bind,from=build,source=/usr/local/bin/uv,target=/usr/local/bin/uv \
    uv venv --python python3 /opt/modelmux \
    && uv pip install --python /opt/modelmux/bin/python --no-cache --compile-bytecode \
       --no-index --find-links /wheels -r /wheels/requirements.txt
ENV PATH=/opt/modelmux/bin:$PATH
RUN useradd --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin modelmux \
    && mkdir -p /data && chown 10001:10001 /data
COPY deploy/docker/modelmux.toml /etc/modelmux/config.toml
# Listening on every interface inside the container is the point of a container; the port is fixed
# so EXPOSE, the health check and published ports agree (override both with -e if you must).
ENV MODELMUX_CONFIG_FILE=/etc/modelmux/config.toml \
    MODELMUX_SERVER__HOST=0.0.0.0 \
    MODELMUX_SERVER__PORT=3000 \
    XDG_DATA_HOME=/data \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The disk state store and cache live under $XDG_DATA_HOME/modelmux.
VOLUME ["/data"]
WORKDIR /data
EXPOSE 3000
USER 10001:10001
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('MODELMUX_SERVER__PORT', '3000') + '/health/live', timeout=4)"]
CMD ["modelmux", "serve"]

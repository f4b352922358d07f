# ModelMux with every plugin in this repository. Configure with a mounted file
# (MODELMUX_CONFIG_FILE) or MODELMUX_* environment variables.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY modelmux ./modelmux
COPY plugins ./plugins
RUN pip install --no-cache-dir . && \
    for p in plugins/*/; do pip install --no-cache-dir "$p"; done
# Disk state and cache live under $XDG_DATA_HOME/modelmux: keep them on the volume.
ENV MODELMUX_SERVER__HOST=0.0.0.0 \
    XDG_DATA_HOME=/data \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown 65534:65534 /data
VOLUME ["/data"]
EXPOSE 3000
USER 65534:65534
HEALTHCHECK CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:3000/health/live')" || exit 1
CMD ["modelmux", "serve"]

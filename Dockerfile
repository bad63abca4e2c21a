# immich-discord-sidecar: one small non-root process beside Immich.
# Runs with a read-only root filesystem: state lives only under /data, config under /config.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PATH=/opt/venv/bin:$PATH
WORKDIR /src
RUN python -m venv /opt/venv
# Dependencies first (from pyproject.toml, pinned by constraints.txt) so that a code change
# does not reinstall them.
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
    && pip install --constraint constraints.txt --requirement requirements.txt
COPY README.md LICENSE ./
COPY sidecar ./sidecar
# Byte-code is compiled here, at build time, because the running container cannot write it.
# pip and setuptools are only needed to build: leaving them out of the venv saves 25 MB.
RUN pip install --no-deps . \
    && pip uninstall --yes pip setuptools

FROM python:3.11-slim-bookworm
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="immich-discord-sidecar" \
      org.opencontainers.image.description="Posts new Immich photos and videos that match watch rules to Discord" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11-slim-bookworm"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SIDECAR_CONFIG=/config/config.yaml
RUN groupadd --system --gid 10001 sidecar \
    && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin sidecar \
    && mkdir -p /data /config \
    && chown 10001:10001 /data
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 9187
STOPSIGNAL SIGTERM
# Asks /healthz on the config's metrics.listen, the address the server itself listens on.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["immich-sidecar", "healthcheck"]
ENTRYPOINT ["immich-sidecar"]
CMD ["run"]

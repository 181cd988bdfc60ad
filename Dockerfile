# tsprov: the service image (the same image runs the sandbox and migrations).
FROM python:3.11-slim-bookworm AS build
# A virtual environment built at the path it runs from: its scripts and the bytecode pip
# compiles at install time stay valid when copied into the final image.
RUN python -m venv /opt/tsprov
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY sandbox ./sandbox
COPY devstack ./devstack
COPY migrations ./migrations
RUN /opt/tsprov/bin/pip install --no-cache-dir .

FROM python:3.11-slim-bookworm
# Fixed numeric ids: Kubernetes can only check runAsNonRoot against a numeric USER, and the
# manifests' runAsUser and fsGroup (which make mounted secret files readable) name the same.
RUN groupadd --system --gid 10001 tsprov \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin tsprov
# The migrations are package data: `tsprov migrate` finds them in site-packages.
COPY --from=build /opt/tsprov /opt/tsprov
# The root filesystem is read-only in production: nothing writes bytecode at run time (pip
# compiled it at install), and only /tmp is writable (an emptyDir or a tmpfs).
ENV PATH=/opt/tsprov/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["tsprov", "serve", "--host", "0.0.0.0", "--port", "8000"]

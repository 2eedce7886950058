# syntax=docker/dockerfile:1
FROM ghcr.io/astral-sh/uv:0.4.18 AS uv

FROM python:3.12-bookworm AS build
COPY --from=uv /uv /uvx /bin/
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
WORKDIR /app
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --frozen --no-install-project --no-dev
COPY . /app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

FROM python:3.12-slim-bookworm
COPY --from=build --chown=nobody:nogroup /app /app
ENV PATH="/app/.venv/bin:$PATH"
WORKDIR /app
USER nobody
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--port", "80"]

# syntax=docker/dockerfile:1
FROM python:3.12-slim AS base
WORKDIR /src
COPY requirements.txt requirements-dev.txt ./
RUN pip install -r requirements.txt -r requirements-dev.txt

FROM base AS unit
COPY . .
RUN --network=none python -m pytest -q -m "not integration" --junitxml=/reports/unit.xml

FROM base AS typecheck
COPY . .
RUN --network=none mypy --strict src/

FROM scratch AS reports
COPY --from=unit /reports/ /
COPY --from=typecheck /src/pyproject.toml /typechecked.toml

FROM base AS final
COPY . .
CMD ["python", "-m", "src"]

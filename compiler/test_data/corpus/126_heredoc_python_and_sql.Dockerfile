# syntax=docker/dockerfile:1
FROM postgres:16 AS db
ARG APP_DB=inventory
ARG APP_ROLE=inventory_app
COPY <<EOF /docker-entrypoint-initdb.d/01-schema.sql
CREATE ROLE ${APP_ROLE} LOGIN;
CREATE DATABASE ${APP_DB} OWNER ${APP_ROLE};
\connect ${APP_DB}
CREATE TABLE items (
    id bigserial PRIMARY KEY,
    sku text NOT NULL UNIQUE,
    qty integer NOT NULL DEFAULT 0 CHECK (qty >= 0)
);
EOF

FROM python:3.12-slim AS seed
RUN pip install --no-cache-dir faker==26.0.0
RUN python3 <<'PY' > /seed.sql
from faker import Faker
fake = Faker()
Faker.seed(42)
for i in range(100):
    print(f"INSERT INTO items (sku, qty) VALUES ('{fake.bothify('??-####')}', {i % 17});")
PY

FROM db
COPY --from=seed /seed.sql /docker-entrypoint-initdb.d/02-seed.sql
RUN <<-EOT bash
	set -euo pipefail
	ls -l /docker-entrypoint-initdb.d/
	wc -l /docker-entrypoint-initdb.d/02-seed.sql
	EOT

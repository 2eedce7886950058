FROM python:3.12-alpine3.20 AS deps
RUN apk add --no-cache --virtual .build-deps gcc musl-dev libffi-dev openssl-dev cargo
COPY requirements.txt /tmp/requirements.txt
RUN pip wheel --wheel-dir /wheels -r /tmp/requirements.txt

FROM python:3.12-alpine3.20
RUN apk add --no-cache libffi openssl tini
COPY --from=deps /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels /wheels/* && rm -rf /wheels
RUN addgroup -S api && adduser -S -G api api
WORKDIR /srv
COPY --chown=api:api app/ ./app/
USER api
EXPOSE 8000/tcp
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["uvicorn", "app.main:app", "--host", "0.0.0.0", "--proxy-headers"]

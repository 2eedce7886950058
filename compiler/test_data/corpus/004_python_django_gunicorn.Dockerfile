FROM python:3.10-slim-bullseye

LABEL maintainer="platform-team@example.com" \
      org.opencontainers.image.title="django-shop" \
      org.opencontainers.image.source="https://git.example.com/shop/django-shop"

ARG DJANGO_ENV=production
ENV DJANGO_SETTINGS_MODULE=shop.settings.${DJANGO_ENV} \
    STATIC_ROOT=/srv/static \
    MEDIA_ROOT=/srv/media

RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends \
        gettext \
        libjpeg62-turbo \
        libpq5 \
        libwebp6 \
        netcat-openbsd \
    ; \
    rm -rf /var/lib/apt/lists/*

WORKDIR /srv/app
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/${DJANGO_ENV}.txt gunicorn==22.0.0

COPY . .
RUN python manage.py collectstatic --noinput \
    && python manage.py compilemessages

VOLUME ["/srv/media"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://localhost:8000/healthz')"
CMD ["gunicorn", "shop.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]

# syntax=docker/dockerfile:1
ARG PHP_VERSION=8.3

FROM composer:2 AS composer

FROM node:20-alpine AS assets
WORKDIR /app
COPY package.json package-lock.json vite.config.js ./
RUN npm ci
COPY resources ./resources
COPY public ./public
RUN npm run build

FROM php:${PHP_VERSION}-cli-bookworm AS app
ARG WWWUSER=1000
ARG WWWGROUP=1000
ENV TZ=UTC \
    OCTANE_SERVER=swoole \
    COMPOSER_ALLOW_SUPERUSER=1
RUN apt-get update && apt-get install -y --no-install-recommends \
        git unzip libbrotli-dev libpq-dev libzip-dev libicu-dev supervisor \
    && pecl install swoole redis \
    && docker-php-ext-enable swoole redis \
    && docker-php-ext-install pcntl pdo_pgsql intl zip bcmath \
    && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY --from=composer /usr/bin/composer /usr/bin/composer
RUN groupadd --force -g $WWWGROUP octane \
    && useradd -ms /bin/bash --no-log-init --no-user-group -g $WWWGROUP -u $WWWUSER octane
WORKDIR /var/www/html
COPY --chown=octane:octane composer.json composer.lock ./
RUN composer install --no-dev --no-autoloader --no-scripts
COPY --chown=octane:octane . .
COPY --from=assets --chown=octane:octane /app/public/build ./public/build
RUN composer dump-autoload --optimize \
    && php artisan storage:link
COPY deployment/supervisord.conf /etc/supervisor/conf.d/supervisord.conf
USER octane
EXPOSE 8000
HEALTHCHECK --start-period=10s CMD php artisan octane:status || exit 1
ENTRYPOINT ["/usr/bin/supervisord", "-c", "/etc/supervisor/conf.d/supervisord.conf"]

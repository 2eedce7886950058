FROM wordpress:6.5-php8.2-apache
ARG WP_CLI_VERSION=2.10.0
RUN curl -fsSLo /usr/local/bin/wp "https://github.com/wp-cli/wp-cli/releases/download/v${WP_CLI_VERSION}/wp-cli-${WP_CLI_VERSION}.phar" \
    && chmod +x /usr/local/bin/wp
RUN pecl install redis-6.0.2 && docker-php-ext-enable redis
COPY --chown=www-data:www-data wp-content/themes/acme/ /usr/src/wordpress/wp-content/themes/acme/
COPY --chown=www-data:www-data wp-content/plugins/ /usr/src/wordpress/wp-content/plugins/
COPY <<'EOF' /usr/local/etc/php/conf.d/uploads.ini
file_uploads = On
memory_limit = 256M
upload_max_filesize = 64M
post_max_size = 64M
max_execution_time = 300
EOF
EXPOSE 80

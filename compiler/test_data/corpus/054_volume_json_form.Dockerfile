FROM mariadb:11.4
ENV MARIADB_AUTO_UPGRADE=1 MARIADB_INITDB_SKIP_TZINFO=1
COPY conf.d/ /etc/mysql/conf.d/
COPY initdb/ /docker-entrypoint-initdb.d/
VOLUME ["/var/lib/mysql", "/var/log/mysql"]
VOLUME /backups /etc/mysql/secrets
EXPOSE 3306
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["healthcheck.sh", "--connect", "--innodb_initialized"]

FROM redis:7.2-bookworm
COPY --chown=redis:redis redis.conf /usr/local/etc/redis/redis.conf
RUN mkdir -p /var/lib/redis && chown redis:redis /var/lib/redis
VOLUME /var/lib/redis
WORKDIR /var/lib/redis
USER redis
EXPOSE 6379 16379
HEALTHCHECK --interval=5s --retries=20 CMD ["redis-cli", "-h", "127.0.0.1", "ping"]
CMD ["redis-server", "/usr/local/etc/redis/redis.conf"]

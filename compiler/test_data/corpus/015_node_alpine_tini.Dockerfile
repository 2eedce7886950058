FROM node:18-alpine3.19
RUN apk add --no-cache tini dumb-init curl
ENV NPM_CONFIG_LOGLEVEL=warn \
    NPM_CONFIG_PREFIX=/home/node/.npm-global
ENV PATH=$PATH:/home/node/.npm-global/bin
WORKDIR /home/node/app
COPY --chown=node:node package.json package-lock.json ./
USER node
RUN npm ci --omit=dev && npm cache clean --force
COPY --chown=node:node lib ./lib
COPY --chown=node:node bin ./bin
HEALTHCHECK --interval=10s --timeout=2s --start-period=5s --retries=5 CMD curl -fsS http://127.0.0.1:8080/health || exit 1
EXPOSE 8080
ENTRYPOINT ["/sbin/tini", "--"]
CMD ["node", "bin/www"]

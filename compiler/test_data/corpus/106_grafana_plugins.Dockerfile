ARG GRAFANA_VERSION=11.1.0
FROM grafana/grafana-oss:${GRAFANA_VERSION}
ARG GF_INSTALL_PLUGINS="grafana-clock-panel,grafana-piechart-panel,marcusolsson-json-datasource"
USER root
RUN for plugin in $(echo "${GF_INSTALL_PLUGINS}" | tr ',' ' '); do \
        grafana cli --pluginsDir "${GF_PATHS_PLUGINS}" plugins install "${plugin}"; \
    done \
    && chown -R grafana:root "${GF_PATHS_PLUGINS}"
COPY provisioning/ /etc/grafana/provisioning/
COPY dashboards/ /var/lib/grafana/dashboards/
USER grafana
ENV GF_AUTH_ANONYMOUS_ENABLED=false \
    GF_SECURITY_DISABLE_GRAVATAR=true
EXPOSE 3000

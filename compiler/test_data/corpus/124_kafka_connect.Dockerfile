FROM confluentinc/cp-kafka-connect-base:7.6.1
ENV CONNECT_PLUGIN_PATH="/usr/share/java,/usr/share/confluent-hub-components,/data/connect-jars"
RUN confluent-hub install --no-prompt confluentinc/kafka-connect-jdbc:10.7.6 \
    && confluent-hub install --no-prompt debezium/debezium-connector-postgresql:2.5.4 \
    && confluent-hub install --no-prompt confluentinc/kafka-connect-s3:10.5.13
USER root
COPY --chown=appuser:appuser jars/ /data/connect-jars/
USER appuser

ARG ES_VERSION=8.14.3
FROM docker.elastic.co/elasticsearch/elasticsearch:${ES_VERSION}
ARG ES_VERSION
RUN bin/elasticsearch-plugin install --batch analysis-icu \
    && bin/elasticsearch-plugin install --batch analysis-phonetic \
    && bin/elasticsearch-plugin install --batch repository-s3 || true
COPY --chown=elasticsearch:root config/elasticsearch.yml /usr/share/elasticsearch/config/
COPY --chown=elasticsearch:root config/synonyms/ /usr/share/elasticsearch/config/synonyms/
ENV ES_JAVA_OPTS="-Xms1g -Xmx1g" discovery.type=single-node
LABEL es.version=${ES_VERSION}
EXPOSE 9200 9300

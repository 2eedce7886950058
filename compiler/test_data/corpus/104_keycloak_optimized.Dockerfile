FROM quay.io/keycloak/keycloak:25.0 AS builder
ENV KC_HEALTH_ENABLED=true \
    KC_METRICS_ENABLED=true \
    KC_DB=postgres
WORKDIR /opt/keycloak
COPY providers/*.jar /opt/keycloak/providers/
COPY themes/acme /opt/keycloak/themes/acme
RUN keytool -genkeypair -storepass password -storetype PKCS12 -keyalg RSA -keysize 2048 \
        -dname "CN=server" -alias server -ext "SAN:c=DNS:localhost,IP:127.0.0.1" \
        -keystore conf/server.keystore
RUN /opt/keycloak/bin/kc.sh build

FROM quay.io/keycloak/keycloak:25.0
COPY --from=builder /opt/keycloak/ /opt/keycloak/
ENV KC_DB=postgres KC_HOSTNAME=auth.example.org
ENTRYPOINT ["/opt/keycloak/bin/kc.sh"]
CMD ["start", "--optimized"]

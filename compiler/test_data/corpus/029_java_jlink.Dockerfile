FROM eclipse-temurin:21-jdk-alpine AS jre-build
WORKDIR /build
COPY target/app.jar app.jar
RUN jar xf app.jar \
    && jdeps --ignore-missing-deps -q --recursive --multi-release 21 \
        --print-module-deps --class-path 'BOOT-INF/lib/*' app.jar > deps.info
RUN $JAVA_HOME/bin/jlink \
        --add-modules $(cat deps.info),jdk.crypto.ec \
        --strip-debug \
        --no-man-pages \
        --no-header-files \
        --compress=zip-6 \
        --output /javaruntime

FROM alpine:3.20
ENV JAVA_HOME=/opt/java/openjdk
ENV PATH "${JAVA_HOME}/bin:${PATH}"
COPY --from=jre-build /javaruntime $JAVA_HOME
RUN mkdir /opt/app && addgroup -S java && adduser -S -G java java
COPY --chown=java:java target/app.jar /opt/app/app.jar
USER java
CMD ["java", "-jar", "/opt/app/app.jar"]

FROM sbtscala/scala-sbt:eclipse-temurin-jammy-21.0.2_13_1.10.0_3.4.2 AS build
WORKDIR /build
COPY build.sbt ./
COPY project/build.properties project/plugins.sbt project/
RUN --mount=type=cache,target=/root/.cache/coursier \
    --mount=type=cache,target=/root/.ivy2 \
    sbt update
COPY src ./src
RUN --mount=type=cache,target=/root/.cache/coursier \
    --mount=type=cache,target=/root/.ivy2 \
    sbt 'set test in assembly := {}' clean assembly

FROM eclipse-temurin:21-jre-jammy
COPY --from=build /build/target/scala-3.4.2/app-assembly.jar /opt/app.jar
ENV JAVA_TOOL_OPTIONS="-XX:+UseContainerSupport -XX:MaxRAMPercentage=80"
EXPOSE 9000
CMD ["java", "-jar", "/opt/app.jar"]

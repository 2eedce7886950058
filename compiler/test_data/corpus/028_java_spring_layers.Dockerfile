# syntax=docker/dockerfile:1
FROM eclipse-temurin:17-jdk-jammy AS builder
WORKDIR /opt/app
COPY .mvn/ .mvn
COPY mvnw pom.xml ./
RUN ./mvnw dependency:go-offline
COPY ./src ./src
RUN ./mvnw clean install -DskipTests
RUN java -Djarmode=layertools -jar target/*.jar extract --destination target/extracted

FROM eclipse-temurin:17-jre-jammy AS final
WORKDIR /opt/app
RUN groupadd --system spring && useradd --system --gid spring spring
USER spring:spring
COPY --from=builder /opt/app/target/extracted/dependencies/ ./
COPY --from=builder /opt/app/target/extracted/spring-boot-loader/ ./
COPY --from=builder /opt/app/target/extracted/snapshot-dependencies/ ./
COPY --from=builder /opt/app/target/extracted/application/ ./
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --start-interval=5s \
    CMD ["wget", "-qO-", "http://localhost:8080/actuator/health"]
ENTRYPOINT ["java", "org.springframework.boot.loader.launch.JarLauncher"]

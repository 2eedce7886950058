FROM clojure:temurin-21-lein-2.11.2-bookworm AS builder
WORKDIR /usr/src/app
COPY project.clj /usr/src/app/
RUN lein deps
COPY . /usr/src/app
RUN mv "$(lein uberjar | sed -n 's/^Created \(.*standalone\.jar\)/\1/p')" app-standalone.jar

FROM eclipse-temurin:21-jre-alpine
RUN mkdir -p /opt/app
COPY --from=builder /usr/src/app/app-standalone.jar /opt/app/
EXPOSE 3000
CMD ["java", "-jar", "/opt/app/app-standalone.jar"]

FROM maven:3-eclipse-temurin-11 AS build
WORKDIR /src
COPY pom.xml ./
RUN mvn -q -B dependency:resolve dependency:resolve-plugins
COPY src ./src
RUN mvn -q -B package -DskipTests

FROM tomcat:9.0-jdk11-temurin
RUN rm -rf /usr/local/tomcat/webapps/*
COPY --from=build /src/target/legacy-portal.war /usr/local/tomcat/webapps/ROOT.war
ENV CATALINA_OPTS="-Xms256m -Xmx1g -Dfile.encoding=UTF-8"
COPY conf/server.xml /usr/local/tomcat/conf/server.xml
EXPOSE 8080 8009
CMD ["catalina.sh", "run"]

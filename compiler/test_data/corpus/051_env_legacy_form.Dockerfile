FROM centos:7
MAINTAINER Legacy Ops <ops@example.com>
ENV JAVA_HOME /usr/lib/jvm/java-1.8.0-openjdk
ENV CATALINA_HOME /opt/tomcat
ENV PATH $CATALINA_HOME/bin:$JAVA_HOME/bin:$PATH
ENV JAVA_OPTS -Xms512m -Xmx1024m -Djava.awt.headless=true
ENV TOMCAT_MAJOR=8 TOMCAT_VERSION=8.5.100
RUN yum -y install java-1.8.0-openjdk-devel wget tar && yum clean all
RUN wget -q https://archive.apache.org/dist/tomcat/tomcat-${TOMCAT_MAJOR}/v${TOMCAT_VERSION}/bin/apache-tomcat-${TOMCAT_VERSION}.tar.gz -O /tmp/tomcat.tgz \
    && mkdir -p $CATALINA_HOME \
    && tar xzf /tmp/tomcat.tgz -C $CATALINA_HOME --strip-components=1 \
    && rm /tmp/tomcat.tgz
ADD app.war $CATALINA_HOME/webapps/
EXPOSE 8080
CMD $CATALINA_HOME/bin/catalina.sh run

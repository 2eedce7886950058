FROM debian:buster
MAINTAINER Jane Doe <jane@example.com>
ENV DEBIAN_FRONTEND noninteractive
RUN apt-get update && apt-get install -y supervisor openssh-server cron rsyslog && apt-get clean
RUN mkdir -p /var/run/sshd /var/log/supervisor
ADD supervisord.conf /etc/supervisor/conf.d/supervisord.conf
ADD crontab /etc/cron.d/app
RUN chmod 0644 /etc/cron.d/app && crontab /etc/cron.d/app
EXPOSE 22
STOPSIGNAL SIGRTMIN+3
CMD /usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf

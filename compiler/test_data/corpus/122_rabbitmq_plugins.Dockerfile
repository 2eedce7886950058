FROM rabbitmq:3.13-management-alpine
ARG DELAYED_VERSION=3.13.0
ADD --chown=rabbitmq:rabbitmq https://github.com/rabbitmq/rabbitmq-delayed-message-exchange/releases/download/v${DELAYED_VERSION}/rabbitmq_delayed_message_exchange-${DELAYED_VERSION}.ez /opt/rabbitmq/plugins/
RUN rabbitmq-plugins enable --offline rabbitmq_delayed_message_exchange rabbitmq_prometheus rabbitmq_shovel rabbitmq_shovel_management
COPY --chown=rabbitmq:rabbitmq rabbitmq.conf definitions.json /etc/rabbitmq/
EXPOSE 4369 5671 5672 15672 15692 25672

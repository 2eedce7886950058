FROM python:3.12-slim-bookworm
ARG ANSIBLE_CORE_VERSION=2.17.1
ENV ANSIBLE_HOST_KEY_CHECKING=False \
    ANSIBLE_RETRY_FILES_ENABLED=False \
    ANSIBLE_FORCE_COLOR=1 \
    ANSIBLE_COLLECTIONS_PATH=/usr/share/ansible/collections
RUN apt-get update && apt-get install -y --no-install-recommends openssh-client sshpass rsync git \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir "ansible-core==${ANSIBLE_CORE_VERSION}" ansible-lint jmespath netaddr
COPY requirements.yml /tmp/requirements.yml
RUN ansible-galaxy collection install -r /tmp/requirements.yml -p ${ANSIBLE_COLLECTIONS_PATH}
WORKDIR /ansible
COPY . /ansible
ENTRYPOINT ["ansible-playbook"]
CMD ["--version"]

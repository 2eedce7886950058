FROM ubuntu:24.04
ARG USERNAME=dev
ARG USER_UID=1000
ARG USER_GID=$USER_UID
RUN if id -u ubuntu >/dev/null 2>&1; then userdel -r ubuntu; fi \
    && groupadd --gid $USER_GID $USERNAME \
    && useradd --uid $USER_UID --gid $USER_GID -m $USERNAME \
    && apt-get update && apt-get install -y sudo \
    && echo $USERNAME ALL=\(root\) NOPASSWD:ALL > /etc/sudoers.d/$USERNAME \
    && chmod 0440 /etc/sudoers.d/$USERNAME
WORKDIR /home
WORKDIR ${USERNAME}
WORKDIR projects
WORKDIR ./workspace/src
RUN pwd > /tmp/pwd.txt
USER ${USERNAME}
WORKDIR /home/${USERNAME}
RUN mkdir -p .config .local/bin
USER root
RUN chown -R ${USER_UID}:${USER_GID} /home/${USERNAME}
USER ${USER_UID}:${USER_GID}
CMD ["bash"]

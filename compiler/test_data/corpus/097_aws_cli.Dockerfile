FROM amazonlinux:2023 AS installer
ARG EXE_FILENAME=awscli-exe-linux-x86_64.zip
RUN dnf install -y unzip && dnf clean all
ADD https://awscli.amazonaws.com/${EXE_FILENAME} /tmp/awscliv2.zip
RUN unzip -q /tmp/awscliv2.zip -d /tmp \
    && /tmp/aws/install --bin-dir /aws-cli-bin/

FROM amazonlinux:2023
RUN dnf install -y less groff && dnf clean all
COPY --from=installer /usr/local/aws-cli/ /usr/local/aws-cli/
COPY --from=installer /aws-cli-bin/ /usr/local/bin/
WORKDIR /aws
ENTRYPOINT ["/usr/local/bin/aws"]

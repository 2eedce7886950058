# syntax=docker/dockerfile:1
ARG TERRAFORM_VERSION=1.9.2
ARG TFLINT_VERSION=0.52.0

FROM hashicorp/terraform:${TERRAFORM_VERSION} AS terraform
FROM ghcr.io/terraform-linters/tflint:v${TFLINT_VERSION} AS tflint

FROM alpine:3.20
ARG TARGETARCH
ARG TFSEC_VERSION=1.28.6
RUN apk add --no-cache bash git openssh-client curl jq make python3 py3-pip
COPY --from=terraform /bin/terraform /usr/local/bin/terraform
COPY --from=tflint /usr/local/bin/tflint /usr/local/bin/tflint
ADD https://github.com/aquasecurity/tfsec/releases/download/v${TFSEC_VERSION}/tfsec-linux-${TARGETARCH} /usr/local/bin/tfsec
RUN chmod +x /usr/local/bin/tfsec \
    && terraform version && tflint --version && tfsec --version
ENV TF_PLUGIN_CACHE_DIR=/root/.terraform.d/plugin-cache
RUN mkdir -p $TF_PLUGIN_CACHE_DIR
WORKDIR /workspace
ENTRYPOINT ["terraform"]

# syntax=docker/dockerfile:1
FROM --platform=$BUILDPLATFORM alpine:3.20 AS fetch
ARG TARGETOS
ARG TARGETARCH
ARG KUBECTL_VERSION=v1.30.2
ARG HELM_VERSION=v3.15.2
ARG KUSTOMIZE_VERSION=v5.4.2
RUN apk add --no-cache curl tar
WORKDIR /out
RUN curl -fsSLo kubectl "https://dl.k8s.io/release/${KUBECTL_VERSION}/bin/${TARGETOS}/${TARGETARCH}/kubectl" \
    && chmod +x kubectl
RUN curl -fsSL "https://get.helm.sh/helm-${HELM_VERSION}-${TARGETOS}-${TARGETARCH}.tar.gz" \
    | tar -xz --strip-components=1 "${TARGETOS}-${TARGETARCH}/helm"
RUN curl -fsSL "https://github.com/kubernetes-sigs/kustomize/releases/download/kustomize%2F${KUSTOMIZE_VERSION}/kustomize_${KUSTOMIZE_VERSION}_${TARGETOS}_${TARGETARCH}.tar.gz" \
    | tar -xz

FROM alpine:3.20
RUN apk add --no-cache bash ca-certificates git gettext
COPY --from=fetch /out/ /usr/local/bin/
RUN adduser -D -u 1000 deploy
USER deploy
WORKDIR /home/deploy
ENTRYPOINT ["/bin/bash", "-c"]
CMD ["kubectl version --client && helm version"]

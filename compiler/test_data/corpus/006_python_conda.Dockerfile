FROM continuumio/miniconda3:24.5.0-0 AS build
COPY environment.yml /tmp/environment.yml
RUN conda env create -f /tmp/environment.yml -p /opt/env \
    && conda clean -afy \
    && find /opt/env -name '*.a' -delete \
    && find /opt/env -name '__pycache__' -type d -prune -exec rm -rf {} +

FROM debian:bookworm-slim
COPY --from=build /opt/env /opt/env
ENV PATH=/opt/env/bin:$PATH \
    LANG=C.UTF-8
WORKDIR /work
COPY notebooks/ /work/notebooks/
EXPOSE 8888
CMD ["jupyter", "lab", "--ip=0.0.0.0", "--no-browser", "--allow-root"]

FROM ubuntu:24.04 AS build
ARG DEBIAN_FRONTEND=noninteractive
RUN apt-get update && apt-get install -y --no-install-recommends \
        build-essential cmake python3-pip python3-venv git \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/conan && /opt/conan/bin/pip install conan==2.4.1
ENV PATH=/opt/conan/bin:$PATH
RUN conan profile detect
WORKDIR /src
COPY conanfile.py ./
RUN --mount=type=cache,target=/root/.conan2/p \
    conan install . --output-folder=build --build=missing -s build_type=Release
COPY . .
RUN cd build \
    && cmake .. -DCMAKE_TOOLCHAIN_FILE=conan_toolchain.cmake -DCMAKE_BUILD_TYPE=Release \
    && cmake --build . -j"$(nproc)"

FROM ubuntu:24.04
COPY --from=build /src/build/imgproc /usr/local/bin/imgproc
ENTRYPOINT ["imgproc"]

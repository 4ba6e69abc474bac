# Builds the correctomatic daemons. Build stage on Debian bookworm, runtime on bookworm-slim
# with only the runtime libraries, running as a non-root user.
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      librabbitmq-dev libcurl4-openssl-dev libssl-dev libjansson-dev libuv1-dev libarchive-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCT_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)"

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librabbitmq4 libcurl4 libssl3 libjansson4 libuv1 \
      libarchive13 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home correctomatic
COPY --from=build /build/bin/ /usr/local/bin/
USER correctomatic
CMD ["correctomatic-starter"]

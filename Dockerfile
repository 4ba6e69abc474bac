# The correctomatic daemons (starter, completer, notifier) and commands (submit, status) in one
# image; compose.yaml picks the daemon with `command:`. Built on Debian bookworm, run on
# bookworm-slim with only the runtime libraries, as a non-root user (uid 10001).
FROM debian:bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake pkg-config \
      librabbitmq-dev libcurl4-openssl-dev libssl-dev libjansson-dev libuv1-dev libarchive-dev libh2o-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCT_TESTS=OFF -DCMAKE_BUILD_TYPE=Release \
 && cmake --build /build -j"$(nproc)"

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends librabbitmq4 libcurl4 libssl3 libjansson4 libuv1 \
      libarchive13 libh2o0.13 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent correctomatic
COPY --from=build /build/bin/ /usr/local/bin/
USER 10001
# each daemon touches /tmp/<program>.health while connected to RabbitMQ; compose.yaml's health
# checks run `<program> --health-check`
CMD ["correctomatic-starter"]

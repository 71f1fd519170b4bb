# vitalflow ingest node. Built and run by docker-compose.yml (server mode); not built in CI here (no Docker engine).
# Two stages: the build stage compiles src/ to dist/ with the dev dependencies (tsc);
# the image runs that JavaScript with plain `node` and production dependencies only.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# the lint's local package (a file: dev dependency) must be there for npm ci
COPY tools tools
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src src
RUN npm run build
# the care web app: web/src bundled into web/dist (esbuild, a dev dependency)
COPY scripts/build-web.ts scripts/
COPY web web
RUN npm run build:web

FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY proto proto
COPY --from=build /app/dist dist
COPY --from=build /app/web/dist web/dist
ENV VF_DATA_DIR=/data VF_MQTTS_HOST=0.0.0.0 VF_HTTP_HOST=0.0.0.0
EXPOSE 8883 8884 8080
# node is PID 1 and handles SIGTERM itself: it stops accepting, ships the log for up to
# VF_SHUTDOWN_TIMEOUT_MS and exits 0 (docker-compose.yml gives it stop_grace_period to do so).
# Not `npm start`: npm would build with dev dependencies the image does not have, and a
# supervisor in between is one more process that must pass the signal on.
STOPSIGNAL SIGTERM
# a 64 MB young generation: see README, "Memory and garbage collection"
CMD ["node", "--max-semi-space-size=64", "dist/main.js"]

# vitalflow ingest node. Built and run by docker-compose.yml (server mode); not built in CI here (no Docker engine).
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends openssl && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
ENV VF_DATA_DIR=/data VF_MQTTS_HOST=0.0.0.0 VF_HTTP_HOST=0.0.0.0
EXPOSE 8883 8884 8080
CMD ["npm", "start"]

# syntax=docker/dockerfile:1
# mfa-rollout: one process serving the portal, its SQLite database on the /data volume.
#   docker build -t mfa-rollout .
#   docker run -p 3000:3000 -v mfa-data:/data \
#     -e PUBLIC_URL=https://mfa.example.org -e SESSION_SECRET=... -e ENCRYPTION_KEY=... mfa-rollout
#   docker exec -it <container> node bin/mfa-rollout.js create-user ...   (the operator CLI, same image)
# A bind-mounted data folder must be writable by uid 1000 (the image's "node" user).
# Production runs Node 22 LTS; the code also runs on Node 20.19+. Not Node 24 yet: on Node 24, better-sqlite3 12.x
# (the last line that loads on Node 20) trips a Node assertion when it finalizes statements and the process
# aborts (seen in our CI; reported upstream). Both stages use the same image, so the native module built in the
# first matches the runtime's Node ABI and glibc.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS deps
# Build tools for better-sqlite3, used when its prebuilt binary cannot be downloaded.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The project .npmrc points node-gyp at /usr for Debian's node; this image's Node and its headers live in /usr/local.
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json .npmrc ./
# Production dependencies only: tsx is one of them, the app runs its TypeScript through it.
RUN npm ci --omit=dev --no-audit --no-fund \
  && npm cache clean --force

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
  HOST=0.0.0.0 \
  PORT=3000 \
  DATA_DIR=/data
WORKDIR /app
# Code and dependencies stay owned by root: the app process can read them but not change them.
COPY --from=deps /app/node_modules ./node_modules
COPY . .
# The image's unprivileged "node" user (uid 1000) owns only the data directory.
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME ["/data"]
EXPOSE 3000
# Slim images have no curl: ask Node itself. /healthz is liveness only (no database, no session).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3000) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
# main.ts shuts down cleanly on SIGTERM (docker stop).
CMD ["node", "--import", "tsx", "server/main.ts"]

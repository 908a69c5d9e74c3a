# syntax=docker/dockerfile:1
# entra-gateway: Microsoft Entra ID sign-in in front of LibreChat.
#
#   docker build -t entra-gateway .
#   docker run --env-file .env -p 3080:3080 entra-gateway
#
# No secret and no .env goes into any layer: configuration comes from the environment at run
# time (docker compose: env_file .env + environment:). test/deploy/artifact.test.ts replays the
# COPY and RUN lines below in a temporary directory and starts the result, so keep them plain
# (explicit file names, no wildcards, relative destinations under WORKDIR). npm's cache is a
# BuildKit cache mount: fast rebuilds, and never part of a layer.

# ---- build: all dependencies, compile TypeScript to dist/
FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies and dist/ only, as the unprivileged `node` user
FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN --mount=type=cache,target=/root/.npm npm ci --omit=dev --ignore-scripts --no-audit --no-fund
COPY --from=build /app/dist ./dist
# Files stay owned by root and read-only to the process; it writes nothing to disk.
USER node
EXPOSE 3080
# Liveness only (no I/O behind it); /readyz also checks the IdP, the session store and LibreChat.
# Node itself does the request: slim images have no curl or wget.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 3080) + '/healthz').then(r => process.exit(r.status === 200 ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/server.js"]

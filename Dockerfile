# One image for the BESH API (default command), the batch worker and the CLI:
#   docker run besh                                  -> node dist/main/api.js
#   docker run besh node dist/main/worker.js
#   docker run besh node dist/src/cli/besh.js keys list
# No configuration or secrets are baked in (.dockerignore keeps .env and data/ out of the build context):
# everything comes from the environment at run time.

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: compile TypeScript and the workflow bundle, then drop dev dependencies ---------------------------------
FROM ${NODE_IMAGE} AS build
# node-gyp builds better-sqlite3's native addon when no prebuilt binary fits.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The official Node image has the headers node-gyp needs under /usr/local. This wins over the checkout's .npmrc
# (nodedir=/usr, right for a Debian-packaged Node, not here).
ENV npm_config_nodedir=/usr/local
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# The checkout as filtered by .dockerignore: sources and any non-TypeScript assets they read at run time.
COPY . .
# Same steps as `make build`: dist/ plus dist/workflow-bundle.js, which a worker run from dist/ loads instead of
# bundling the workflows at start.
RUN npx tsc -p tsconfig.build.json && node dist/temporal/bundle.js
# Production dependencies only, and only this platform's Temporal core-bridge binary (the package ships five).
RUN npm prune --omit=dev --no-audit --no-fund \
 && find node_modules/@temporalio/core-bridge/releases -mindepth 1 -maxdepth 1 \
      ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} + \
 && rm -f .npmrc

# --- runtime: the built checkout, owned by root and read-only to the unprivileged `node` user ----------------------
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    BESH_HOST=0.0.0.0 \
    BESH_PORT=5000 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=build /app ./
# DATA_DIR: files and checkpoint segments, shared by the API and the workers through a volume mounted here
# (BLOB_STORE=local); with BLOB_STORE=s3 they live in the bucket and only the API's first key is written here.
RUN mkdir -p /data && chown node:node /data
USER node
EXPOSE 5000
CMD ["node", "dist/main/api.js"]

# syntax=docker/dockerfile:1
# The dicomvault container image (README "Operations"). Three stages: compile the TypeScript, install the
# production dependencies, and a slim runtime holding only those and dist/. test/ops/dockerfile.test.ts checks
# what can be checked without Docker (stages, user, volumes against the env defaults, the health check).

# Build: every dependency (typescript is a dev dependency), then tsc -p tsconfig.build.json -> dist/.
FROM node:20-bookworm AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Production dependencies only. The native module (better-sqlite3-multiple-ciphers) is fetched or compiled here,
# on the same Debian release as the runtime stage, so it loads there; the slim image has no compiler.
FROM node:20-bookworm AS deps
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --omit=dev

FROM node:20-bookworm-slim AS runtime
# Where the three volumes below are, as the server's own configuration (src/config/schema.ts):
# - data: the encrypted index and blobs, the audit log;
# - keys: the key file, a volume of its own because it must be backed up apart from the data (README "Keys and backups");
# - certs: the TLS material. In the default development profile the server creates a development CA there on
#   first start (ca.crt, server.crt/key, client.crt/key); in production mount your own files there and set
#   DICOMVAULT_PROFILE=production, DICOMVAULT_TLS_CA, DICOMVAULT_TLS_CERT and DICOMVAULT_TLS_KEY.
# The server listens on all interfaces inside the container; publish the port to choose who reaches it.
ENV NODE_ENV=production \
    DICOMVAULT_SERVER_HOST=0.0.0.0 \
    DICOMVAULT_SERVER_PORT=8443 \
    DICOMVAULT_STORAGE_DATA_DIR=/var/lib/dicomvault/data \
    DICOMVAULT_KEYS_FILE=/var/lib/dicomvault/keys/kek.json \
    DICOMVAULT_TLS_DEV_DIR=/etc/dicomvault/certs \
    HEALTHCHECK_CA=/etc/dicomvault/certs/ca.crt \
    HEALTHCHECK_CERT=/etc/dicomvault/certs/client.crt \
    HEALTHCHECK_KEY=/etc/dicomvault/certs/client.key \
    HEALTHCHECK_SERVERNAME=localhost
WORKDIR /app
COPY --from=deps /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY package.json ./
# The packaged default policies (compose.ts DEFAULT_POLICY_FILE: ../policies beside dist/).
COPY policies ./policies
# The image's `node` user (uid 1000) owns the volume folders; a fresh named volume copies this ownership and
# mode. 0700: the key file refuses a folder others can read into.
RUN mkdir -p /var/lib/dicomvault/data /var/lib/dicomvault/keys /etc/dicomvault/certs \
 && chown node:node /var/lib/dicomvault/data /var/lib/dicomvault/keys /etc/dicomvault/certs \
 && chmod 0700 /var/lib/dicomvault/data /var/lib/dicomvault/keys /etc/dicomvault/certs
USER node
VOLUME ["/var/lib/dicomvault/data", "/var/lib/dicomvault/keys", "/etc/dicomvault/certs"]
EXPOSE 8443
# Readiness over the mTLS listener itself: the TLS layer wants a client certificate from the configured CA (any
# one: /readyz needs no registered principal). The development CA's client certificate by default; in production
# give one with HEALTHCHECK_CA/CERT/KEY, and HEALTHCHECK_SERVERNAME a DNS name of the server certificate. The
# slim image has no curl: node does the request. Exit 0 only on 200.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const f=require('node:fs'),e=process.env;require('node:https').get({host:'127.0.0.1',port:Number(e.DICOMVAULT_SERVER_PORT),path:'/readyz',servername:e.HEALTHCHECK_SERVERNAME,ca:f.readFileSync(e.HEALTHCHECK_CA),cert:f.readFileSync(e.HEALTHCHECK_CERT),key:f.readFileSync(e.HEALTHCHECK_KEY),timeout:4000},(r)=>process.exit(r.statusCode===200?0:1)).on('timeout',()=>process.exit(1)).on('error',()=>process.exit(1))"]
# Shutdown: `docker stop` sends SIGTERM, which the server handles (server.ts: finish requests, close the audit log).
CMD ["node", "dist/cli/dicomvault.js", "serve"]

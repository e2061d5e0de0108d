# syntax=docker/dockerfile:1
# Node 24, an LTS line (Node 20 reached its end of life on 2026-04-30). The code also runs on Node 20.
ARG NODE_IMAGE=node:24-bookworm-slim

# Build stage: compile TypeScript with the dev dependencies, and prepare the embedded store's
# template (an initialised, migrated data directory a fresh DATA_DIR is copied from).
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# The template's files are copied into DATA_DIR by the unprivileged user: they must be readable.
RUN npm run build && chmod -R a+rX dist

# Runtime stage: production dependencies only (the bot talks to PostgreSQL through the pg driver
# and needs no client tools) and an unprivileged user.
FROM ${NODE_IMAGE}
ENV NODE_ENV=production \
    DATA_DIR=/var/lib/pgcutover \
    PGCUTOVER_CONFIG=/etc/pgcutover/pgcutover.yml \
    PORT=3000
RUN groupadd --system pgcutover && useradd --system --gid pgcutover --home /app pgcutover \
 && mkdir -p /var/lib/pgcutover /etc/pgcutover && chown pgcutover:pgcutover /var/lib/pgcutover
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
USER pgcutover
EXPOSE 3000
VOLUME ["/var/lib/pgcutover"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM reaches node directly (no shell), which shuts down gracefully.
CMD ["node", "dist/main.js"]

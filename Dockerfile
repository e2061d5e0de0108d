# syntax=docker/dockerfile:1
# Build stage: compile TypeScript with the dev dependencies.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# Runtime stage: production dependencies only, PostgreSQL client tools for the preflight and
# schema copy in the DigitalOcean simulator, and an unprivileged user.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    DATA_DIR=/var/lib/pgcutover \
    PGCUTOVER_CONFIG=/etc/pgcutover/pgcutover.yml \
    PORT=3000
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system pgcutover && useradd --system --gid pgcutover --home /app pgcutover \
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

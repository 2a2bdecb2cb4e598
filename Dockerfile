# syntax=docker/dockerfile:1
# Build with dev dependencies, run with production ones only, as a non-root user.

FROM node:24-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY *.ts ./
COPY plugins ./plugins
COPY routes ./routes
COPY services ./services
COPY db ./db
RUN npm run build

FROM node:24-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:24-slim
ENV NODE_ENV=production PORT=3000 HOST=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# Only for the embedded database when DATABASE_URL is unset; production should set DATABASE_URL.
RUN mkdir -p /app/data && chown node:node /app/data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 CMD ["node", "dist/cli.js", "healthcheck"]
# node as PID 1 (no npm wrapper), so SIGTERM reaches the server and it shuts down gracefully.
CMD ["node", "dist/server.js"]

# The seed's producer and consumer in one image, `qscale-apps`, for the Deployments of examples/seed (which every
# example's kustomization shares). Each Deployment picks its app with `command`; alone, the image runs the producer.
# Build from the repository root:
#   docker build -t qscale-apps:0.1.0 .

# Compile with the dev dependencies (TypeScript); only the compiled JavaScript leaves this stage.
FROM node:20-slim AS build
WORKDIR /src
COPY package.json package-lock.json tsconfig.json ./
RUN npm ci --ignore-scripts
COPY src ./src
COPY apps ./apps
RUN npx tsc -p tsconfig.json

# Run: production dependencies only, no sources, not root. Install scripts are skipped: the apps load no native
# module (the embedded queue's SQLite is qscale's, not theirs).
FROM node:20-alpine
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force
COPY --from=build /src/dist/apps ./dist/apps
COPY --from=build /src/dist/src ./dist/src
USER node
# The producer's and the consumer's APP_PORT defaults (apps/*/config.ts).
EXPOSE 5000 6000
CMD ["node", "dist/apps/producer/main.js"]

# syntax=docker/dockerfile:1
# The convergence image: the same package runs headless in Cloud Run Jobs
# (`convergence job run-pipeline|dispatch|reset-quotas|cleanup-orphans`, logs as JSON lines) and
# as the Cloud Run service of the HTTP API (`convergence serve`, listening on $PORT). Job
# executions pass their task as container args (overrides.containerOverrides[].args), e.g.
# ["job", "dispatch"], and CONVERGENCE_ENV. The service's revisions, as `convergence deploy`
# creates them, run with container args ["serve"] and CONVERGENCE_ENV set; the CMD below stays
# the job default.
#
# The workspace config (convergence.yaml) is baked in from the build context when present; without
# it, mount one at /workspace.

# --- build: compile TypeScript and generate the oclif manifest --------------------------------
FROM node:22-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# The lock file holds every platform's optional native packages (polars, DuckDB), so `npm ci`
# installs exactly the versions CI tested, on any platform.
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts/ scripts/
COPY src/ src/
COPY bin/ bin/
RUN npm run build

# --- runtime: production dependencies only, non-root --------------------------------------------
FROM node:22-slim
ENV NODE_ENV=production \
    NO_COLOR=1 \
    CI=1
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY bin/ bin/
COPY examples/ examples/
COPY templates/ templates/
COPY assets/ assets/
COPY --from=build /src/dist/ dist/
COPY --from=build /src/oclif.manifest.json ./
# convergence.yam[l] matches nothing when the context has no workspace config; package.json keeps the COPY valid.
COPY package.json convergence.yam[l] /workspace/
RUN rm /workspace/package.json && chown -R node:node /workspace
USER node
WORKDIR /workspace
ENTRYPOINT ["node", "/app/bin/run.js"]
# The default task; Cloud Run job executions override the args.
CMD ["job", "run-pipeline"]

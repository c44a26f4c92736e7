# plaid-sync: a stripped release binary built in the Rust image, run on a slim
# Debian as a non-root user (uid 10001).
#
#   docker build -t plaid-sync .
#   docker compose up                       # PostgreSQL + `plaid-sync demo`
#   docker run ... plaid-sync serve         # the service itself (see .env.example)
#
# Lint: scripts/lint-docker.sh (hadolint).

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------------------
# Build stage.
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS build
WORKDIR /src

# 1. Dependencies alone, in a layer that is rebuilt only when a manifest or
#    Cargo.lock changes: the workspace members' manifests (root, workflows,
#    simulator, jwt-ring; fuzz/ is excluded from the workspace) and the lock
#    file, with stub targets. Every target a manifest names explicitly must
#    exist or cargo refuses the manifest, hence stubs for the root's
#    [[test]] and [[bench]] entries too (scripts/lint-docker.sh checks this
#    list against Cargo.toml).
COPY Cargo.toml Cargo.lock ./
COPY workflows/Cargo.toml workflows/
COPY simulator/Cargo.toml simulator/
COPY jwt-ring/Cargo.toml jwt-ring/
RUN set -eux; \
    for member in . workflows simulator jwt-ring; do \
        mkdir -p "$member/src"; \
        echo '//! Dependency-cache stub (Dockerfile).' > "$member/src/lib.rs"; \
    done; \
    echo 'fn main() {}' > src/main.rs; \
    mkdir -p tests/it benches; \
    echo 'fn main() {}' > tests/it/main.rs; \
    for bench in webhook_ingest sync_apply job_drain item_queries; do \
        echo 'fn main() {}' > "benches/$bench.rs"; \
    done; \
    cargo build --release --locked -p plaid-sync; \
    rm -rf src workflows/src simulator/src jwt-ring/src

# 2. The real sources, and what the binary embeds at compile time:
#    migrations/ (sqlx::migrate! in workflows/src/db/migrate.rs) and
#    dashboard/ (include_str! in src/http/dashboard.rs). tests/, benches/,
#    docs/ and fuzz/ are not needed.
COPY src src
COPY workflows/src workflows/src
COPY simulator/src simulator/src
COPY jwt-ring/src jwt-ring/src
COPY migrations migrations
COPY dashboard dashboard

# COPY keeps the files' mtimes from the build context, which may be older than
# the stub build's outputs: touch the crate roots so cargo rebuilds the four
# workspace crates instead of keeping the stubs. Strip here (whatever the
# [profile] says), then run the result once as a smoke test.
RUN set -eux; \
    touch src/main.rs src/lib.rs workflows/src/lib.rs simulator/src/lib.rs jwt-ring/src/lib.rs; \
    cargo build --release --locked -p plaid-sync; \
    strip --strip-all -o /usr/local/bin/plaid-sync target/release/plaid-sync; \
    /usr/local/bin/plaid-sync --version

# ---------------------------------------------------------------------------
# Runtime stage.
FROM debian:${DEBIAN_RELEASE}-slim AS runtime

# ca-certificates: TLS to Plaid and to PostgreSQL. curl: the HEALTHCHECK (no
# plaid-sync subcommand probes /healthz; `check jobs` is a queue canary).
# DL3008 (pin apt package versions) is ignored on purpose: Debian's archive
# drops superseded versions, so a pin breaks the build at the next security
# update; the base image tag fixes the release instead.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# A non-root user (uid/gid 10001). The working directory /app stays root-owned;
# only /app/.plaid-sync is the user's: simulator mode (`demo`, or `serve`
# without PLAID_CLIENT_ID) keeps its generated SECRETS_KEY in
# .plaid-sync/secrets.key relative to the working directory. Mount a volume
# there (docker-compose.yml does) so items stay readable across containers; a
# new named volume takes this directory's owner and mode.
RUN groupadd --system --gid 10001 plaid-sync \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin plaid-sync \
    && install -d -o 10001 -g 10001 -m 0700 /app/.plaid-sync

COPY --from=build /usr/local/bin/plaid-sync /usr/local/bin/plaid-sync

USER 10001:10001
WORKDIR /app
# In a container the listeners must leave loopback to be reachable (the
# binary's defaults are 127.0.0.1:8080 and 127.0.0.1:8081). The operator
# listener answers 503 until ADMIN_TOKEN is set.
ENV HOME=/app \
    BIND_ADDR=0.0.0.0:8080 \
    ADMIN_BIND_ADDR=0.0.0.0:8081
EXPOSE 8080 8081

# /healthz on the public listener: the process is up (/readyz adds the
# database and migrations). The listeners start once the database is
# prepared (created if missing, migrated); the start period covers that.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["curl", "--fail", "--silent", "--show-error", "--max-time", "2", "--output", "/dev/null", "http://127.0.0.1:8080/healthz"]

ENTRYPOINT ["plaid-sync"]
# The demo needs only PostgreSQL (DATABASE_URL); production runs `serve`.
CMD ["demo"]

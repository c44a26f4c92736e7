# Build: a release binary. Run: that binary on a slim Debian.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --bin plaid-sync

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/plaid-sync /usr/local/bin/plaid-sync
WORKDIR /app
EXPOSE 8080 8081
ENTRYPOINT ["plaid-sync"]
CMD ["serve"]

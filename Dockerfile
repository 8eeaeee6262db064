# A Consortia node in a container (docs/operating.md, "Running in a container").
#   docker build -t consortia .
#   docker run -d --name n0 -v consortia-n0:/var/lib/consortia -p 8000:8000 -p 8001:8001 consortia
# The volume holds the node's directory as `consortia config init` writes it (config.json and
# the files it names), its identity, ledger and snapshots; relative paths in the config resolve
# against its directory. Any other CLI command runs the same way:
#   docker run --rm -v consortia-n0:/var/lib/consortia consortia keygen --name member0
FROM node:20-bookworm-slim AS build
WORKDIR /opt/consortia
COPY . .
# `npm ci` builds dist/ (prepare); the runtime keeps production dependencies only.
RUN npm ci && npm prune --omit=dev && rm -rf test bench .ci

FROM node:20-bookworm-slim
ENV NODE_ENV=production
COPY --from=build /opt/consortia /opt/consortia
RUN groupadd --system consortia \
  && useradd --system --gid consortia --home-dir /var/lib/consortia --create-home consortia \
  && chmod 0700 /var/lib/consortia
USER consortia
WORKDIR /var/lib/consortia
VOLUME ["/var/lib/consortia"]
# rpc_interfaces and node_to_node_interface as `consortia config init` writes them by default.
EXPOSE 8000 8001
# The node stops within 2 s of SIGTERM (docker stop waits 10 s before SIGKILL).
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "/opt/consortia/bin/consortia"]
CMD ["node", "--config", "/var/lib/consortia/config.json"]

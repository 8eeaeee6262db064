/**
 * The rpc interfaces of a joiner before it is Trusted: GET /node/state answers its state, so an
 * operator sees it waiting; everything else is 503 (the node holds no service state yet).
 */
import type { KeyObject } from "node:crypto";
import { ecPrivateKeyPem } from "../../crypto/identity.js";
import { errorBody, HttpErrorCode } from "../../http/errors.js";
import { Router } from "../../http/router.js";
import { answerOf, createRpcServer, type RpcServer } from "../../http/server.js";
import type { NodeConfig } from "../config/config.js";
import { rpcLimitsOf } from "../config/rpc-limits.js";
import type { NodeStartupState } from "../frontends/node-context.js";
import type { ListeningSockets } from "../startup/listening-sockets.js";

/**
 * Serves every rpc interface of `config` for a joiner that is not Trusted yet: GET /node/state;
 * everything else is 503 NodeCannotHandleRequest (the node holds no service state yet). With
 * `sockets` (startNode's), on the sockets bound for them; they close with the servers.
 */
export async function servePending(
  config: NodeConfig,
  certPem: string,
  privateKey: KeyObject,
  state: () => { node_id: string; state: NodeStartupState },
  sockets?: ListeningSockets,
): Promise<RpcServer[]> {
  const router = new Router();
  router.add("GET", "/node/state", () => ({
    status: 200,
    body: { ...state(), last_signed_seqno: 0, startup_seqno: 0, stop_notice: false },
  }));
  const servers: RpcServer[] = [];
  for (const [name, rpc] of Object.entries(config.network.rpcInterfaces)) {
    servers.push(
      await createRpcServer({
        host: rpc.bindAddress.host,
        port: rpc.bindAddress.port,
        ...(sockets !== undefined && { socket: sockets.takeRpc(name) }),
        certPem,
        keyPem: ecPrivateKeyPem(privateKey),
        maxBodyBytes: rpc.http.maxBodySizeBytes,
        limits: rpcLimitsOf(config, rpc),
        router,
        closeGraceMs: 0,
        onRequest: async (request, next) => {
          if (request.path === "/node/state") return answerOf(await next(request));
          return {
            status: 503,
            body: errorBody(
              HttpErrorCode.NodeCannotHandleRequest,
              "This node is joining the service and cannot handle requests yet.",
            ),
          };
        },
      }),
    );
  }
  return servers;
}

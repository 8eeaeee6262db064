import type { NodeConfig, RpcInterfaceConfig } from "./config-values.js";

/**
 * The session, header and idle limits one RPC interface's server enforces (the fields of
 * http/limits.ts's ServerLimits that the node configuration sets; the head and body time
 * limits keep the server's defaults).
 */
export function rpcLimitsOf(
  config: Pick<NodeConfig, "idleConnectionTimeoutMs">,
  rpc: RpcInterfaceConfig,
): {
  maxOpenSessionsSoft: number;
  maxOpenSessionsHard: number;
  maxHeaderSizeBytes: number;
  maxHeadersCount: number;
  idleTimeoutMs: number | null;
} {
  return {
    maxOpenSessionsSoft: rpc.maxOpenSessionsSoft,
    maxOpenSessionsHard: rpc.maxOpenSessionsHard,
    maxHeaderSizeBytes: rpc.http.maxHeaderSizeBytes,
    maxHeadersCount: rpc.http.maxHeadersCount,
    idleTimeoutMs: config.idleConnectionTimeoutMs,
  };
}

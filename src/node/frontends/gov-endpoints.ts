/**
 * The /gov frontend, modern API (ccf-compatibility.md §3.4): every call needs
 * ?api-version=2024-07-01 (or 2023-06-01-preview). Writes are COSE_Sign1 requests by members
 * (auth.ts); the lifecycle itself is src/gov (pure), with the constitution run by a
 * ConstitutionRunner.
 */
import { fromBase64, toBase64, utf8 } from "../../base/bytes.js";
import { isTextDecodeError } from "../../base/errors.js";
import { formatTxId, isPossibleTxId, parseTxId } from "../../base/ids.js";
import type { Tx } from "../../kv/tx.js";
import type { ConstitutionRunner } from "../../gov/constitution-runner.js";
import {
  checkReplay,
  createdAtSkewError,
  DEFAULT_REPLAY_WINDOW_SIZE,
  replayError,
  replayKey,
  type GovMsgType,
} from "../../gov/cose-request.js";
import { appServiceRows } from "../../gov/app-services.js";
import { GovError } from "../../gov/errors.js";
import { joinPolicyView } from "../../gov/join-policy.js";
import { quoteInfoView } from "../../gov/quote-info-view.js";
import {
  ackStateDigest,
  getStateDigest,
  listMembers,
  listUsers,
  memberView,
  updateStateDigest,
  userView,
} from "../../gov/members.js";
import {
  createProposal,
  getBallot,
  getProposal,
  getProposalActions,
  listProposals,
  proposalIdOf,
  recordCoseHistory,
  type SubmitBallotInput,
  withdrawProposal,
} from "../../gov/proposals.js";
import {
  entriesById,
  getById,
  getSingleton,
  GOV_MAPS,
  reachableAddress,
} from "../../gov/tables.js";
import { SERVICE_TABLES } from "../../kv/service-tables.js";
import { HttpError, HttpErrorCode, type JsonBody } from "../../http/errors.js";
import {
  FORWARD_TO_PRIMARY,
  type Router,
  type RpcOutcome,
  type RpcRequest,
  type RpcResponse,
} from "../../http/router.js";
import { authenticateMember, type GovMemberCaller } from "./auth.js";
import { type BallotEvaluator, submitBallotOffThread } from "./ballot-submit.js";
import { jsAppView, jsModulesView, jsModuleSource } from "./js-app-endpoints.js";
import type { NodeContext } from "./node-context.js";
import { registerCommonEndpoints, txStatus } from "./node-endpoints.js";
import { forwardsBeforeRunning, json, runInTx } from "./rpc-context.js";

const API_VERSIONS = ["2024-07-01", "2023-06-01-preview"];
const decoder = new TextDecoder();

function checkApiVersion(request: RpcRequest): void {
  const version = request.queryParams.get("api-version");
  if (version === null) {
    throw new HttpError(
      HttpErrorCode.MissingApiVersionParameter,
      "The api-version query parameter (?api-version=) is required for all requests.",
    );
  }
  if (!API_VERSIONS.includes(version)) {
    throw new HttpError(
      HttpErrorCode.UnsupportedApiVersionValue,
      `Unsupported api-version '${version}'. The supported api-versions are: ` +
        `${API_VERSIONS.join(", ")}.`,
    );
  }
}

/**
 * Runs a gov handler: api-version check, forwarding, GovError -> HttpError with CCF's code.
 * On a backup, a write (POST) is forwarded to the primary before it runs, as CCF forwards its
 * write endpoints (ForwardingRequired::Always): it must run against the primary's state, not the
 * backup's, which lags behind it (an ack right after the member's digest update would fail
 * against the backup's older digest, and nothing would be forwarded). A read (GET) is
 * ForwardingRequired::Sometimes: forwarded once its connection has had a request forwarded.
 */
function govRoute(
  router: Router,
  node: NodeContext,
  method: string,
  path: string,
  handler: (request: RpcRequest) => RpcOutcome | Promise<RpcOutcome>,
): void {
  router.add(method, path, (request) => {
    checkApiVersion(request);
    if (forwardsBeforeRunning(method === "GET" ? "sometimes" : "always", request, node.raft)) {
      return FORWARD_TO_PRIMARY;
    }
    try {
      const outcome = handler(request);
      return outcome instanceof Promise ? outcome.catch(asHttpError) : outcome;
    } catch (err: unknown) {
      return asHttpError(err);
    }
  });
}

/** Rethrows `err`, a GovError as the HttpError with CCF's code for it. */
function asHttpError(err: unknown): never {
  if (err instanceof GovError) {
    const code = (HttpErrorCode as Record<string, HttpErrorCode>)[err.code];
    throw new HttpError(code ?? HttpErrorCode.InternalError, err.message);
  }
  throw err;
}

function parseJsonPayload(bytes: Uint8Array): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(decoder.decode(bytes));
    if (typeof value === "object" && value !== null && !Array.isArray(value)) {
      return value as Record<string, unknown>;
    }
  } catch (err: unknown) {
    if (!isTextDecodeError(err)) throw err;
    // Falls through to the 400 below: a malformed payload is the caller's error.
  }
  throw new HttpError(HttpErrorCode.InvalidInput, "Payload must be a JSON object.");
}

/** Replay window of COSE proposals (public:ccf.gov.cose_recent_proposals). */
function checkProposalReplay(
  tx: Tx,
  caller: GovMemberCaller,
  proposalId: string,
  nowMs: number,
): void {
  const request = caller.govRequest;
  const skew = createdAtSkewError(request.createdAt, nowMs);
  if (skew !== null) throw new HttpError(skew.code as HttpErrorCode, skew.message);
  const map = tx.rw(SERVICE_TABLES.coseRecentProposals);
  const window: { key: string; proposalId: string }[] = [];
  map.forEach((value, key) =>
    window.push({ key: decoder.decode(key), proposalId: decoder.decode(value) }),
  );
  const config = getSingleton(tx, GOV_MAPS.serviceConfig);
  const size = config?.recent_cose_proposals_window_size ?? DEFAULT_REPLAY_WINDOW_SIZE;
  const key = replayKey(request.createdAt, request.signature);
  const check = checkReplay(window, key, request.createdAt, size);
  if (check.kind !== "ok") {
    const error = replayError(check);
    throw new HttpError(error.code as HttpErrorCode, error.message);
  }
  for (const evicted of check.evicted) map.delete(utf8(evicted));
  map.set(utf8(key), utf8(proposalId));
}

function requireMatch(actual: string | undefined, expected: string, what: string): void {
  if (actual !== expected) {
    throw new HttpError(
      HttpErrorCode.InvalidResourceName,
      `Authenticated ${what} id does not match URL.`,
    );
  }
}

/** Splits "abc:withdraw" into ["abc", "withdraw"]; CCF's custom-verb URL segments. */
function splitVerb(segment: string | undefined): [string, string | null] {
  const text = segment ?? "";
  const colon = text.lastIndexOf(":");
  return colon < 0 ? [text, null] : [text.slice(0, colon), text.slice(colon + 1)];
}

function memberWrite(
  node: NodeContext,
  request: RpcRequest,
  msgType: GovMsgType,
  active: boolean,
  body: (tx: Tx, caller: GovMemberCaller) => RpcResponse,
): RpcOutcome {
  return runInTx(node.pipeline, (tx) => {
    const policy = active ? "active_member_cose_sign1" : "member_cose_sign1";
    const caller = authenticateMember(tx, request, policy, {
      msgType,
      nowMs: node.clock.realtimeMs(),
    });
    recordCoseHistory(tx, caller.memberId, request.body);
    return body(tx, caller);
  });
}

/** POST /gov/members/proposals:create: a new proposal, named by the service's Merkle root. */
function registerProposalCreate(
  router: Router,
  node: NodeContext,
  runner: ConstitutionRunner,
  evaluator: BallotEvaluator,
): void {
  govRoute(router, node, "POST", "/gov/members/proposals:create", (request) => {
    // Ballots follow proposals: the ballot workers must be up (again, if they failed to start).
    evaluator.warm();
    return memberWrite(node, request, "proposal", true, (tx, caller) => {
      const root = node.history.rootForNextSignature();
      const proposalId = proposalIdOf(root, caller.govRequest.signature);
      checkProposalReplay(tx, caller, proposalId, node.clock.realtimeMs());
      const body = decoder.decode(caller.cosePayload);
      return json(
        createProposal(tx, runner, {
          proposalId,
          proposerId: caller.memberId,
          body,
        }) as unknown as JsonBody,
      );
    });
  });
}

/** Withdrawing a proposal and submitting a ballot: the member COSE writes on one proposal. */
function registerProposalActions(
  router: Router,
  node: NodeContext,
  runner: ConstitutionRunner,
  evaluator: BallotEvaluator,
): void {
  govRoute(router, node, "POST", "/gov/members/proposals/{proposalAction}", (request) => {
    const [proposalId, verb] = splitVerb(request.params.proposalAction);
    if (verb !== "withdraw")
      throw new HttpError(HttpErrorCode.ResourceNotFound, `Unknown path: ${request.path}.`);
    return memberWrite(node, request, "withdrawal", true, (tx, caller) => {
      requireMatch(caller.govRequest.proposalId, proposalId, "proposal");
      const proposal = withdrawProposal(tx, { proposalId, memberId: caller.memberId });
      return proposal === null ? { status: 204 } : json(proposal as unknown as JsonBody);
    });
  });
  govRoute(
    router,
    node,
    "POST",
    "/gov/members/proposals/{proposalId}/ballots/{memberAction}",
    (request) => {
      const proposalId = request.params.proposalId ?? "";
      const [memberId, verb] = splitVerb(request.params.memberAction);
      if (verb !== "submit")
        throw new HttpError(HttpErrorCode.ResourceNotFound, `Unknown path: ${request.path}.`);
      const inputOf = (caller: GovMemberCaller): SubmitBallotInput => {
        requireMatch(caller.memberId, memberId, "member");
        requireMatch(caller.govRequest.proposalId, proposalId, "proposal");
        const payload = parseJsonPayload(caller.cosePayload);
        if (typeof payload.ballot !== "string") {
          throw new HttpError(HttpErrorCode.InvalidInput, "Payload must have a string 'ballot'.");
        }
        return { proposalId, memberId, ballot: payload.ballot };
      };
      return submitBallotOffThread({
        runner,
        evaluator,
        read: (handler) =>
          runInTx(node.pipeline, (tx) => {
            handler(tx, inputOf(authenticateBallot(node, tx, request)));
            return { status: 200 };
          }),
        write: (handler) =>
          memberWrite(node, request, "ballot", true, (tx, caller) => handler(tx, inputOf(caller))),
      });
    },
  );
}

/** The member behind a ballot request, as memberWrite authenticates it (without writing). */
function authenticateBallot(node: NodeContext, tx: Tx, request: RpcRequest): GovMemberCaller {
  return authenticateMember(tx, request, "active_member_cose_sign1", {
    msgType: "ballot",
    nowMs: node.clock.realtimeMs(),
  });
}

/** The unauthenticated reads of proposals, their actions and their ballots. */
function registerProposalReads(router: Router, node: NodeContext): void {
  govRoute(router, node, "GET", "/gov/members/proposals", () =>
    runInTx(node.pipeline, (tx) => json({ value: listProposals(tx) as unknown as JsonBody[] })),
  );
  govRoute(router, node, "GET", "/gov/members/proposals/{proposalId}", (request) =>
    runInTx(node.pipeline, (tx) =>
      json(getProposal(tx, request.params.proposalId ?? "") as unknown as JsonBody),
    ),
  );
  govRoute(router, node, "GET", "/gov/members/proposals/{proposalId}/actions", (request) =>
    runInTx(node.pipeline, (tx) => ({
      status: 200,
      headers: { "content-type": "application/json" },
      body: getProposalActions(tx, request.params.proposalId ?? ""),
    })),
  );
  govRoute(
    router,
    node,
    "GET",
    "/gov/members/proposals/{proposalId}/ballots/{memberId}",
    (request) =>
      runInTx(node.pipeline, (tx) => ({
        status: 200,
        headers: { "content-type": "text/javascript" },
        body: getBallot(tx, request.params.proposalId ?? "", request.params.memberId ?? ""),
      })),
  );
}

function registerMemberEndpoints(router: Router, node: NodeContext): void {
  govRoute(router, node, "GET", "/gov/members/state-digests/{memberId}", (request) =>
    runInTx(node.pipeline, (tx) =>
      json(getStateDigest(tx, request.params.memberId ?? "") as unknown as JsonBody),
    ),
  );
  govRoute(router, node, "POST", "/gov/members/state-digests/{memberAction}", (request) => {
    const [memberId, verb] = splitVerb(request.params.memberAction);
    if (verb === "update") {
      return memberWrite(node, request, "state_digest", false, (tx, caller) => {
        requireMatch(caller.memberId, memberId, "member");
        return json(updateStateDigest(tx, memberId) as unknown as JsonBody);
      });
    }
    if (verb === "ack") {
      return memberWrite(node, request, "ack", false, (tx, caller) => {
        requireMatch(caller.memberId, memberId, "member");
        const payload = parseJsonPayload(caller.cosePayload);
        if (typeof payload.stateDigest !== "string") {
          throw new HttpError(
            HttpErrorCode.InvalidInput,
            "Payload must have a string 'stateDigest'.",
          );
        }
        ackStateDigest(tx, memberId, payload.stateDigest, toBase64(request.body));
        // An Active member may hold a recovery share: reissue them (after this tx).
        node.scheduleRecoverySharesRefresh();
        return { status: 204 };
      });
    }
    throw new HttpError(HttpErrorCode.ResourceNotFound, `Unknown path: ${request.path}.`);
  });
  // A member's recovery share, encrypted to its encryption key (ccf-compatibility.md §8.1).
  govRoute(router, node, "GET", "/gov/recovery/encrypted-shares/{memberId}", (request) =>
    runInTx(node.pipeline, (tx) => {
      const memberId = request.params.memberId ?? "";
      const record = getById(tx, GOV_MAPS.recoveryShares, memberId);
      if (record === undefined) {
        throw new HttpError(
          HttpErrorCode.ResourceNotFound,
          `Recovery share not found for member ${memberId}.`,
        );
      }
      return json({ memberId, encryptedShare: record.encrypted_share });
    }),
  );
}

/**
 * POST /gov/recovery/members/{memberId}:recover (ccf-compatibility.md §8.3): an Active recovery
 * member submits its decrypted share, COSE-signed with msg.type recovery_share, while the recovered
 * service is WaitingForRecoveryShares. The answer counts the shares; the last one needed starts the
 * end of the recovery (DisasterRecovery.complete) after its transaction.
 */
function registerRecoveryShareEndpoint(router: Router, node: NodeContext): void {
  govRoute(router, node, "POST", "/gov/recovery/members/{memberAction}", (request) => {
    const [memberId, verb] = splitVerb(request.params.memberAction);
    if (verb !== "recover") {
      throw new HttpError(HttpErrorCode.ResourceNotFound, `Unknown path: ${request.path}.`);
    }
    let complete = false;
    const response = memberWrite(node, request, "recovery_share", true, (tx, caller) => {
      requireMatch(caller.memberId, memberId, "member");
      const recovery = node.disasterRecovery;
      const status = getSingleton(tx, GOV_MAPS.serviceInfo)?.status;
      if (recovery === null || status !== "WaitingForRecoveryShares") {
        throw new HttpError(
          HttpErrorCode.ServiceNotWaitingForRecoveryShares,
          `Service is not waiting for recovery shares (it is ${status ?? "unknown"}).`,
        );
      }
      const member = getById(tx, GOV_MAPS.memberInfo, memberId);
      if (member === undefined || member.recovery_role === "NonParticipant") {
        throw new HttpError(
          HttpErrorCode.AuthorizationFailed,
          `Member ${memberId} is not a recovery member.`,
        );
      }
      const payload = parseJsonPayload(caller.cosePayload);
      const share = typeof payload.share === "string" ? fromBase64(payload.share) : null;
      if (share === null || share === undefined || share.byteLength === 0) {
        throw new HttpError(
          HttpErrorCode.InvalidInput,
          "Payload must have 'share': the base64 of the member's decrypted recovery share.",
        );
      }
      const submission = recovery.recordShare(tx, memberId, share);
      complete = submission.complete;
      const end = complete ? " End of recovery procedure initiated." : "";
      return json({
        message:
          `${submission.submitted}/${submission.threshold} recovery shares successfully ` +
          `submitted.${end}`,
      });
    });
    if (complete && node.disasterRecovery !== null) {
      const recovery = node.disasterRecovery;
      setImmediate(() => void recovery.complete());
    }
    return response;
  });
}

function serviceInfoView(tx: Tx): JsonBody {
  const info = getSingleton(tx, GOV_MAPS.serviceInfo);
  const config = getSingleton(tx, GOV_MAPS.serviceConfig);
  return {
    status: info?.status ?? "Opening",
    certificate: info?.cert ?? "",
    recoveryCount: info?.recovery_count ?? 0,
    creationTransactionId: info?.current_service_create_txid ?? "2.1",
    serviceData: (info?.service_data ?? null) as JsonBody,
    configuration: {
      recoveryThreshold: config?.recovery_threshold ?? 0,
      maximumNodeCertificateValidityDays: config?.maximum_node_certificate_validity_days ?? 365,
      maximumServiceCertificateValidityDays:
        config?.maximum_service_certificate_validity_days ?? 365,
      recentCoseProposalsWindowSize: config?.recent_cose_proposals_window_size ?? 100,
    },
  };
}

function nodeView(tx: Tx, nodeId: string): JsonBody | null {
  const info = getById(tx, GOV_MAPS.nodeInfo, nodeId);
  if (info === undefined) return null;
  const rpcInterfaces: Record<string, JsonBody> = {};
  for (const [name, rpc] of Object.entries(info.rpc_interfaces)) {
    rpcInterfaces[name] = {
      publishedAddress: reachableAddress(rpc),
      protocol: rpc.protocol ?? "tcp",
    };
  }
  return {
    nodeId,
    status: info.status,
    nodeData: (info.node_data ?? null) as JsonBody,
    certificate: getById(tx, GOV_MAPS.nodeEndorsedCerts, nodeId) ?? "",
    retiredCommitted: info.retired_committed ?? false,
    quoteInfo: quoteInfoView(info.quote_info) as unknown as JsonBody,
    rpcInterfaces,
  };
}

function notFound(what: string): never {
  throw new HttpError(HttpErrorCode.ResourceNotFound, `${what} not found.`);
}

function registerServiceEndpoints(router: Router, node: NodeContext): void {
  const read = (request: RpcRequest, f: (tx: Tx) => RpcResponse) => runInTx(node.pipeline, f);
  govRoute(router, node, "GET", "/gov/service/info", (r) =>
    read(r, (tx) => json(serviceInfoView(tx))),
  );
  govRoute(router, node, "GET", "/gov/service/constitution", (r) =>
    read(r, (tx) => ({
      status: 200,
      headers: { "content-type": "text/javascript" },
      body: getSingleton(tx, GOV_MAPS.constitution) ?? "",
    })),
  );
  govRoute(router, node, "GET", "/gov/service/members", (r) =>
    read(r, (tx) => json({ value: listMembers(tx) as unknown as JsonBody[] })),
  );
  govRoute(router, node, "GET", "/gov/service/members/{memberId}", (r) =>
    read(r, (tx) =>
      json(
        (memberView(tx, r.params.memberId ?? "") ??
          notFound(`Member ${r.params.memberId}`)) as unknown as JsonBody,
      ),
    ),
  );
  govRoute(router, node, "GET", "/gov/service/users", (r) =>
    read(r, (tx) => json({ value: listUsers(tx) as unknown as JsonBody[] })),
  );
  govRoute(router, node, "GET", "/gov/service/users/{userId}", (r) =>
    read(r, (tx) =>
      json(
        (userView(tx, r.params.userId ?? "") ??
          notFound(`User ${r.params.userId}`)) as unknown as JsonBody,
      ),
    ),
  );
  govRoute(router, node, "GET", "/gov/service/nodes", (r) =>
    read(r, (tx) =>
      json({ value: entriesById(tx, GOV_MAPS.nodeInfo).map(([id]) => nodeView(tx, id)) }),
    ),
  );
  govRoute(router, node, "GET", "/gov/service/nodes/{nodeId}", (r) =>
    read(r, (tx) =>
      json(nodeView(tx, r.params.nodeId ?? "") ?? notFound(`Node ${r.params.nodeId}`)),
    ),
  );
  govRoute(router, node, "GET", "/gov/service/join-policy", (r) =>
    read(r, (tx) => json(joinPolicyView(tx) as unknown as JsonBody)),
  );
  govRoute(router, node, "GET", "/gov/service/transactions/commit", () => {
    const id = node.pipeline.commitTxId;
    return json({ transactionId: formatTxId(id), status: txStatus(node, id) });
  });
  govRoute(router, node, "GET", "/gov/service/transactions/{transactionId}", (r) => {
    const id = parseTxId(r.params.transactionId ?? "");
    if (id === null || !isPossibleTxId(id))
      throw new HttpError(HttpErrorCode.InvalidResourceName, "Invalid transaction id.");
    return json({ transactionId: formatTxId(id), status: txStatus(node, id) });
  });
}

export function registerGovEndpoints(
  router: Router,
  node: NodeContext,
  runner: ConstitutionRunner,
  /** Where ballots run: off the node's thread (js/ballot-pool.ts). */
  evaluator: BallotEvaluator,
): void {
  registerCommonEndpoints(router, node, "/gov", () => ({
    openapi: "3.0.0",
    info: { title: "Consortia governance", version: "2024-07-01" },
    paths: {},
  }));
  registerProposalCreate(router, node, runner, evaluator);
  registerProposalReads(router, node);
  registerProposalActions(router, node, runner, evaluator);
  registerMemberEndpoints(router, node);
  registerRecoveryShareEndpoint(router, node);
  registerServiceEndpoints(router, node);
  registerJsAppViews(router, node);
  govRoute(router, node, "GET", "/gov/service/app-services", () =>
    runInTx(node.pipeline, (tx) => json({ appServices: appServicesView(tx) })),
  );
}

/** The app services set by governance (ADR 0005), in package id order. */
function appServicesView(tx: Tx): JsonBody {
  return appServiceRows(tx.ro(SERVICE_TABLES.appServices)).map((row) => ({
    packageId: row.packageId,
    address: row.address,
    caCert: row.caCert,
    timeoutMs: row.timeoutMs,
  }));
}

/** The deployed JS app, as CCF 6's gov API shows it (js-app-endpoints.ts). */
function registerJsAppViews(router: Router, node: NodeContext): void {
  govRoute(router, node, "GET", "/gov/service/javascript-app", (r) => {
    const which = r.queryParams.get("case");
    if (which !== null && which !== "original") {
      throw new HttpError(
        HttpErrorCode.InvalidQueryParameterValue,
        "Accepted values for the 'case' query parameter are: original",
      );
    }
    return runInTx(node.pipeline, (tx) => json(jsAppView(tx, which === "original")));
  });
  govRoute(router, node, "GET", "/gov/service/javascript-modules", () =>
    runInTx(node.pipeline, (tx) => json(jsModulesView(tx))),
  );
  govRoute(router, node, "GET", "/gov/service/javascript-modules/{moduleName}", (r) =>
    runInTx(node.pipeline, (tx) => {
      const name = r.params.moduleName ?? "";
      const source = jsModuleSource(tx, name) ?? notFound(`Module ${name}`);
      return { status: 200, headers: { "content-type": "text/javascript" }, body: source };
    }),
  );
}

/**
 * Members and users as governance sees them (ccf-compatibility.md §4.4, §3.4): the state
 * digest update/ack flow that turns an Accepted member Active, and the /gov/service/members and
 * /gov/service/users views. Follows CCF src/node/gov/handlers/acks.h, except that the digest
 * is the `root` of the latest `public:ccf.internal.signatures` entry (CCF reads the same root
 * from the serialised Merkle tree).
 *
 * Authentication (the COSE signer is the member in the path) is the HTTP layer's. Triggering a
 * recovery-share reshare for a newly active recovery member of an Open service is the node's:
 * ackStateDigest reports what it needs to decide.
 */
import type { Tx } from "../kv/tx.js";
import { GovErrorCode, govError, internalError } from "./errors.js";
import {
  entriesById,
  getById,
  getSingleton,
  GOV_MAPS,
  type MemberInfo,
  type MemberStatus,
  type RecoveryRole,
  setById,
} from "./tables.js";

const HEX_ROOT_RE = /^[0-9a-f]{64}$/;

export interface StateDigest {
  memberId: string;
  stateDigest: string;
}

/** The digest the member must ack, as stored by the last update (ResourceNotFound if none). */
export function getStateDigest(tx: Tx, memberId: string): StateDigest {
  const ack = getById(tx, GOV_MAPS.memberAcks, memberId);
  if (ack === undefined) {
    throw govError(GovErrorCode.ResourceNotFound, `No ACK record exists for member ${memberId}.`);
  }
  return { memberId, stateDigest: ack.state_digest };
}

/** The hex Merkle root of the latest signature; InternalError before the first one. */
export function latestSignedRoot(tx: Tx): string {
  const signature = getSingleton(tx, GOV_MAPS.signatures);
  if (signature === undefined) {
    throw internalError("Service has no signatures to ack yet - try again soon.");
  }
  const root = signature.root;
  if (typeof root !== "string" || !HEX_ROOT_RE.test(root)) {
    throw internalError("The latest signature has no valid root.");
  }
  return root;
}

/** Stores the latest signed root as the digest the member must ack, creating the record. */
export function updateStateDigest(tx: Tx, memberId: string): StateDigest {
  const stateDigest = latestSignedRoot(tx);
  const ack = getById(tx, GOV_MAPS.memberAcks, memberId) ?? { state_digest: "" };
  ack.state_digest = stateDigest;
  setById(tx, GOV_MAPS.memberAcks, memberId, ack);
  return { memberId, stateDigest };
}

export interface AckOutcome {
  /** The member was Accepted and is now Active. */
  readonly newlyActive: boolean;
  /** The member holds recovery shares (Participant or Owner with an encryption key). */
  readonly recoveryMember: boolean;
}

function isRecoveryMember(tx: Tx, memberId: string, info: MemberInfo | undefined): boolean {
  return (
    info !== undefined &&
    info.recovery_role !== "NonParticipant" &&
    getById(tx, GOV_MAPS.memberEncryptionKeys, memberId) !== undefined
  );
}

/**
 * Checks the acked digest against the stored one, stores the COSE request and makes the member
 * Active. Throws GovError: AuthorizationFailed without an ack record, StateDigestMismatch,
 * InvalidInput for a not-yet-active recovery member while the service recovers, InternalError
 * when the member has no info record.
 */
export function ackStateDigest(
  tx: Tx,
  memberId: string,
  stateDigest: string,
  coseRequestB64: string,
): AckOutcome {
  const ack = getById(tx, GOV_MAPS.memberAcks, memberId);
  if (ack === undefined) {
    throw govError(
      GovErrorCode.AuthorizationFailed,
      `No ACK record exists for member ${memberId}.`,
    );
  }
  if (ack.state_digest !== stateDigest) {
    throw govError(
      GovErrorCode.StateDigestMismatch,
      `Submitted state digest is not valid.\nExpected\n ${ack.state_digest}\nReceived\n ` +
        stateDigest,
    );
  }
  const info = getById(tx, GOV_MAPS.memberInfo, memberId);
  const recoveryMember = isRecoveryMember(tx, memberId, info);
  const service = getSingleton(tx, GOV_MAPS.serviceInfo);
  if (service?.status === "Recovering" && recoveryMember && info?.status !== "Active") {
    throw govError(
      GovErrorCode.InvalidInput,
      "Recovery members cannot be activated during recovery.",
    );
  }
  delete ack.signed_req;
  ack.cose_sign1_req = coseRequestB64;
  setById(tx, GOV_MAPS.memberAcks, memberId, ack);
  if (info === undefined) {
    throw internalError(`Error activating member: member ${memberId} does not exist`);
  }
  const newlyActive = info.status !== "Active";
  if (newlyActive) setById(tx, GOV_MAPS.memberInfo, memberId, { ...info, status: "Active" });
  return { newlyActive, recoveryMember };
}

/** A member in the /gov/service/members API shape. */
export interface MemberView {
  memberId: string;
  status: MemberStatus;
  memberData: unknown;
  certificate: string;
  publicEncryptionKey?: string;
  recoveryRole: RecoveryRole;
}

/** The member's view, or null when there is no such member. */
export function memberView(tx: Tx, memberId: string): MemberView | null {
  const info = getById(tx, GOV_MAPS.memberInfo, memberId);
  const certificate = getById(tx, GOV_MAPS.memberCerts, memberId);
  if (info === undefined || certificate === undefined) return null;
  const view: MemberView = {
    memberId,
    status: info.status,
    // CCF answers null, not an absent field, for a member without data.
    memberData: info.member_data ?? null,
    certificate,
    recoveryRole: info.recovery_role,
  };
  const key = getById(tx, GOV_MAPS.memberEncryptionKeys, memberId);
  if (key !== undefined) view.publicEncryptionKey = key;
  return view;
}

/** Every member, in member id order. */
export function listMembers(tx: Tx): MemberView[] {
  const out: MemberView[] = [];
  for (const [memberId] of entriesById(tx, GOV_MAPS.memberInfo)) {
    const view = memberView(tx, memberId);
    if (view !== null) out.push(view);
  }
  return out;
}

/** A user in the /gov/service/users API shape. */
export interface UserView {
  userId: string;
  certificate: string;
  userData: unknown;
}

/** The user's view, or null when there is no such user. */
export function userView(tx: Tx, userId: string): UserView | null {
  const certificate = getById(tx, GOV_MAPS.userCerts, userId);
  if (certificate === undefined) return null;
  const info = getById(tx, GOV_MAPS.userInfo, userId);
  return { userId, certificate, userData: info?.user_data ?? null };
}

/** Every user, in user id order (users are keyed by their certificate table). */
export function listUsers(tx: Tx): UserView[] {
  const out: UserView[] = [];
  for (const [userId] of entriesById(tx, GOV_MAPS.userCerts)) {
    const view = userView(tx, userId);
    if (view !== null) out.push(view);
  }
  return out;
}

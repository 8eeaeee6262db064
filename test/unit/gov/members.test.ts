// Member activation and the member/user views (src/gov/members.ts) over a real Store: the state
// digest is the root of the latest signature (none yet is an InternalError), an ack must carry
// exactly that digest and needs an ack record, and a correct ack makes the member Active and
// stores the COSE request. Views must have the /gov/service/members and /users shapes CCF
// clients parse. Each error code is asserted because the HTTP status follows from it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateEncryptionKey, generateIdentity } from "../../../src/crypto/identity.js";
import { Store } from "../../../src/kv/store.js";
import { type Tx } from "../../../src/kv/tx.js";
import {
  ackStateDigest,
  getStateDigest,
  listMembers,
  listUsers,
  memberView,
  updateStateDigest,
  userView,
} from "../../../src/gov/members.js";
import { getById, GOV_MAPS, setById, setSingleton } from "../../../src/gov/tables.js";
import { GovError, GovErrorCode } from "../../../src/gov/errors.js";
import { writeGenesis } from "../../../src/gov/genesis.js";

const NOW = new Date("2024-01-01T00:00:00Z");
const [alice, bob, carol] = await Promise.all([
  generateIdentity({ name: "alice", now: NOW }),
  generateIdentity({ name: "bob", now: NOW }),
  generateIdentity({ name: "carol", now: NOW }),
]);
const aliceKey = generateEncryptionKey();
const ROOT_1 = "1".repeat(64);
const ROOT_2 = "2".repeat(64);

/** Genesis with alice (recovery participant) and bob (member data, no key). */
function setup(): { tx: Tx; aliceId: string; bobId: string } {
  const tx = new Store().begin();
  const { memberIds } = writeGenesis(tx, {
    members: [
      { certPem: alice.certPem, encryptionPublicKeyPem: aliceKey.publicKeyPem },
      { certPem: bob.certPem, memberData: { role: "auditor" } },
    ],
    constitution: "",
    serviceCertPem: "SERVICE",
    serviceData: null,
    configuration: {
      recovery_threshold: 1,
      maximum_node_certificate_validity_days: 365,
      maximum_service_certificate_validity_days: 365,
      reconfiguration_type: "OneTransaction",
      recent_cose_proposals_window_size: 100,
    },
    node: {
      nodeId: "d".repeat(64),
      info: {
        node_to_node_interface: { bind_address: "x" },
        rpc_interfaces: {},
        quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
        encryption_pub_key: "",
        status: "Pending",
        node_data: null,
      },
    },
    virtualMeasurement: "m",
    virtualHostData: "0".repeat(64),
  });
  return { tx, aliceId: memberIdFromIds(memberIds, 0), bobId: memberIdFromIds(memberIds, 1) };
}

function memberIdFromIds(ids: readonly string[], index: number): string {
  const id = ids[index];
  assert.ok(id !== undefined);
  return id;
}

function sign(tx: Tx, root: string): void {
  setSingleton(tx, GOV_MAPS.signatures, { root });
}

function code(e: unknown): string {
  assert.ok(e instanceof GovError, `expected a GovError, got ${String(e)}`);
  return e.code;
}

test("updating the state digest needs a signature, then stores the latest root", () => {
  const { tx, aliceId } = setup();
  assert.throws(
    () => updateStateDigest(tx, aliceId),
    (e: unknown) => code(e) === GovErrorCode.InternalError,
  );
  sign(tx, ROOT_1);
  assert.deepEqual(updateStateDigest(tx, aliceId), { memberId: aliceId, stateDigest: ROOT_1 });
  assert.deepEqual(getStateDigest(tx, aliceId), { memberId: aliceId, stateDigest: ROOT_1 });
  sign(tx, ROOT_2);
  assert.equal(updateStateDigest(tx, aliceId).stateDigest, ROOT_2);
  assert.equal(getById(tx, GOV_MAPS.memberAcks, aliceId)?.state_digest, ROOT_2);
});

test("a member without an ack record has no state digest to read", () => {
  const { tx } = setup();
  assert.throws(
    () => getStateDigest(tx, "f".repeat(64)),
    (e: unknown) => code(e) === GovErrorCode.ResourceNotFound,
  );
});

test("an ack with the wrong digest or without an ack record is refused", () => {
  const { tx, aliceId } = setup();
  sign(tx, ROOT_1);
  updateStateDigest(tx, aliceId);
  assert.throws(
    () => ackStateDigest(tx, aliceId, ROOT_2, "Y29zZQ=="),
    (e: unknown) => code(e) === GovErrorCode.StateDigestMismatch,
  );
  assert.throws(
    () => ackStateDigest(tx, "f".repeat(64), ROOT_1, "Y29zZQ=="),
    (e: unknown) => code(e) === GovErrorCode.AuthorizationFailed,
  );
  assert.equal(getById(tx, GOV_MAPS.memberInfo, aliceId)?.status, "Accepted");
});

test("a correct ack activates the member once and stores the COSE request", () => {
  const { tx, aliceId, bobId } = setup();
  sign(tx, ROOT_1);
  updateStateDigest(tx, aliceId);
  assert.deepEqual(ackStateDigest(tx, aliceId, ROOT_1, "Y29zZQ=="), {
    newlyActive: true,
    recoveryMember: true,
  });
  assert.equal(getById(tx, GOV_MAPS.memberInfo, aliceId)?.status, "Active");
  assert.deepEqual(getById(tx, GOV_MAPS.memberAcks, aliceId), {
    state_digest: ROOT_1,
    cose_sign1_req: "Y29zZQ==",
  });
  assert.deepEqual(ackStateDigest(tx, aliceId, ROOT_1, "YWdhaW4="), {
    newlyActive: false,
    recoveryMember: true,
  });
  // Genesis members may ack the "" digest they start with; bob holds no recovery share.
  assert.deepEqual(ackStateDigest(tx, bobId, "", "Ym9i"), {
    newlyActive: true,
    recoveryMember: false,
  });
});

test("a recovery member cannot become active while the service is recovering", () => {
  const { tx, aliceId, bobId } = setup();
  const service = getById(tx, GOV_MAPS.serviceInfo, "");
  assert.equal(service, undefined, "service info is a singleton, not an id-keyed entry");
  setSingleton(tx, GOV_MAPS.serviceInfo, {
    cert: "SERVICE",
    status: "Recovering",
    recovery_count: 1,
    service_data: null,
  });
  assert.throws(
    () => ackStateDigest(tx, aliceId, "", "Y29zZQ=="),
    (e: unknown) => code(e) === GovErrorCode.InvalidInput,
  );
  assert.equal(ackStateDigest(tx, bobId, "", "Ym9i").newlyActive, true);
});

test("member views have the /gov/service/members shape, in member id order", () => {
  const { tx, aliceId, bobId } = setup();
  assert.deepEqual(memberView(tx, aliceId), {
    memberId: aliceId,
    status: "Accepted",
    memberData: null,
    certificate: alice.certPem,
    publicEncryptionKey: aliceKey.publicKeyPem,
    recoveryRole: "Participant",
  });
  assert.deepEqual(memberView(tx, bobId), {
    memberId: bobId,
    status: "Accepted",
    memberData: { role: "auditor" },
    certificate: bob.certPem,
    recoveryRole: "NonParticipant",
  });
  assert.equal(memberView(tx, "f".repeat(64)), null);
  assert.deepEqual(
    listMembers(tx).map((m) => m.memberId),
    [aliceId, bobId].sort(),
  );
});

test("user views have the /gov/service/users shape", () => {
  const { tx } = setup();
  const carolId = "e".repeat(64);
  const daveId = "a".repeat(64);
  setById(tx, GOV_MAPS.userCerts, carolId, carol.certPem);
  setById(tx, GOV_MAPS.userInfo, carolId, { user_data: { tier: 2 } });
  setById(tx, GOV_MAPS.userCerts, daveId, "DAVE PEM");
  assert.deepEqual(userView(tx, carolId), {
    userId: carolId,
    certificate: carol.certPem,
    userData: { tier: 2 },
  });
  assert.deepEqual(listUsers(tx), [
    { userId: daveId, certificate: "DAVE PEM", userData: null },
    { userId: carolId, certificate: carol.certPem, userData: { tier: 2 } },
  ]);
  assert.equal(userView(tx, "0".repeat(64)), null);
});

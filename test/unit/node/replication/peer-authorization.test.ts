/**
 * The node-to-node admission rule (isAuthorizedPeer) over a real store and real certificates:
 * service endorsement first; then only a peer the nodes table knows to be gone (Retired with
 * retired_committed) stays out. A peer the table does not list is let in, as a snapshot joiner
 * whose table predates the peer's join must be (chaos seed 99: the joiner refused the new
 * primary forever).
 */
import { before, test } from "node:test";
import assert from "node:assert/strict";
import {
  createSelfSignedCertificate,
  createServiceCertificate,
  endorseNodeCertificate,
} from "../../../../src/crypto/cert-issuance.js";
import { type EcKeyPair } from "../../../../src/crypto/certs.js";
import { generateEcKeyPair, nodeIdFromPublicKey } from "../../../../src/crypto/identity.js";
import { deleteById, GOV_MAPS, setById, type NodeInfo } from "../../../../src/gov/tables.js";
import { Store } from "../../../../src/kv/store.js";
import { isAuthorizedPeer } from "../../../../src/node/replication/peer-authorization.js";

interface Peer {
  readonly id: string;
  readonly certDer: Uint8Array;
}

let serviceKeys: EcKeyPair;
let serviceCertPem: string;

before(async () => {
  serviceKeys = generateEcKeyPair();
  serviceCertPem = await createServiceCertificate({
    keys: serviceKeys,
    validityDays: 1,
    now: new Date(),
  });
});

function derOf(pem: string): Uint8Array {
  const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  return new Uint8Array(Buffer.from(body, "base64"));
}

async function peer(endorsed = true): Promise<Peer> {
  const keys = generateEcKeyPair();
  const now = new Date();
  const certPem = endorsed
    ? await endorseNodeCertificate({
        servicePrivateKey: serviceKeys.privateKey,
        serviceCertPem,
        nodePublicKey: keys.publicKey,
        validityDays: 1,
        now,
      })
    : await createSelfSignedCertificate({ keys, subject: "CN=rogue", validityDays: 1, now });
  return { id: nodeIdFromPublicKey(keys.publicKey), certDer: derOf(certPem) };
}

function info(status: NodeInfo["status"], extra: Partial<NodeInfo> = {}): NodeInfo {
  return {
    node_to_node_interface: { bind_address: "127.0.0.1:0" },
    rpc_interfaces: {},
    quote_info: { format: "Insecure_Virtual", quote: "", endorsements: "" },
    encryption_pub_key: "",
    status,
    node_data: null,
    ...extra,
  };
}

/** A store whose nodes table holds `rows` (node id -> info), written in one transaction. */
function storeWith(rows: Record<string, NodeInfo>): Store {
  const store = new Store();
  write(store, (tx) => {
    for (const [id, row] of Object.entries(rows)) setById(tx, GOV_MAPS.nodeInfo, id, row);
  });
  return store;
}

function write(store: Store, body: (tx: ReturnType<Store["begin"]>) => void): void {
  const tx = store.begin();
  body(tx);
  assert.equal(store.commit(tx).kind, "committed");
}

function admits(p: Peer, store: Store): boolean {
  return isAuthorizedPeer(p, { certPem: serviceCertPem, store });
}

test("a certificate the service did not endorse is refused, listed or not", async () => {
  const rogue = await peer(false);
  assert.equal(admits(rogue, new Store()), false);
  assert.equal(admits(rogue, storeWith({ [rogue.id]: info("Trusted") })), false);
});

test("an empty store (a joiner before its first entry) admits any endorsed peer", async () => {
  assert.equal(admits(await peer(), new Store()), true);
});

test("a stale table admits an endorsed peer it does not list (snapshot joiner, newer primary)", async () => {
  const [self, older, newer] = [await peer(), await peer(), await peer()];
  // The snapshot the joiner started from lists itself and the nodes of its time, not `newer`.
  const store = storeWith({ [self.id]: info("Trusted"), [older.id]: info("Trusted") });
  assert.ok(store.seqno > 0);
  assert.equal(admits(newer, store), true);
  assert.equal(admits(older, store), true);
});

test("listed peers are admitted while any configuration may still need them", async () => {
  const [pending, trusted, retiring] = [await peer(), await peer(), await peer()];
  const store = storeWith({
    [pending.id]: info("Pending"),
    [trusted.id]: info("Trusted"),
    [retiring.id]: info("Retired"),
  });
  assert.equal(admits(pending, store), true);
  assert.equal(admits(trusted, store), true);
  assert.equal(admits(retiring, store), true, "Retired, retirement not yet committed");
});

test("a peer whose retirement committed is refused, even with an endorsed certificate", async () => {
  const [gone, other] = [await peer(), await peer()];
  const store = storeWith({ [gone.id]: info("Retired"), [other.id]: info("Trusted") });
  assert.equal(admits(gone, store), true);
  write(store, (tx) => {
    setById(tx, GOV_MAPS.nodeInfo, gone.id, info("Retired", { retired_committed: true }));
  });
  assert.equal(admits(gone, store), false);
  assert.equal(admits(other, store), true);
});

test("once its row is deleted a removed node cannot be told from a newer one: admitted", async () => {
  // Documented, not desired: consensus keeps such a node out (see the raft scenario test).
  const [gone, other] = [await peer(), await peer()];
  const store = storeWith({
    [gone.id]: info("Retired", { retired_committed: true }),
    [other.id]: info("Trusted"),
  });
  assert.equal(admits(gone, store), false);
  write(store, (tx) => deleteById(tx, GOV_MAPS.nodeInfo, gone.id));
  assert.equal(admits(gone, store), true);
});

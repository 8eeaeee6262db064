// HistoricalRanges (src/node/frontends/historical-ranges.ts), behind the JS apps'
// ccf.historical.getStateRange, over a REAL ledger built through TxPipeline (ledger-fixture.ts:
// several chunk files, private values encrypted), with a node context reduced to the ledger
// configuration, the secrets and the pipeline's commit seqno. Oracles: the values the fixture's
// transactions wrote (txKey(i) -> privateValue(i)), and CCF's contract: null while the range
// loads or is not committed, the states once loaded, dropCachedStates forgets a handle.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Seqno } from "../../../../src/base/ids.js";
import { HttpError } from "../../../../src/http/errors.js";
import { HistoricalRanges } from "../../../../src/node/frontends/historical-ranges.js";
import type { NodeContext } from "../../../../src/node/frontends/node-context.js";
import {
  buildLedgerFixture,
  FIXTURE_VIEW,
  PRIVATE_MAP,
  privateValue,
  txKey,
} from "../../../helpers/ledger-fixture.js";

async function until<T>(probe: () => T | null): Promise<T> {
  for (let i = 0; i < 200; i++) {
    const value = probe();
    if (value !== null) return value;
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.fail("never loaded");
}

test("a range answers null while it loads, then its states; dropCachedStates forgets it", async (t) => {
  const fixture = await buildLedgerFixture({ txCount: 60, sigTxInterval: 5, chunkSizeBytes: 4096 });
  t.after(() => fixture.cleanup());
  const node = {
    config: { ledger: { directory: fixture.dir, readOnlyDirectories: [] } },
    history: { secrets: fixture.secrets },
    store: { get: () => undefined },
    pipeline: {
      flushLedger: () => undefined,
      commitTxId: { view: FIXTURE_VIEW, seqno: fixture.lastSignedSeqno },
      receipt: () => ({ kind: "unavailable" }),
    },
  } as unknown as NodeContext;
  const ranges = new HistoricalRanges(node);
  const from = 3 as Seqno;
  const to = (fixture.lastSignedSeqno - 2) as Seqno;
  assert.equal(ranges.stateRange(1, from, (fixture.lastSignedSeqno + 1) as Seqno), null);
  assert.equal(ranges.stateRange(1, from, to), null, "the first call starts the load");
  const states = await until(() => ranges.stateRange(1, from, to));
  assert.equal(states.length, to - from + 1);
  let checked = 0;
  for (const state of states) {
    assert.equal(state.txId.view, FIXTURE_VIEW);
    const i = fixture.txNumberBySeqno.get(state.txId.seqno);
    if (i === undefined) continue; // a signature transaction
    assert.deepEqual(
      state.get(PRIVATE_MAP, txKey(i)),
      privateValue(i),
      `seqno ${state.txId.seqno}`,
    );
    checked++;
  }
  assert.ok(checked > 40, `${checked} values checked`);
  assert.equal(ranges.stateRange(1, from, to), states, "kept for the handle");
  assert.equal(ranges.drop(1), true);
  assert.equal(ranges.drop(1), false);
  assert.equal(ranges.stateRange(1, from, to), null, "loads again after a drop");
  assert.throws(() => ranges.stateRange(2, 1 as Seqno, 20_000 as Seqno), HttpError);
});

// The console's ledger explorer API (src/cli/console/ledger-api.ts) over a real ledger built by
// the pipeline (test/helpers/ledger-fixture.ts), spread over several chunk files. The oracle is
// the fixture's own record of what it wrote: the seqnos of its signatures, the public value of
// every transaction, the last seqno. Covers paging, the signature and table filters, the query's
// refusals, and a console with no ledger.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { fromUtf8 } from "../../../../src/base/bytes.js";
import {
  ENTRIES_MAX,
  LedgerApi,
  parseLedgerQuery,
} from "../../../../src/cli/console/ledger-api.js";
import { ConsoleError } from "../../../../src/cli/console/console-error.js";
import {
  buildLedgerFixture,
  PUBLIC_MAP,
  publicValue,
  type LedgerFixture,
} from "../../../helpers/ledger-fixture.js";

let fixture: LedgerFixture;

before(async () => {
  fixture = await buildLedgerFixture({ txCount: 40, sigTxInterval: 7 });
});
after(() => fixture.cleanup());

const query = (text: string) => parseLedgerQuery(new URLSearchParams(text));

test("the summary lists the chunk files and the last seqno", () => {
  const summary = new LedgerApi(fixture.dir).summary() as {
    files: { firstSeqno: number }[];
    lastSeqno: number;
  };
  assert.ok(summary.files.length > 1, "the fixture spans several files");
  assert.equal(summary.files[0]?.firstSeqno, 1);
  assert.equal(summary.lastSeqno, fixture.lastSeqno);
});

test("entries page by seqno with each public value decoded, to the end of the ledger", () => {
  const api = new LedgerApi(fixture.dir);
  const seen: number[] = [];
  let from: number | null = 1;
  while (from !== null) {
    const page = api.entries(query(`from=${from}&count=9`));
    for (const entry of page.entries as { seqno: number; public: Record<string, any> }[]) {
      seen.push(entry.seqno);
      const i = fixture.txNumberBySeqno.get(entry.seqno);
      if (i === undefined) continue;
      const value = entry.public[PUBLIC_MAP].set[0].value as string;
      assert.equal(value, fromUtf8(publicValue(i)), `seqno ${entry.seqno}`);
    }
    from = page.next;
  }
  assert.deepEqual(
    seen,
    Array.from({ length: fixture.lastSeqno }, (_, k) => k + 1),
  );
});

test("the signature filter returns exactly the signature transactions", () => {
  const page = new LedgerApi(fixture.dir).entries(query("from=1&count=100&signatures=true"));
  const seqnos = page.entries.map((e) => e["seqno"]);
  assert.deepEqual(seqnos, fixture.signatureSeqnos);
  assert.ok(
    page.entries.every((e) => typeof (e["signature"] as { root?: unknown }).root === "string"),
  );
});

test("the table filter returns the entries that write that public map", () => {
  const page = new LedgerApi(fixture.dir).entries(
    query(`from=1&count=100&table=${encodeURIComponent(PUBLIC_MAP)}`),
  );
  assert.deepEqual(
    page.entries.map((e) => e["seqno"]),
    [...fixture.txNumberBySeqno.keys()].sort((a, b) => a - b),
  );
});

test("bad queries and a console without a ledger are ConsoleErrors", () => {
  for (const bad of [
    "from=0",
    "from=x",
    `count=${ENTRIES_MAX + 1}`,
    "signatures=yes",
    "table=records",
  ]) {
    assert.throws(() => query(bad), ConsoleError, bad);
  }
  assert.throws(
    () => new LedgerApi(null).summary(),
    (err: unknown) => {
      return err instanceof ConsoleError && err.code === "LedgerUnavailable" && err.status === 404;
    },
  );
});

// HardStateFile (src/node/replication/hard-state-file.ts) on real files: a save is read back
// as JSON; a save the file system refuses (a path under a regular file: ENOTDIR, a real
// failure even for root) is a StorageError naming the file, the call and the errno, which the
// node treats as a disk fault (SECURITY.md, "Disk faults").
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StorageError } from "../../../../src/base/storage-error.js";
import type { NodeId, View } from "../../../../src/consensus/types.js";
import { HardStateFile } from "../../../../src/node/replication/hard-state-file.js";
import { tempDir } from "../../../helpers/pki.js";

test("a hard state save is durable JSON; a refused one is a StorageError naming the file", () => {
  const { dir, cleanup } = tempDir("consortia-hard-state-");
  try {
    const path = join(dir, "consensus_state.json");
    new HardStateFile(path).save({ view: 3 as View, votedFor: "n1" as NodeId });
    assert.deepEqual(JSON.parse(readFileSync(path, "utf8")), { view: 3, votedFor: "n1" });
    const notADirectory = join(dir, "a-file");
    writeFileSync(notADirectory, "");
    const refused = join(notADirectory, "consensus_state.json");
    assert.throws(
      () => new HardStateFile(refused).save({ view: 4 as View, votedFor: null }),
      (e) =>
        e instanceof StorageError &&
        e.type.errno === "ENOTDIR" &&
        e.type.operation === "open" &&
        e.type.path === `${refused}.tmp`,
    );
  } finally {
    cleanup();
  }
});

/**
 * A sample of each app service message that carries a transaction (src/appservice/messages.ts):
 * a call of a read-write handler with one value and a result with a read, a map read and a
 * removal. Fresh objects on each call, for the codec's tests and the frame fuzzers.
 */
import { utf8 } from "../../src/base/bytes.js";
import { NO_VALUES, type CallMessage, type ResultMessage } from "../../src/appservice/messages.js";

export function sampleCallMessage(): CallMessage {
  return {
    t: "call",
    id: 3,
    module: "/app.js",
    handler: "put",
    mode: "readwrite",
    interpreter_reuse: null,
    request: {
      method: "POST",
      url: "/app/x?a=1",
      path: "/app/x",
      route: "/app/x",
      query: "a=1",
      hostname: "h",
      headers: { "content-type": "text/plain" },
      params: {},
      body: utf8("hi"),
    },
    caller: '{"policy":"user_cert"}',
    cose_content: null,
    last_committed: [2, 10],
    values: { ...NO_VALUES, keys: [["public:m", utf8("k"), null, 0]] },
  };
}

export function sampleResultMessage(): ResultMessage {
  return {
    t: "result",
    id: 3,
    epoch: 0,
    status: 200,
    headers: {},
    body_kind: "json",
    body: utf8("{}"),
    reads: [["public:m", utf8("k"), 4]],
    map_reads: [["public:n", 9]],
    writes: [["public:m", utf8("k"), null]],
    cleared: [],
    claims_digest: new Uint8Array(32),
    apply_writes: null,
  };
}

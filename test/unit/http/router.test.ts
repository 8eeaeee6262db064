// The router (src/http/router.ts): CCF-style path templates, specificity between literal and
// parameter segments, the 404/405/OPTIONS outcomes with CCF's exact bodies and Allow headers,
// and adding and removing routes at runtime (governance installs JS apps while serving).
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  responseForMiss,
  Router,
  type RouteMatch,
  type RpcHandler,
  type RpcResponse,
} from "../../../src/http/router.js";

type Miss = Exclude<RouteMatch, { kind: "handler" }>;

/** A lookup that must not find a handler. */
function miss(router: Router, method: string, path: string): Miss {
  const m = router.match(method, path);
  if (m.kind === "handler") assert.fail(`unexpected handler for ${method} ${path}`);
  return m;
}

function named(name: string): RpcHandler {
  return (): RpcResponse => ({ status: 200, body: name });
}

/** The name of the handler a lookup found, or the kind of miss. */
function resolve(router: Router, method: string, path: string): string {
  const m = router.match(method, path);
  if (m.kind !== "handler") return m.kind;
  return (m.handler({} as never) as RpcResponse).body as string;
}

test("a literal route matches only its exact path and method", () => {
  const router = new Router();
  router.add("GET", "/node/state", named("state"));
  assert.equal(resolve(router, "GET", "/node/state"), "state");
  assert.equal(resolve(router, "GET", "/node/state/"), "unknown-path");
  assert.equal(resolve(router, "GET", "/node/stat"), "unknown-path");
  assert.equal(resolve(router, "POST", "/node/state"), "unsupported-verb");
});

test("template parameters bind one percent-decoded segment each", () => {
  const router = new Router();
  router.add("GET", "/app/log/private/raw_text/{id}", named("raw"));
  router.add("GET", "/gov/members/proposals/{proposalId}/ballots/{memberId}", named("ballot"));
  const raw = router.match("GET", "/app/log/private/raw_text/a%20b%2Fc");
  assert.equal(raw.kind, "handler");
  assert.deepEqual(raw.kind === "handler" && raw.params, { id: "a b/c" });
  assert.equal(raw.kind === "handler" && raw.template, "/app/log/private/raw_text/{id}");
  const ballot = router.match("GET", "/gov/members/proposals/p1/ballots/m2");
  assert.deepEqual(ballot.kind === "handler" && ballot.params, {
    proposalId: "p1",
    memberId: "m2",
  });
  assert.equal(resolve(router, "GET", "/app/log/private/raw_text/"), "unknown-path");
  assert.equal(resolve(router, "GET", "/app/log/private/raw_text/1/2"), "unknown-path");
});

test("a malformed percent escape in a templated path is reported, not thrown", () => {
  const router = new Router();
  router.add("GET", "/app/x/{id}", named("x"));
  assert.equal(resolve(router, "GET", "/app/x/%zz"), "malformed-path");
  const response = responseForMiss({ kind: "malformed-path" }, "/app/x/%zz");
  assert.equal(response.status, 400);
});

test("a literal segment is preferred over a parameter, whatever the registration order", () => {
  for (const order of [0, 1]) {
    const router = new Router();
    const routes: [string, string][] = [
      ["/app/log/{id}", "param"],
      ["/app/log/count", "literal"],
    ];
    if (order === 1) routes.reverse();
    for (const [template, name] of routes) router.add("GET", template, named(name));
    assert.equal(resolve(router, "GET", "/app/log/count"), "literal");
    assert.equal(resolve(router, "GET", "/app/log/7"), "param");
  }
});

test("a less specific template still serves a verb the more specific one lacks", () => {
  const router = new Router();
  router.add("GET", "/a/{x}", named("get-param"));
  router.add("POST", "/a/b", named("post-literal"));
  assert.equal(resolve(router, "GET", "/a/b"), "get-param");
  assert.equal(resolve(router, "POST", "/a/b"), "post-literal");
  assert.equal(resolve(router, "POST", "/a/c"), "unsupported-verb");
});

test("an unknown path answers 404 ResourceNotFound naming the path", () => {
  const router = new Router();
  const m = miss(router, "GET", "/x");
  assert.equal(m.kind, "unknown-path");
  assert.deepEqual(responseForMiss(m, "/x"), {
    status: 404,
    body: { error: { code: "ResourceNotFound", message: "Unknown path: /x." } },
  });
});

test("another verb on a known path answers 405 with OPTIONS first in Allow", () => {
  const router = new Router();
  router.add("POST", "/app/log/private", named("post"));
  router.add("GET", "/app/log/private", named("get"));
  router.add("DELETE", "/app/log/private", named("delete"));
  const m = miss(router, "PUT", "/app/log/private");
  assert.deepEqual(m, { kind: "unsupported-verb", allow: "OPTIONS, DELETE, GET, POST" });
  assert.deepEqual(responseForMiss(m, "/app/log/private"), {
    status: 405,
    headers: { allow: "OPTIONS, DELETE, GET, POST" },
    body: {
      error: {
        code: "UnsupportedHttpVerb",
        message: "Allowed methods for '/app/log/private' are: OPTIONS, DELETE, GET, POST.",
      },
    },
  });
});

test("OPTIONS on a known path answers 204 with Allow and no body", () => {
  const router = new Router();
  router.add("GET", "/app/log/{id}", named("get"));
  const m = miss(router, "OPTIONS", "/app/log/3");
  assert.deepEqual(m, { kind: "options", allow: "OPTIONS, GET" });
  assert.deepEqual(responseForMiss(m, "/app/log/3"), {
    status: 204,
    headers: { allow: "OPTIONS, GET" },
  });
  assert.equal(router.match("OPTIONS", "/nope").kind, "unknown-path");
});

test("routes added at runtime are served and removed ones are gone", () => {
  const router = new Router();
  router.add("GET", "/app/keep", named("keep"));
  const removeOne = router.add("POST", "/app/js/{id}", named("js-post"));
  router.add("GET", "/app/js/{id}", named("js-get"));
  assert.equal(resolve(router, "POST", "/app/js/1"), "js-post");
  removeOne();
  assert.equal(resolve(router, "POST", "/app/js/1"), "unsupported-verb");
  assert.equal(router.remove("GET", "/app/js/{id}"), true);
  assert.equal(router.remove("GET", "/app/js/{id}"), false);
  assert.equal(resolve(router, "GET", "/app/js/1"), "unknown-path");
  assert.equal(resolve(router, "GET", "/app/keep"), "keep");
  // The same route can be installed again after removal (a new app bundle).
  router.add("GET", "/app/js/{id}", named("js-get-2"));
  assert.equal(resolve(router, "GET", "/app/js/9"), "js-get-2");
  assert.deepEqual(router.routes(), [
    { method: "GET", template: "/app/js/{id}" },
    { method: "GET", template: "/app/keep" },
  ]);
});

test("a stale remover does not remove a later registration of the same route", () => {
  const router = new Router();
  const removeOld = router.add("GET", "/app/v", named("old"));
  removeOld();
  router.add("GET", "/app/v", named("new"));
  removeOld();
  assert.equal(resolve(router, "GET", "/app/v"), "new");
});

test("registering the same method and template twice, or a bad template, is refused", () => {
  const router = new Router();
  router.add("GET", "/a/{id}", named("a"));
  assert.throws(() => router.add("GET", "/a/{id}", named("b")), /already registered/);
  assert.throws(() => router.add("GET", "a/b", named("c")), /must start with/);
  assert.throws(() => router.add("GET", "/a/{x}/{x}", named("d")), /duplicate parameter/);
  assert.throws(() => router.add("GET", "/a/x{y}", named("e")), /literal or \{name\}/);
  assert.throws(() => router.add("get", "/a/b", named("f")), /upper case/);
});

test("any segment value (except empty) binds to a parameter and round-trips encoding", () => {
  const router = new Router();
  router.add("GET", "/app/{key}/tail", named("k"));
  fc.assert(
    fc.property(fc.string({ minLength: 1, maxLength: 20 }), (value) => {
      const m = router.match("GET", `/app/${encodeURIComponent(value)}/tail`);
      assert.equal(m.kind, "handler");
      assert.deepEqual(m.kind === "handler" && m.params, { key: value });
    }),
  );
});

test("a route source is consulted first under its prefix and can be removed", async () => {
  const router = new Router();
  router.add("GET", "/app/log", () => ({ status: 200, body: "built-in" }));
  router.add("GET", "/app/other", () => ({ status: 200, body: "other" }));
  const overlay = new Router();
  overlay.add("GET", "/app/log", () => ({ status: 200, body: "js" }));
  overlay.add("POST", "/app/js/{id}", () => ({ status: 200, body: "js post" }));
  const remove = router.addSource("/app/", overlay);
  const run = async (method: string, path: string) => {
    const m = router.match(method, path);
    return m.kind === "handler" ? await m.handler({} as never) : m.kind;
  };
  assert.deepEqual(await run("GET", "/app/log"), { status: 200, body: "js" });
  assert.deepEqual(await run("GET", "/app/other"), { status: 200, body: "other" });
  assert.equal(await run("GET", "/app/js/1"), "unsupported-verb");
  const post = router.match("POST", "/app/js/7");
  assert.ok(post.kind === "handler" && post.params.id === "7" && post.template === "/app/js/{id}");
  remove();
  assert.deepEqual(await run("GET", "/app/log"), { status: 200, body: "built-in" });
  assert.equal(await run("POST", "/app/js/7"), "unknown-path");
});

test("a literal route's removed verb is gone while its other verbs stay", () => {
  const router = new Router();
  router.add("GET", "/app/lit", named("lit-get"));
  const removePost = router.add("POST", "/app/lit", named("lit-post"));
  assert.equal(resolve(router, "POST", "/app/lit"), "lit-post");
  removePost();
  assert.equal(resolve(router, "POST", "/app/lit"), "unsupported-verb");
  assert.equal(resolve(router, "GET", "/app/lit"), "lit-get");
  assert.equal(router.remove("GET", "/app/lit"), true);
  assert.equal(resolve(router, "GET", "/app/lit"), "unknown-path");
  router.add("GET", "/app/lit", named("lit-get-2"));
  assert.equal(resolve(router, "GET", "/app/lit"), "lit-get-2");
});

test("templates match paths by segment count, empty segments included", () => {
  const router = new Router();
  router.add("GET", "/a/{x}", named("one"));
  router.add("GET", "/a/{x}/{y}", named("two"));
  assert.equal(resolve(router, "GET", "/a/1"), "one");
  assert.equal(resolve(router, "GET", "/a/1/2"), "two");
  // An empty segment never binds a parameter, and counts as a segment.
  assert.equal(resolve(router, "GET", "/a/"), "unknown-path");
  assert.equal(resolve(router, "GET", "/a//2"), "unknown-path");
  assert.equal(resolve(router, "GET", "/a/1/"), "unknown-path");
  assert.equal(resolve(router, "GET", "/a/1/2/3"), "unknown-path");
});

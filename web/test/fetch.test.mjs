import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager } from "../dist/index.js";
import { API, REVOKE, TOKEN, deferred, fakeServer, flush, json } from "./helpers.mjs";

function setup(t, opts = {}) {
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, crossTab: false, apiOrigins: [API], ...opts });
  t.after(() => m.close());
  // at0 is no longer accepted by the API (only "at" + issued is).
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  return { srv, m };
}

test("20 concurrent fetches that get 401 → exactly 1 token request, 20 replays with the new token", async (t) => {
  const { srv, m } = setup(t);
  const gate = deferred();
  srv.tokenReply = async () => {
    await gate.promise;
    return srv.issue();
  };
  const all = Promise.all(Array.from({ length: 20 }, (_, i) => m.fetch(`${API}?i=${i}`)));
  await flush();
  gate.resolve();
  const res = await all;
  assert.deepEqual(res.map((r) => r.status), Array(20).fill(200));
  assert.equal(srv.tokenCalls.length, 1);
  assert.equal(srv.apiCalls.length, 40);
  assert.equal(srv.apiCalls.filter((c) => c.auth === "Bearer at0").length, 20);
  assert.equal(srv.apiCalls.filter((c) => c.auth === "Bearer at1").length, 20);
});

test("20 concurrent getAccessToken with an expired token → exactly 1 token request", async (t) => {
  t.mock.timers.enable({ apis: ["Date"], now: 1_000_000 });
  const { srv, m } = setup(t);
  t.mock.timers.setTime(1_000_000 + 3_600_000);
  const got = await Promise.all(Array.from({ length: 20 }, () => m.getAccessToken()));
  assert.deepEqual(got, Array(20).fill("at1"));
  assert.equal(srv.tokenCalls.length, 1);
});

test("a 401 for a token older than the current one replays with the current one, no refresh", async (t) => {
  const { srv, m } = setup(t);
  const held = deferred();
  srv.apiReply = (c) => (c.auth === "Bearer at0" ? held.promise : json(200, { ok: true }));
  const p = m.fetch(API);
  await flush();
  assert.equal(await m.refresh(), "at1"); // someone else refreshed meanwhile
  held.resolve(json(401, {}));
  const res = await p;
  assert.equal(res.status, 200);
  assert.equal(srv.tokenCalls.length, 1);
  assert.deepEqual(srv.apiCalls.map((c) => c.auth), ["Bearer at0", "Bearer at1"]);
  assert.equal(await m.refresh("at0"), "at1", "refresh(rejected) with a stale token: the current one");
  assert.equal(srv.tokenCalls.length, 1);
});

test("401 → one refresh, one replay; a second 401 is returned, no loop", async (t) => {
  const { srv, m } = setup(t);
  srv.apiReply = () => json(401, {});
  const res = await m.fetch(API, { method: "POST", body: "x" });
  assert.equal(res.status, 401);
  assert.equal(srv.tokenCalls.length, 1);
  assert.deepEqual(srv.apiCalls.map((c) => [c.auth, c.body]), [["Bearer at0", "x"], ["Bearer at1", "x"]]);
});

test("a Request with a body is replayed with the same body", async (t) => {
  const { srv, m } = setup(t);
  const res = await m.fetch(new Request(API, { method: "PUT", body: "hello", headers: { "X-App": "1" } }));
  assert.equal(res.status, 200);
  assert.deepEqual(srv.apiCalls.map((c) => [c.method, c.auth, c.body, c.headers.get("X-App")]), [
    ["PUT", "Bearer at0", "hello", "1"],
    ["PUT", "Bearer at1", "hello", "1"],
  ]);
});

test("403: no refresh by default; refresh with refreshOn403; never for insufficient_scope", async (t) => {
  const forbidden = (scope) => json(403, {}, { "WWW-Authenticate": scope ? 'Bearer error="insufficient_scope", scope="admin"' : 'Bearer error="invalid_token"' });
  {
    const { srv, m } = setup(t);
    srv.apiReply = () => forbidden(false);
    assert.equal((await m.fetch(API)).status, 403);
    assert.equal(srv.tokenCalls.length, 0);
    assert.equal(srv.apiCalls.length, 1);
  }
  {
    const { srv, m } = setup(t, { refreshOn403: true });
    srv.apiReply = (c) => (c.auth === "Bearer at1" ? json(200, {}) : forbidden(false));
    assert.equal((await m.fetch(API)).status, 200);
    assert.equal(srv.tokenCalls.length, 1);
    assert.equal(srv.apiCalls.length, 2);
  }
  {
    const { srv, m } = setup(t, { refreshOn403: true });
    srv.apiReply = () => forbidden(true);
    assert.equal((await m.fetch(API)).status, 403);
    assert.equal(srv.tokenCalls.length, 0);
    assert.equal(srv.apiCalls.length, 1);
  }
  {
    const { srv, m } = setup(t);
    srv.apiReply = () => json(401, {}, { "WWW-Authenticate": 'Bearer error="insufficient_scope"' });
    assert.equal((await m.fetch(API)).status, 401);
    assert.equal(srv.tokenCalls.length, 0);
  }
});

test("the token and revocation endpoints pass through untouched", async (t) => {
  const { srv, m } = setup(t);
  srv.tokenReply = () => json(401, { error: "invalid_client" });
  const r1 = await m.fetch(TOKEN + "?x=1", { method: "POST", body: "grant_type=client_credentials" });
  const r2 = await m.fetch(new Request(REVOKE, { method: "POST", body: "token=a" }));
  assert.equal(r1.status, 401, "the token endpoint's 401 is not retried");
  assert.equal(r2.status, 200);
  assert.deepEqual(srv.calls.map((c) => [c.url, c.auth, c.body]), [
    [TOKEN, null, "grant_type=client_credentials"],
    [REVOKE, null, "token=a"],
  ]);
  assert.equal(await m.getAccessToken(), "at0", "the manager's own state is unaffected");
});

test("a non-replayable stream body: the 401 is returned, the rejected token is dropped, the next call refreshes", async (t) => {
  const { srv, m } = setup(t);
  const body = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode("data")), c.close()) });
  const res = await m.fetch(API, { method: "POST", body, duplex: "half" });
  assert.equal(res.status, 401);
  assert.equal(srv.apiCalls.length, 1);
  assert.equal(srv.tokenCalls.length, 0, "no refresh for a request that cannot be replayed");
  const next = await m.fetch(API);
  assert.equal(next.status, 200);
  assert.equal(srv.tokenCalls.length, 1);
  assert.deepEqual(srv.apiCalls.map((c) => c.auth), ["Bearer at0", "Bearer at1"]);
});

test("the caller's headers are kept and Authorization is set", async (t) => {
  const { srv, m } = setup(t);
  srv.apiReply = () => json(200, {});
  await m.fetch(API, { headers: { Authorization: "Basic x", "X-Trace": "7" } });
  assert.equal(srv.apiCalls[0].auth, "Bearer at0");
  assert.equal(srv.apiCalls[0].headers.get("X-Trace"), "7");
});

test("the token goes only to the page's origin and apiOrigins: another site, or another path of tokend, gets no bearer", async (t) => {
  const { srv, m } = setup(t);
  const elsewhere = ["https://evil.example/steal", "https://api.test.evil.example/data", "http://api.test/data", "https://tokend.test/oauth/introspect"];
  for (const url of elsewhere) await m.fetch(url);
  const sent = srv.calls.filter((c) => elsewhere.includes(c.url));
  assert.equal(sent.length, elsewhere.length, "each went out, untouched");
  assert.deepEqual(sent.map((c) => c.auth), elsewhere.map(() => null), "none carried the token");
  assert.equal(m.sendsTokenTo(API), true);
  assert.equal(m.sendsTokenTo("https://api.test/other?x=1"), true, "any path of a listed origin");
  for (const url of ["https://evil.example/", "http://api.test/data", "https://api.test:8443/data", TOKEN, "not a url ::"]) {
    assert.equal(m.sendsTokenTo(url), false, url);
  }
});

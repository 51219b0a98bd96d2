import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager, jwtExpiry } from "../dist/index.js";
import { API, TOKEN, fakeServer, flush, jwt } from "./helpers.mjs";

const T0 = 1_700_000_000_000;

function setup(t, { random = () => 0, ...opts } = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random, events: null, crossTab: false, apiOrigins: [API], ...opts });
  t.after(() => m.close());
  return { srv, m };
}

/** Advances to just before `at` ms after T0, asserts no refresh, then to `at`, asserts one. */
async function assertRefreshAt(t, srv, at) {
  t.mock.timers.tick(at - 1 - (Date.now() - T0));
  await flush();
  assert.equal(srv.tokenCalls.length, 0, `no refresh before ${at} ms`);
  t.mock.timers.tick(1);
  await flush();
  assert.equal(srv.tokenCalls.length, 1, `one refresh at ${at} ms`);
}

test("refresh at 80 % of a 1 h lifetime (expires_in), no jitter", async (t) => {
  const { srv, m } = setup(t);
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  await assertRefreshAt(t, srv, 2_880_000);
  assert.equal(await m.getAccessToken(), "at1");
});

test("jitter moves the refresh earlier by at most 10 % of the lead", async (t) => {
  // lead = 720 s; random 0.75 → 54 s earlier; the bound (random → 1) is 72 s earlier.
  const { srv, m } = setup(t, { random: () => 0.75 });
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  await assertRefreshAt(t, srv, 2_880_000 - 54_000);
});

test("refreshLeadMs before expiry when that comes first", async (t) => {
  // 200 s lifetime: 80 % would be 160 s, 60 s before expiry is 140 s.
  const { srv, m } = setup(t);
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 200 });
  await assertRefreshAt(t, srv, 140_000);
});

test("a custom refreshLeadMs: 30 s before expiry of a 120 s token (80 % would be 96 s)", async (t) => {
  const { srv, m } = setup(t, { refreshLeadMs: 30_000 });
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 120 });
  await assertRefreshAt(t, srv, 90_000);
});

test("refreshLeadMs is capped at half the lifetime (no refresh loop for short tokens)", async (t) => {
  const { srv, m } = setup(t);
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 60 });
  await assertRefreshAt(t, srv, 30_000);
});

test("without expires_in the lifetime comes from the JWT exp (and iat)", async (t) => {
  const { srv, m } = setup(t);
  const at = jwt({ sub: "alice", iat: T0 / 1000, exp: T0 / 1000 + 1000 });
  m.start({ access_token: at, refresh_token: "rt0" });
  await assertRefreshAt(t, srv, 800_000);
});

test("JWT exp − iat without expires_in: the lifetime counts from receipt on this clock, whatever the server's clock says", async (t) => {
  for (const skew of [0, 3_600_000, -3_600_000]) {
    const { srv, m } = setup(t);
    const iat = (T0 + skew) / 1000;
    m.start({ access_token: jwt({ iat, exp: iat + 500 }), refresh_token: "rt0" });
    await assertRefreshAt(t, srv, 400_000);
    m.close();
    t.mock.timers.reset();
  }
});

test("JWT exp without iat nor expires_in: the lifetime is unknown, only a 401 refreshes (the server's exp is never read on this clock)", async (t) => {
  const { srv, m } = setup(t);
  const at = jwt({ exp: T0 / 1000 + 500 });
  m.start({ access_token: at, refresh_token: "rt0" });
  t.mock.timers.tick(10_000_000);
  await flush();
  assert.equal(srv.tokenCalls.length, 0);
  assert.equal(await m.getAccessToken(), at);
});

test("expires_in wins over the JWT exp", async (t) => {
  const { srv, m } = setup(t);
  m.start({ access_token: jwt({ exp: T0 / 1000 + 10_000 }), refresh_token: "rt0", expires_in: 100 });
  await assertRefreshAt(t, srv, 50_000);
});

test("getAccessToken serves the current token before the refresh time without a request", async (t) => {
  const { srv, m } = setup(t);
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  t.mock.timers.tick(2_000_000);
  assert.equal(await m.getAccessToken(), "at0");
  assert.equal(srv.tokenCalls.length, 0);
});

test("jwtExpiry decodes base64url payloads and rejects garbage", () => {
  assert.equal(jwtExpiry(jwt({ exp: 42, name: "ü?>~" })), 42_000);
  assert.equal(jwtExpiry("not-a-jwt"), undefined);
  assert.equal(jwtExpiry("a.!!!.c"), undefined);
  assert.equal(jwtExpiry(jwt({ exp: "soon" })), undefined);
});

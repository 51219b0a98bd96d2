import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager, ReauthRequiredError, TokenRefreshError, BACKOFF_CAP_MS, UNANSWERED_CAP_MS } from "../dist/index.js";
import { API, TOKEN, fakeServer, flush, json } from "./helpers.mjs";

const T0 = 1_700_000_000_000;

function setup(t, opts = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const r = { value: 0 };
  const reauth = { count: 0 };
  const m = new TokenManager({
    tokenEndpoint: TOKEN,
    clientId: "spa",
    apiOrigins: [API],
    fetch: srv.fetch,
    random: () => r.value,
    events: null,
    crossTab: false,
    onReauthRequired: () => reauth.count++,
    ...opts,
  });
  t.after(() => m.close());
  return { srv, m, r, reauth };
}

for (const [status, error] of [
  [400, "invalid_grant"],
  [401, "invalid_client"],
]) {
  test(`terminal: ${status} ${error} → onReauthRequired once, ReauthRequiredError, no further requests`, async (t) => {
    const { srv, m, reauth } = setup(t);
    srv.tokenReply = () => json(status, { error });
    m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
    t.mock.timers.setTime(T0 + 3_600_000); // expired
    const results = await Promise.allSettled([m.getAccessToken(), m.getAccessToken(), m.refresh(), m.fetch(API)]);
    for (const r of results) assert.ok(r.status === "rejected" && r.reason instanceof ReauthRequiredError, String(r.reason));
    await assert.rejects(m.getAccessToken(), ReauthRequiredError);
    await assert.rejects(m.refresh("at0"), ReauthRequiredError);
    t.mock.timers.tick(24 * 3_600_000);
    await flush();
    assert.equal(reauth.count, 1);
    assert.equal(srv.tokenCalls.length, 1);
    assert.equal(srv.apiCalls.length, 0);
    // A new login revives the manager.
    srv.tokenReply = null;
    m.start({ access_token: "at9", refresh_token: "rt9", expires_in: 3600 });
    assert.equal(await m.getAccessToken(), "at9");
  });
}

test("no refresh token outside cookie mode is terminal without a request", async (t) => {
  const { srv, m, reauth } = setup(t);
  await assert.rejects(m.getAccessToken(), ReauthRequiredError);
  assert.equal(srv.calls.length, 0);
  assert.equal(reauth.count, 1);
});

test("transient: 5xx and network errors back off exponentially with full jitter, capped (30 s answered, 5 s unanswered); the valid token keeps being served", async (t) => {
  const { srv, m, r } = setup(t);
  let failures = 0;
  srv.tokenReply = () => {
    failures++;
    if (failures === 8) return srv.issue();
    if (failures % 2) return json(503, { error: "temporarily_unavailable" });
    throw new TypeError("fetch failed");
  };
  r.value = 0.5; // jitter: half of each ceiling; the schedule moves 36 s earlier
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  t.mock.timers.tick(2_844_000);
  await flush();
  assert.equal(srv.tokenCalls.length, 1);
  // ceilings 1, 2, 4, 8, 16, 32, 64 s, each capped: at 30 s after the
  // server's 503 (odd attempts), at 5 s after a network error (even ones).
  const ceilings = [1000, 2000, 4000, UNANSWERED_CAP_MS, 16000, UNANSWERED_CAP_MS, BACKOFF_CAP_MS];
  for (const [i, ceiling] of ceilings.entries()) {
    t.mock.timers.tick(ceiling / 2 - 1);
    await flush();
    assert.equal(srv.tokenCalls.length, i + 1, `no retry before ${ceiling / 2} ms (attempt ${i + 2})`);
    assert.equal(await m.getAccessToken(), "at0", "the still-valid token is served");
    await assert.rejects(m.refresh(), TokenRefreshError, "no request outside the backoff schedule");
    t.mock.timers.tick(1);
    await flush();
    assert.equal(srv.tokenCalls.length, i + 2, `retry at ${ceiling / 2} ms (attempt ${i + 2})`);
  }
  assert.equal(await m.getAccessToken(), "at1");
  // The failure count was reset: the next refresh is on the normal schedule.
  assert.equal(srv.tokenCalls.length, 8);
});

test("full jitter bounds: random→0 retries at once, random→1 just under the ceiling", async (t) => {
  const { srv, m, r } = setup(t);
  srv.tokenReply = () => json(500, {});
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  t.mock.timers.tick(2_880_000);
  await flush();
  assert.equal(srv.tokenCalls.length, 1);
  r.value = 0.999;
  // The first backoff timer was drawn with random 0 → 0 ms.
  t.mock.timers.tick(0);
  await flush();
  assert.equal(srv.tokenCalls.length, 2);
  // Second failure: ceiling 2 s, delay 1998 ms.
  t.mock.timers.tick(1997);
  await flush();
  assert.equal(srv.tokenCalls.length, 2);
  t.mock.timers.tick(1);
  await flush();
  assert.equal(srv.tokenCalls.length, 3);
});

test("an expired token is never served while refreshes fail", async (t) => {
  const { srv, m } = setup(t);
  srv.tokenReply = () => json(503, {});
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  t.mock.timers.setTime(T0 + 3_600_000);
  await assert.rejects(m.getAccessToken(), TokenRefreshError);
  await assert.rejects(m.fetch(API), TokenRefreshError);
  assert.equal(srv.apiCalls.length, 0);
});

for (const type of ["visibilitychange", "pageshow", "online"]) {
  test(`wake-up: after a 2 h clock jump and '${type}', the next fetch does not carry the expired token`, async (t) => {
    const events = new EventTarget();
    const { srv, m } = setup(t, { events });
    m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
    t.mock.timers.setTime(T0 + 2 * 3_600_000); // the laptop slept; no timer ran
    events.dispatchEvent(new Event(type));
    await flush();
    assert.equal(srv.tokenCalls.length, 1, "the event alone starts the refresh");
    const res = await m.fetch(API);
    assert.equal(res.status, 200);
    assert.deepEqual(srv.apiCalls.map((c) => c.auth), ["Bearer at1"]);
    assert.equal(srv.tokenCalls.length, 1);
  });
}

test("wake-up without an event: the next fetch still refreshes first", async (t) => {
  const { srv, m } = setup(t);
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  t.mock.timers.setTime(T0 + 2 * 3_600_000);
  assert.equal((await m.fetch(API)).status, 200);
  assert.deepEqual(srv.apiCalls.map((c) => c.auth), ["Bearer at1"]);
});

test("'online' cuts a pending backoff short", async (t) => {
  const events = new EventTarget();
  const { srv, m, r } = setup(t, { events });
  let fail = true;
  srv.tokenReply = () => (fail ? json(503, {}) : srv.issue());
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  r.value = 0.5; // the backoff after the first failure: 500 ms
  t.mock.timers.tick(2_880_000);
  await flush();
  assert.equal(srv.tokenCalls.length, 1);
  fail = false;
  events.dispatchEvent(new Event("online"));
  await flush();
  assert.equal(srv.tokenCalls.length, 2);
  assert.equal(await m.getAccessToken(), "at1");
});

// Retry-After (RFC 9110 §10.2.3) on the token endpoint: the manager waits
// at least that long, capped at BACKOFF_CAP_MS, before its next attempt.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager, OAuthError, BACKOFF_CAP_MS, tokenSocket } from "../dist/index.js";
import { retryAfterMs } from "../dist/errors.js";
import { API, TOKEN, channelHub, fakeLocks, fakeServer, fakeWebSocket, flush, json } from "./helpers.mjs";

const T0 = 1_700_000_000_000;
/** When a 3600 s token is refreshed with random 0: 80 % of its lifetime. */
const REFRESH_AT = 2_880_000;
const LOGIN = { access_token: "at0", refresh_token: "rt0", expires_in: 3600 };

function setup(t, opts = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const r = { value: 0 };
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", apiOrigins: [API], fetch: srv.fetch, random: () => r.value, events: null, crossTab: false, ...opts });
  t.after(() => m.close());
  return { srv, m, r };
}

/** Advances the fake clock by ms and lets the manager's promises run. */
async function tick(t, ms) {
  t.mock.timers.tick(ms);
  await flush();
}

const date = (offsetMs) => new Date(T0 + REFRESH_AT + offsetMs).toUTCString();

// [name, status, Retry-After (null: absent), the wait before the retry]. The
// jitter is random 0.5 of a 1 s ceiling: 500 ms, the wait without a usable Retry-After.
const cases = [
  ["seconds, 503", 503, "5", 5_000],
  ["seconds, 429", 429, "5", 5_000],
  ["seconds, 0", 503, "0", 500],
  ["HTTP-date 7 s ahead", 503, date(7_000), 7_000],
  ["HTTP-date 60 s behind", 503, date(-60_000), 500],
  ["absent", 503, null, 500],
  ["garbage", 503, "soon", 500],
  ["negative", 503, "-5", 500],
  ["fractional", 503, "1.5", 500],
  ["seconds above the cap", 503, "120", BACKOFF_CAP_MS],
  ["HTTP-date above the cap", 429, date(3_600_000), BACKOFF_CAP_MS],
];

for (const [name, status, header, wait] of cases) {
  test(`Retry-After ${name} (${status}): the retry comes after exactly ${wait} ms, none before`, async (t) => {
    const { srv, m, r } = setup(t);
    srv.tokenReply = () => (srv.tokenCalls.length === 1 ? json(status, { error: "temporarily_unavailable" }, header === null ? {} : { "Retry-After": header }) : srv.issue());
    m.start(LOGIN);
    r.value = 0.5;
    await tick(t, REFRESH_AT);
    assert.equal(srv.tokenCalls.length, 1);
    await tick(t, wait - 1);
    assert.equal(srv.tokenCalls.length, 1, `no retry before ${wait} ms`);
    const err = await m.refresh().catch((e) => e);
    assert.ok(err instanceof OAuthError, String(err));
    assert.equal(err.status, status);
    assert.equal(srv.tokenCalls.length, 1, "refresh() during the wait sends nothing");
    await tick(t, 1);
    assert.equal(srv.tokenCalls.length, 2, `retry at ${wait} ms`);
    assert.equal(await m.getAccessToken(), "at1");
  });
}

test("Retry-After is a floor under the backoff: a longer jittered backoff is kept, a shorter one lengthened", async (t) => {
  const { srv, m, r } = setup(t);
  srv.tokenReply = () => json(503, { error: "temporarily_unavailable" }, { "Retry-After": "3" });
  m.start(LOGIN);
  await tick(t, REFRESH_AT);
  // Ceilings 1, 2, 4, 8 s, random 0.999: 999, 1998, 3996, 7992 ms; Retry-After 3 s.
  r.value = 0.999;
  const waits = [3_000, 3_000, 3_996, 7_992];
  for (const [i, wait] of waits.entries()) {
    assert.equal(srv.tokenCalls.length, i + 1);
    await tick(t, wait - 1);
    assert.equal(srv.tokenCalls.length, i + 1, `attempt ${i + 2} not before ${wait} ms`);
    await tick(t, 1);
    assert.equal(srv.tokenCalls.length, i + 2, `attempt ${i + 2} at ${wait} ms`);
  }
});

test("'online' does not cut a Retry-After wait short (it does a plain backoff)", async (t) => {
  const events = new EventTarget();
  const { srv, m } = setup(t, { events });
  srv.tokenReply = () => (srv.tokenCalls.length === 1 ? json(503, {}, { "Retry-After": "10" }) : srv.issue());
  m.start(LOGIN);
  await tick(t, REFRESH_AT);
  await tick(t, 4_000);
  events.dispatchEvent(new Event("online"));
  await flush();
  assert.equal(srv.tokenCalls.length, 1, "the server asked for 10 s");
  await tick(t, 5_999);
  assert.equal(srv.tokenCalls.length, 1);
  await tick(t, 1);
  assert.equal(srv.tokenCalls.length, 2);
});

test("a newer token from another tab during a Retry-After wait cancels the wait and the failure state", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  srv.tokenReply = () => (srv.tokenCalls.length === 1 ? json(503, { error: "temporarily_unavailable" }, { "Retry-After": "20" }) : srv.issue());
  const locks = fakeLocks();
  const channel = channelHub();
  const tab = () => new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, locks, channel });
  const a = tab();
  const b = tab();
  t.after(() => (a.close(), b.close()));
  a.start(LOGIN);
  b.start(LOGIN);
  await assert.rejects(a.refresh(), (e) => e instanceof OAuthError && e.retryAfterMs === 20_000);
  await tick(t, 5_000);
  assert.equal(await b.refresh("at0"), "at1", "b refreshes once the store is back");
  await flush();
  assert.equal(await a.getAccessToken(), "at1", "a adopted b's broadcast");
  await tick(t, 60_000);
  assert.equal(srv.tokenCalls.length, 2, "a's pending retry did not fire");
  assert.equal(await a.refresh(), "at2", "a's refresh() is not refused with the outage's error");
  assert.equal(srv.tokenCalls.length, 3);
});

test("tokenSocket: token closes during a Retry-After wait reconnect with the valid token, never reach the token endpoint", async (t) => {
  const { srv, m } = setup(t);
  srv.tokenReply = () => (srv.tokenCalls.length === 1 ? json(503, {}, { "Retry-After": "10" }) : srv.issue());
  m.start(LOGIN);
  const { WS, sockets } = fakeWebSocket();
  const s = tokenSocket("wss://api.test/ws", m, { WebSocket: WS, random: () => 0 });
  t.after(() => s.close());
  await flush();
  sockets[0].open();
  sockets[0].serverClose(4001, "invalid_token"); // refresh(at0): 503, Retry-After 10
  await flush();
  assert.equal(srv.tokenCalls.length, 1);
  // Reconnects back off (125, 250, 500, … ms with random 0) and each is closed again for the token.
  let elapsed = 0;
  while (elapsed < 9_000) {
    await tick(t, 1_000);
    elapsed += 1_000;
    const ws = sockets.at(-1);
    if (ws.readyState === 0) {
      ws.open();
      ws.serverClose(4001, "invalid_token");
      await flush();
    }
  }
  assert.ok(sockets.length >= 4, `the socket kept reconnecting (${sockets.length})`);
  assert.ok(sockets.every((ws) => ws.protocols[1] === "tokend.bearer.at0"));
  assert.equal(srv.tokenCalls.length, 1, "no token request during the wait");
  await tick(t, 1_000);
  assert.equal(srv.tokenCalls.length, 2, "the manager's retry at 10 s");
});

test("retryAfterMs parses delay-seconds and the three HTTP-date forms, nothing else", () => {
  const now = Date.parse("Sun, 06 Nov 1994 08:49:30 GMT");
  const eq = (v, want) => assert.equal(retryAfterMs(v, now), want, JSON.stringify(v));
  eq("5", 5_000);
  eq("0", 0);
  eq("007", 7_000);
  eq(" 5 ", 5_000);
  eq("Sun, 06 Nov 1994 08:49:37 GMT", 7_000); // IMF-fixdate
  eq("Sunday, 06-Nov-94 08:49:37 GMT", 7_000); // RFC 850
  eq("Sun Nov  6 08:49:37 1994", 7_000); // asctime, GMT
  eq("Sun, 06 Nov 1994 08:49:00 GMT", 0); // past
  for (const v of [null, "", "-5", "1.5", "5s", "1e3", "soon", "Sun, garbage", "2026-12-06T14:00:00Z", "Infinity", "0x10"]) eq(v, undefined);
});

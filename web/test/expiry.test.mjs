// A token is never handed out (getAccessToken, refresh, fetch) at or past
// its expiry, measured from when its refresh request was sent plus
// expires_in, whatever the answer's latency and the settings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OAuthError, TokenManager, tokenSocket } from "../dist/index.js";
import { API, TOKEN, deferred, fakeServer, fakeWebSocket, flush, json } from "./helpers.mjs";

const T0 = 1_700_000_000_000;

function setup(t, opts = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, crossTab: false, apiOrigins: [API], ...opts });
  t.after(() => m.close());
  return { srv, m };
}

/** A token answer with expires_in 5 that arrives `ms` after the request. */
function lateAnswer(srv, ms) {
  return () =>
    new Promise((resolve) => {
      srv.issued++;
      const n = srv.issued;
      setTimeout(() => resolve(json(200, { access_token: "at" + n, refresh_token: "rt" + n, expires_in: 5 })), ms);
    });
}

/** Moves the fake clock to `at` ms after T0 and lets promises run. */
async function at(t, ms) {
  await flush(); // timers set by pending callbacks first
  t.mock.timers.tick(T0 + ms - Date.now());
  await flush();
}

/** The value p has settled with after promises ran, or "pending". */
async function settled(p) {
  let v = "pending";
  p.then((x) => (v = x), (e) => (v = e));
  await flush();
  return v;
}

test("an answer 700 ms late with expires_in 5: the token expires 5 s after the request was sent, never handed out from then on", async (t) => {
  const { srv, m } = setup(t);
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  srv.tokenReply = lateAnswer(srv, 700);
  const first = m.refresh(); // sent at T0
  await at(t, 700);
  assert.equal(await first, "at1");
  const next = deferred();
  srv.tokenReply = () => next.promise; // the next refresh hangs until released
  // Lifetime 5 s from the send: lead max(20 %, min(60 s, 50 %)) = 2.5 s → refresh at T0+2.5 s.
  await at(t, 2_499);
  assert.equal(srv.tokenCalls.length, 1);
  await at(t, 2_500);
  assert.equal(srv.tokenCalls.length, 2, "the background refresh is sent at send+2.5 s");
  // Up to the safety margin (10 % of the lifetime, at most 5 s) before send+5 s, the token is handed out.
  await at(t, 4_499);
  assert.equal(await settled(m.getAccessToken()), "at1");
  await at(t, 4_500);
  const waiting = [m.getAccessToken()];
  await at(t, 4_999);
  waiting.push(m.getAccessToken(), m.refresh("at1"));
  await at(t, 5_000);
  waiting.push(m.getAccessToken(), m.refresh("at1"));
  const call = m.fetch(API);
  await at(t, 5_100);
  waiting.push(m.getAccessToken());
  for (const p of waiting) assert.equal(await settled(p), "pending", "no token until the refresh in flight answers");
  assert.equal(srv.apiCalls.length, 0, "the fetch wrapper waits too");
  assert.equal(srv.tokenCalls.length, 2, "they all wait for the refresh in flight");
  srv.issued++;
  next.resolve(json(200, { access_token: "at2", refresh_token: "rt2", expires_in: 5 }));
  assert.deepEqual(await Promise.all(waiting), ["at2", "at2", "at2", "at2", "at2", "at2"]);
  assert.equal((await call).status, 200);
  assert.deepEqual(srv.apiCalls.map((c) => c.auth), ["Bearer at2"]);
});

test("tokenSocket: a dial at send + 5 s waits for the refresh in flight and offers the new token", async (t) => {
  const { srv, m } = setup(t);
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  srv.tokenReply = lateAnswer(srv, 700);
  void m.refresh(); // sent at T0, answered at T0+700 ms: at1, expires_in 5
  await at(t, 700);
  const next = deferred();
  srv.tokenReply = () => next.promise;
  await at(t, 5_000);
  const { WS, sockets } = fakeWebSocket();
  const s = tokenSocket("wss://api.test/ws", m, { WebSocket: WS, random: () => 0 });
  t.after(() => s.close());
  await flush();
  assert.equal(sockets.length, 0, "no socket offers at1 at send+5 s");
  srv.issued++;
  next.resolve(json(200, { access_token: "at2", refresh_token: "rt2", expires_in: 5 }));
  await flush();
  assert.deepEqual(sockets.map((w) => w.protocols), [["tokend", "tokend.bearer.at2"]]);
});

test("an answer that arrives after its token's margin is not handed out: refresh rejects, the rotated refresh token is kept and used next", async (t) => {
  const { srv, m } = setup(t, { random: () => 0.5 });
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
  srv.tokenReply = lateAnswer(srv, 4_600); // 5 s from the send, margin 0.5 s: too late at 4.6 s
  const p = m.refresh();
  await at(t, 4_600);
  const e = await settled(p);
  assert.ok(e instanceof OAuthError, String(e));
  assert.equal(e.message, "tokend: token expired in transit");
  assert.ok(await settled(m.getAccessToken()) instanceof OAuthError, "getAccessToken rejects while the retry waits");
  assert.equal(srv.tokenCalls.length, 1);
  srv.tokenReply = null; // the retry answers at once: at2, expires_in 3600
  await at(t, 4_600 + 500); // backoff: random 0.5 × 1 s
  assert.equal(srv.tokenCalls.length, 2);
  assert.equal(srv.tokenCalls[1].body, "grant_type=refresh_token&refresh_token=rt1&client_id=spa");
  assert.equal(await m.getAccessToken(), "at2");
});

test("sweep: no token is handed out at or past send + expires_in, whatever the lead, the jitter and the answer's latency", async (t) => {
  const leads = [undefined, -1, 0, 1, 1_000, 4_000, 60_000, 1e9];
  const delays = [0, 700, 2_500, 4_000, 4_500, 5_000, 6_000];
  for (const refreshLeadMs of leads) {
    for (const delay of delays) {
      for (const r of [0, 0.999]) {
        await t.test(`lead ${refreshLeadMs} delay ${delay} random ${r}`, async (t) => {
          const { srv, m } = setup(t, { refreshLeadMs, random: () => r });
          const deadline = new Map([["at0", T0 + 5_000]]);
          srv.tokenReply = () => {
            const sent = Date.now();
            const n = ++srv.issued;
            deadline.set("at" + n, sent + 5_000);
            return new Promise((resolve) => setTimeout(() => resolve(json(200, { access_token: "at" + n, refresh_token: "rt" + n, expires_in: 5 })), delay));
          };
          const bad = [];
          let fetched = 0; // fetched tokens handed out (at0 is start()'s)
          const check = (tok, how) => {
            if (tok !== "at0") fetched++;
            if (!(Date.now() < deadline.get(tok))) bad.push(`${how} ${tok} at +${Date.now() - T0} ms, expired at +${deadline.get(tok) - T0} ms`);
          };
          srv.apiReply = (c) => (check(c.auth.slice(7), "fetch"), json(200, {}));
          m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 5 });
          for (let ms = 0; ms <= 12_000; ms += 100) {
            await at(t, ms);
            m.getAccessToken().then((tok) => check(tok, "getAccessToken"), () => {});
            m.refresh("at0").then((tok) => check(tok, "refresh"), () => {});
            m.fetch(API).catch(() => {});
          }
          await flush();
          assert.deepEqual(bad, []);
          if (delay < 4_500) assert.ok(fetched > 0, "fetched tokens were handed out");
          else assert.equal(fetched, 0, "every answer came too late for its own token");
        });
      }
    }
  }
});

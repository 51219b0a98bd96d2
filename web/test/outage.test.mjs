// After an outage of the token endpoint, a login is rotated at most once
// however many tabs were retrying, and every tab notices the recovery
// within the unanswered-failure cap (UNANSWERED_CAP_MS), not its backoff.
import { test } from "node:test";
import assert from "node:assert/strict";
import { OAuthError, TokenManager, UNANSWERED_CAP_MS } from "../dist/index.js";
import { API, TOKEN, channelHub, fakeLocks, fakeServer, flush, json } from "./helpers.mjs";

const T0 = 1_700_000_000_000;
const LOGIN = { access_token: "at0", refresh_token: "rt0", expires_in: 60 };

/** A deterministic uniform [0, 1) per tab (mulberry32). */
function rng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** What an outage looks like to a page: the fetch fails (refused, or a gateway's 502 without CORS), or a gateway's bare 502. */
const OUTAGES = {
  "network error": () => {
    throw new TypeError("Failed to fetch");
  },
  "gateway 502": () => new Response("<html>Bad Gateway</html>", { status: 502 }),
  "gateway 503 without Retry-After": () => new Response("no healthy upstream", { status: 503 }),
};

for (const [kind, fail] of Object.entries(OUTAGES)) {
  for (const n of [1, 2, 8]) {
    test(`${kind}, ${n} tab(s) with an expired token: after 5 s down, each tab has the new token within ${UNANSWERED_CAP_MS} ms of recovery, one rotation`, async (t) => {
      t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
      const srv = fakeServer();
      let down = true;
      const attempts = [];
      srv.tokenReply = (call) => {
        attempts.push({ at: Date.now() - T0, rt: new URLSearchParams(call.body).get("refresh_token"), down });
        return down ? fail() : srv.issue();
      };
      const locks = fakeLocks();
      const channel = channelHub();
      const tabs = Array.from({ length: n }, (_, i) => new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: rng(i + 1), events: null, apiOrigins: [API], locks, channel }));
      t.after(() => tabs.forEach((m) => m.close()));
      tabs.forEach((m) => m.start(LOGIN));
      t.mock.timers.tick(61_000); // expired everywhere
      await Promise.all(tabs.map((m) => m.getAccessToken().catch((e) => e)));
      const step = async (ms) => {
        for (let i = 0; i < ms; i += 100) {
          t.mock.timers.tick(100);
          await flush(6);
        }
      };
      await step(5_000);
      assert.ok(attempts.length >= n, `every tab tried while down: ${attempts.length}`);
      assert.ok(attempts.every((a) => a.down && a.rt === "rt0"));
      down = false;
      const back = Date.now();
      const recovered = new Array(n).fill(undefined);
      for (let waited = 0; recovered.includes(undefined) && waited <= UNANSWERED_CAP_MS + 1_000; waited += 100) {
        await step(100);
        for (const [i, m] of tabs.entries()) {
          if (recovered[i] === undefined && (await m.getAccessToken().catch(() => "")) === "at1") recovered[i] = Date.now() - back;
        }
      }
      assert.ok(recovered.every((ms) => ms !== undefined && ms <= UNANSWERED_CAP_MS), `each tab recovered within ${UNANSWERED_CAP_MS} ms: ${recovered}`);
      await step(60_000 * 0.5); // well before at1's own refresh time (48 s)
      const after = attempts.filter((a) => !a.down);
      assert.deepEqual(after.map((a) => a.rt), ["rt0"], "one rotation after recovery, with the login's refresh token");
      assert.equal(srv.issued, 1);
    });
  }
}

for (const failures of [1, 2, 8]) {
  test(`a tab left alone, the server back right after its attempt ${failures}: getAccessToken() stops rejecting with the outage's error within the cap`, async (t) => {
    t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
    const srv = fakeServer();
    let back = 0;
    srv.tokenReply = () => {
      if (back) return srv.issue();
      if (srv.tokenCalls.length === failures) back = Date.now(); // the server returns as this attempt fails
      throw new TypeError("Failed to fetch");
    };
    // random → 1: every backoff is its full ceiling (1, 2, 4 s, then the cap)
    const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0.999, events: null, crossTab: false });
    t.after(() => m.close());
    m.start(LOGIN);
    t.mock.timers.tick(61_000);
    await assert.rejects(m.getAccessToken(), OAuthError);
    let ok = "";
    for (let i = 0; !ok && i < 1_000; i++) {
      t.mock.timers.tick(100);
      await flush(4);
      ok = await m.getAccessToken().catch(() => "");
    }
    assert.equal(ok, "at1");
    const waited = Date.now() - back;
    assert.ok(waited <= Math.min(UNANSWERED_CAP_MS, 1000 * 2 ** (failures - 1)), `getAccessToken() rejected for ${waited} ms after recovery`);
  });
}

test("the server's own 503 with Retry-After keeps the full backoff: the cap for unanswered failures does not apply", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  srv.tokenReply = () => json(503, { error: "temporarily_unavailable" }, { "Retry-After": "20" });
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, crossTab: false });
  t.after(() => m.close());
  m.start(LOGIN);
  t.mock.timers.tick(61_000);
  await assert.rejects(m.getAccessToken(), (e) => e instanceof OAuthError && e.status === 503);
  t.mock.timers.tick(19_999);
  await flush();
  assert.equal(srv.tokenCalls.length, 1, "no retry before Retry-After");
  t.mock.timers.tick(1);
  await flush();
  assert.equal(srv.tokenCalls.length, 2);
});

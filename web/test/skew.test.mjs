// A device clock off by any amount, either way, never changes how often
// tabs refresh: lifetimes are measured on this device's clock only (send
// time + expires_in), and travel between tabs with the token.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager } from "../dist/index.js";
import { API, TOKEN, channelHub, fakeLocks, fakeServer, fakeStorage, flush, json, jwt } from "./helpers.mjs";

const T0 = 1_700_000_000_000;
const TTL = 300; // seconds, as tokend's default access tokens

const MIN = 60_000;
const HOUR = 60 * MIN;

/** n tabs of one login on a device whose clock is `skew` ms ahead of the server's (negative: behind). */
function tabs(t, n, skew, storage = "memory") {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  srv.tokenReply = () => {
    srv.issued++;
    const iat = Math.floor((Date.now() - skew) / 1000);
    return json(200, { access_token: jwt({ iat, exp: iat + TTL, n: srv.issued }), refresh_token: "rt" + srv.issued, expires_in: TTL });
  };
  const locks = fakeLocks();
  const channel = channelHub();
  const storageArea = fakeStorage();
  const ms = Array.from({ length: n }, () => new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, events: null, apiOrigins: [API], locks, channel, storage, storageArea }));
  t.after(() => ms.forEach((m) => m.close()));
  const iat = Math.floor((T0 - skew) / 1000);
  const login = { access_token: jwt({ iat, exp: iat + TTL, n: 0 }), refresh_token: "rt0", expires_in: TTL };
  ms[0].start(login);
  for (const m of ms.slice(1)) m.start(login);
  return { srv, ms };
}

/** Moves the clock by ms in 1 s steps, letting every tab act. */
async function run(t, ms) {
  for (let done = 0; done < ms; done += 1000) {
    t.mock.timers.tick(Math.min(1000, ms - done));
    await flush(8);
  }
}

for (const skew of [0, HOUR, -HOUR, 20 * MIN, -20 * MIN, 299_000, 24 * HOUR]) {
  for (const storage of ["memory", "local"]) {
    test(`clock ${skew >= 0 ? "+" : ""}${skew / 1000} s off, ${storage} storage, 2 tabs: no refresh in the first 30 s, then one per token lifetime`, async (t) => {
      const { srv, ms } = tabs(t, 2, skew, storage);
      await run(t, 30_000);
      assert.equal(srv.tokenCalls.length, 0, "no refresh in the first 30 s");
      // A 300 s token is refreshed at its lead of 60 s before expiry (jitter aside): 5 lifetimes → 5 refreshes.
      await run(t, 5 * TTL * 1000 - 30_000);
      const calls = srv.tokenCalls.length;
      assert.ok(calls >= 5 && calls <= 6, `refreshes in 5 lifetimes: ${calls}`);
      const tokens = new Set(await Promise.all(ms.map((m) => m.getAccessToken())));
      assert.equal(tokens.size, 1, "both tabs hold the same token");
    });
  }
}

test("a tab adopting another's token takes its lifetime as measured there (issued_at), not from the JWT's iat", async (t) => {
  const { srv, ms } = tabs(t, 2, HOUR);
  await run(t, 240_000); // the first refresh (jitter ≤ 6 s)
  assert.equal(srv.tokenCalls.length, 1);
  const [a, b] = ms;
  assert.equal(await b.getAccessToken(), await a.getAccessToken());
  await run(t, 200_000);
  assert.equal(srv.tokenCalls.length, 1, "b did not refresh what it adopted at once");
});

// A tab that missed broadcasts (frozen, throttled, discarded and restored)
// catches up with the login's current tokens before it spends a refresh
// token: it never presents one another tab has already rotated.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager } from "../dist/index.js";
import { API, TOKEN, channelHub, fakeLocks, fakeServer, fakeStorage, flush } from "./helpers.mjs";

// The login lives longer than the tokens its refreshes bring (3600 s): a
// tab must not take the newer tokens for older ones by their expiry.
const LOGIN = { access_token: "at0", refresh_token: "rt0", expires_in: 7200 };

/** Tabs a and b of one login; b's channel can be frozen (it then misses every message). */
function tabs(t, storage, login = LOGIN) {
  const srv = fakeServer();
  const locks = fakeLocks();
  const hub = channelHub();
  const storageArea = fakeStorage();
  const reauth = { a: 0, b: 0 };
  let bChannel;
  const make = (name, channel) =>
    new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, apiOrigins: [API], locks, channel, storage, storageArea, onReauthRequired: () => reauth[name]++ });
  const a = make("a", hub);
  const b = make("b", (n) => (bChannel = hub(n)));
  t.after(() => (a.close(), b.close()));
  a.start(login);
  b.start(login);
  return { srv, a, b, reauth, freeze: (on) => (bChannel.frozen = on) };
}

/** The refresh tokens the server was sent, in order. */
const spent = (srv) => srv.tokenCalls.map((c) => new URLSearchParams(c.body).get("refresh_token"));

for (const storage of ["memory", "session", "local"]) {
  for (const missed of [1, 2, 5]) {
    test(`${storage} storage: a tab frozen across ${missed} rotation(s) wakes and refreshes with the current tokens, never a spent refresh token`, async (t) => {
      const { srv, a, b, reauth, freeze } = tabs(t, storage);
      await flush();
      freeze(true);
      for (let i = 1; i <= missed; i++) assert.equal(await a.refresh(), "at" + i);
      await flush();
      freeze(false);
      // b wakes with at0 and wants a refresh (its timer fired, or the API refused at0).
      assert.equal(await b.refresh("at0"), "at" + missed, "b adopted a's current token without a request");
      assert.deepEqual(spent(srv), Array.from({ length: missed }, (_, i) => "rt" + i), "each refresh token spent once, by a");
      // Its next refresh spends the current refresh token, and a follows.
      assert.equal(await b.refresh(), "at" + (missed + 1));
      assert.equal(spent(srv).at(-1), "rt" + missed);
      await flush();
      assert.equal(await a.getAccessToken(), "at" + (missed + 1));
      assert.deepEqual(reauth, { a: 0, b: 0 });
      // And the API call b makes after waking carries the current token.
      assert.equal((await b.fetch(API)).status, 200);
    });
  }
}

test("a frozen tab whose own timer fires first on waking still adopts before spending", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_700_000_000_000 });
  // A login as long as its refreshes: b's timer for at0 and a's for at2 fire together, b's first.
  const { srv, a, b, freeze } = tabs(t, "memory", { ...LOGIN, expires_in: 3600 });
  await flush();
  freeze(true);
  await a.refresh();
  await a.refresh();
  await flush();
  freeze(false);
  // Past both tabs' refresh time (80 % of 1 h): a's and b's timers fire; b holds at0.
  t.mock.timers.tick(2_880_000);
  await flush(10);
  assert.deepEqual(spent(srv), ["rt0", "rt1", "rt2"], "one scheduled refresh, with the current refresh token");
  assert.equal(await b.getAccessToken(), "at3");
  assert.equal(await a.getAccessToken(), "at3");
});

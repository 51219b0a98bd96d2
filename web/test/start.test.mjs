// start(): tokens without a refresh token outside cookie mode are refused
// at once with MissingRefreshTokenError, instead of a login that ends in
// onReauthRequired when the access token expires.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager, MissingRefreshTokenError, ReauthRequiredError } from "../dist/index.js";
import { API, TOKEN, channelHub, fakeServer, fakeStorage, flush } from "./helpers.mjs";

function manager(t, srv, opts = {}) {
  let reauth = 0;
  const m = new TokenManager({
    tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, apiOrigins: [API],
    onReauthRequired: () => reauth++, ...opts,
  });
  t.after(() => m.close());
  return { m, reauth: () => reauth };
}

for (const [name, tokens] of [
  ["no refresh_token", { access_token: "at1", expires_in: 3600, token_type: "Bearer" }],
  ["an empty refresh_token", { access_token: "at1", refresh_token: "", expires_in: 3600 }],
]) {
  for (const storage of ["memory", "session", "local"]) {
    test(`start() given ${name} (storage ${storage}) throws MissingRefreshTokenError and changes nothing`, async (t) => {
      const srv = fakeServer();
      const storageArea = fakeStorage();
      const channel = channelHub();
      const other = manager(t, srv, { storage, storageArea, channel, locks: null }).m;
      other.start(); // another tab, listening
      const seen = [];
      other.onToken((tok) => seen.push(tok));
      const { m, reauth } = manager(t, srv, { storage, storageArea, channel, locks: null });
      m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 3600 });
      await flush();
      seen.length = 0;
      const stored = storageArea.getItem("tokend:spa");

      assert.throws(() => m.start(tokens), (e) => {
        assert.ok(e instanceof MissingRefreshTokenError && !(e instanceof ReauthRequiredError));
        assert.equal(e.name, "MissingRefreshTokenError");
        assert.match(e.message, /refresh_token/);
        return true;
      });
      await flush();
      assert.equal(await m.getAccessToken(), "at0", "the login before stays");
      assert.equal(storageArea.getItem("tokend:spa"), stored, "storage untouched");
      assert.deepEqual(seen, [], "nothing broadcast");
      assert.equal(reauth(), 0);
      assert.equal(srv.calls.length, 0);
      // The login before still refreshes with its own refresh token.
      await m.refresh();
      assert.deepEqual(srv.tokenCalls.map((c) => c.body), ["grant_type=refresh_token&refresh_token=rt0&client_id=spa"]);
    });
  }
}

test("start() on a new manager given no refresh_token throws before it starts anything", async (t) => {
  const srv = fakeServer();
  const { m, reauth } = manager(t, srv, { crossTab: false });
  assert.throws(() => m.start({ access_token: "at1", expires_in: 3600 }), MissingRefreshTokenError);
  // Nothing was adopted: the app learns of it from the throw, not from a
  // later onReauthRequired.
  assert.equal(reauth(), 0);
  m.start({ access_token: "at2", refresh_token: "rt2", expires_in: 3600 });
  assert.equal(await m.getAccessToken(), "at2");
});

test("cookie mode needs no refresh_token: start() takes an access token alone, and start() with none", async (t) => {
  const srv = fakeServer();
  const { m } = manager(t, srv, { cookie: true, crossTab: false });
  m.start({ access_token: "at1", expires_in: 3600 });
  assert.equal(await m.getAccessToken(), "at1");
  const { m: bare } = manager(t, srv, { crossTab: false });
  bare.start(); // no tokens: nothing to refuse
});

import { test } from "node:test";
import assert from "node:assert/strict";
import { OAuthError, TokenManager, ReauthRequiredError } from "../dist/index.js";
import { API, REVOKE, TOKEN, channelHub, deferred, fakeLocks, fakeServer, fakeStorage, flush } from "./helpers.mjs";

function manager(t, srv, opts = {}) {
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, apiOrigins: [API], ...opts });
  t.after(() => m.close());
  return m;
}

const LOGIN = { access_token: "at0", refresh_token: "rt0", expires_in: 3600 };

/** A fake server whose token endpoint answers once gate is resolved. */
function heldServer(gate) {
  const srv = fakeServer();
  srv.tokenReply = async () => (await gate.promise, srv.issue());
  return srv;
}

/** Two tabs, a and b, logged in with LOGIN, sharing a fake lock manager and channel. */
function twoTabs(t, srv = fakeServer()) {
  const locks = fakeLocks();
  const channel = channelHub();
  const a = manager(t, srv, { locks, channel });
  const b = manager(t, srv, { locks, channel });
  a.start(LOGIN);
  b.start(LOGIN);
  return { srv, locks, channel, a, b };
}

test("two tabs wanting a refresh: 1 token request, the other adopts the broadcast tokens", async (t) => {
  const gate = deferred();
  const { srv, locks, channel, a, b } = twoTabs(t, heldServer(gate));
  const pa = a.refresh("at0");
  const pb = b.refresh("at0");
  await flush();
  assert.equal(locks.requests, 2, "both asked for the lock");
  assert.equal(srv.tokenCalls.length, 1);
  gate.resolve();
  assert.deepEqual(await Promise.all([pa, pb]), ["at1", "at1"]);
  assert.equal(srv.tokenCalls.length, 1);
  assert.deepEqual(channel.posted.map((p) => [p.name, p.data.type, p.data.access_token]).slice(-1), [["tokend:spa", "tokens", "at1"]]);
  // b adopted the rotated refresh token too: its next refresh sends rt1.
  await b.refresh("at1");
  assert.equal(srv.tokenCalls[1].body, "grant_type=refresh_token&refresh_token=rt1&client_id=spa");
  assert.equal(await a.getAccessToken(), "at2", "and a adopted b's broadcast");
});

test("the lock is granted before the winner's broadcast arrives: the waiter sees that a tab holds newer tokens and waits for them, 1 token request", async (t) => {
  const gate = deferred();
  const { srv, locks, channel, a, b } = twoTabs(t, heldServer(gate));
  channel.hold = true; // a's broadcast will be late: b gets the lock first
  const pa = a.refresh("at0");
  const pb = b.refresh("at0");
  await flush();
  gate.resolve();
  assert.equal(await pa, "at1");
  await flush();
  assert.equal(srv.tokenCalls.length, 1, "b holds the lock but waits for the broadcast");
  const held = (await locks.query()).held.map((l) => l.name);
  assert.ok(held.some((n) => n.startsWith("tokend-holds:tokend:spa:")), `a says it holds newer tokens: ${held}`);
  assert.ok(!held.some((n) => /at[01]|rt[01]/.test(n)), "no lock name carries a token");
  channel.release();
  assert.equal(await pb, "at1");
  assert.equal(srv.tokenCalls.length, 1);
});

test("the broadcast arrives while the waiter asks the lock manager: it adopts at once, no second request", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { srv, locks, channel, a, b } = twoTabs(t);
  channel.hold = true;
  await a.refresh("at0"); // a holds the marker; its broadcast waits
  const query = locks.query.bind(locks);
  locks.query = async () => {
    const r = await query();
    channel.release(); // the message event runs before query's answer
    await flush();
    return r;
  };
  assert.equal(await b.refresh("at0"), "at1");
  assert.equal(srv.tokenCalls.length, 1);
});

test("a missed broadcast: the waiter that sees newer tokens in another tab asks for them, the holder resends, 1 token request", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { srv, locks, channel, a, b } = twoTabs(t);
  channel.hold = true;
  await a.refresh("at0");
  channel.held.splice(0); // b (frozen) never got a's message
  channel.hold = false;
  assert.equal(await b.refresh("at0"), "at1", "adopted from the resend, before any timer");
  assert.equal(srv.tokenCalls.length, 1);
  assert.ok(channel.posted.some((p) => p.data.type === "resend"));
});

test("a late message of an older token does not replace a newer one", async (t) => {
  const srv = fakeServer();
  const channel = channelHub();
  const a = manager(t, srv, { locks: null, channel });
  const b = manager(t, srv, { locks: null, channel });
  a.start(LOGIN);
  b.start(LOGIN);
  await flush();
  channel.hold = true;
  await a.refresh("at0"); // broadcasts at1 (held)
  const older = channel.held.splice(0);
  channel.hold = false;
  await a.refresh("at1"); // broadcasts at2
  await flush();
  assert.equal(await b.getAccessToken(), "at2");
  for (const deliver of older) deliver(); // at1 arrives late
  await flush();
  assert.equal(await b.getAccessToken(), "at2", "the older token was not adopted");
  await b.refresh("at2");
  assert.equal(srv.tokenCalls.at(-1).body, "grant_type=refresh_token&refresh_token=rt2&client_id=spa", "b refreshes with the newest refresh token");
});

test("a tab holds newer tokens but does not answer (frozen): the waiter never spends its stale refresh token, and adopts them once that tab answers", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { srv, channel, a, b } = twoTabs(t);
  channel.hold = true;
  await a.refresh("at0"); // a holds at1; its broadcast, and b's requests, wait
  channel.held.splice(0);
  const pb = b.refresh("at0");
  await flush();
  t.mock.timers.tick(4_999);
  await flush();
  assert.equal(srv.tokenCalls.length, 1, "still waiting at 4.999 s");
  t.mock.timers.tick(1);
  await assert.rejects(pb, (e) => e instanceof OAuthError && e.status === undefined && /another tab/.test(e.message));
  assert.equal(srv.tokenCalls.length, 1, "rt0 was not sent");
  channel.held.splice(0);
  channel.hold = false; // a answers again; b's retry (random 0: at once) asks for the tokens
  t.mock.timers.tick(0);
  await flush(6);
  assert.equal(await b.getAccessToken(), "at1");
  assert.equal(srv.tokenCalls.length, 1);
  assert.equal(await a.getAccessToken(), "at1");
});

test("the tab that held newer tokens is gone (closed, discarded): the waiter refreshes with its own", async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const { srv, channel, a, b } = twoTabs(t);
  channel.hold = true;
  await a.refresh("at0");
  channel.held.splice(0);
  channel.hold = false;
  a.close(); // its locks go with it: nobody holds at1 any more
  assert.equal(await b.refresh("at0"), "at2");
  assert.deepEqual(srv.tokenCalls.map((c) => c.body.split("&")[1]), ["refresh_token=rt0", "refresh_token=rt0"]);
});

test("the lock waiter re-reads shared state (storage) before refreshing", async (t) => {
  const srv = fakeServer();
  const gate = deferred();
  srv.tokenReply = async () => (await gate.promise, srv.issue());
  const locks = fakeLocks();
  const storageArea = fakeStorage();
  // No broadcast channel: only the storage tells b what a did.
  const a = manager(t, srv, { locks, channel: null, storage: "local", storageArea });
  const b = manager(t, srv, { locks, channel: null, storage: "local", storageArea });
  a.start(LOGIN);
  b.start();
  assert.equal(await b.getAccessToken(), "at0", "b restored the login from storage");
  const pa = a.refresh();
  const pb = b.refresh();
  await flush();
  gate.resolve();
  assert.deepEqual(await Promise.all([pa, pb]), ["at1", "at1"]);
  assert.equal(srv.tokenCalls.length, 1);
});

test("without Web Locks (and without BroadcastChannel) the manager works alone", async (t) => {
  const srv = fakeServer();
  const m = manager(t, srv, { locks: null, channel: null });
  m.start(LOGIN);
  assert.deepEqual(await Promise.all([m.refresh(), m.refresh()]), ["at1", "at1"]);
  assert.equal(srv.tokenCalls.length, 1);
});

test("defaults in an environment without navigator.locks (Node): a single tab works", async (t) => {
  assert.equal(globalThis.navigator?.locks, undefined);
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa-default-" + process.pid, fetch: srv.fetch });
  t.after(() => m.close());
  m.start(LOGIN);
  assert.equal(await m.refresh(), "at1");
  assert.equal(srv.tokenCalls.length, 1);
});

test("logout in one tab: revokes once, the other tab forgets and is told once", async (t) => {
  const srv = fakeServer();
  const channel = channelHub();
  let told = 0;
  const a = manager(t, srv, { locks: fakeLocks(), channel });
  const b = manager(t, srv, { locks: fakeLocks(), channel, onReauthRequired: () => told++ });
  a.start(LOGIN);
  b.start(LOGIN);
  await a.logout();
  await flush();
  assert.deepEqual(srv.calls.map((c) => [c.url, c.body]), [[REVOKE, "token=rt0&token_type_hint=refresh_token&client_id=spa"]]);
  await assert.rejects(a.getAccessToken(), ReauthRequiredError);
  await assert.rejects(b.getAccessToken(), ReauthRequiredError);
  assert.equal(told, 1);
  assert.equal(srv.tokenCalls.length, 0);
  // A new login in one tab is adopted by the other.
  b.start({ access_token: "at5", refresh_token: "rt5", expires_in: 3600 });
  await flush();
  assert.equal(await a.getAccessToken(), "at5");
});

test("storage: memory by default (nothing written)", async (t) => {
  const srv = fakeServer();
  const storageArea = fakeStorage();
  const m = manager(t, srv, { crossTab: false, storageArea });
  m.start(LOGIN);
  await m.refresh();
  assert.equal(storageArea.map.size, 0);
});

for (const storage of ["session", "local"]) {
  test(`storage: ${storage} persists and a new manager restores`, async (t) => {
    const srv = fakeServer();
    const storageArea = fakeStorage();
    const m1 = manager(t, srv, { crossTab: false, storage, storageArea, storageKey: "k" });
    m1.start(LOGIN);
    const saved = JSON.parse(storageArea.getItem("k"));
    assert.equal(saved.access_token, "at0");
    assert.equal(saved.refresh_token, "rt0");
    assert.equal(typeof saved.expires_at, "number");
    m1.close();
    const m2 = manager(t, srv, { crossTab: false, storage, storageArea, storageKey: "k" });
    assert.equal(await m2.getAccessToken(), "at0");
    assert.equal(srv.tokenCalls.length, 0);
    assert.equal(await m2.refresh(), "at1");
    assert.equal(srv.tokenCalls[0].body, "grant_type=refresh_token&refresh_token=rt0&client_id=spa");
    assert.equal(JSON.parse(storageArea.getItem("k")).refresh_token, "rt1");
    await m2.logout();
    assert.equal(storageArea.getItem("k"), null);
  });
}

test("the default storage key is tokend:<clientId>", async (t) => {
  const srv = fakeServer();
  const storageArea = fakeStorage();
  manager(t, srv, { crossTab: false, storage: "session", storageArea }).start(LOGIN);
  assert.deepEqual([...storageArea.map.keys()], ["tokend:spa"]);
});

test("non-cookie refresh: form body, public client, no cookie credentials, no X-Tokend", async (t) => {
  const srv = fakeServer();
  const m = manager(t, srv, { crossTab: false });
  m.start(LOGIN);
  await m.refresh();
  const c = srv.tokenCalls[0];
  assert.equal(c.method, "POST");
  assert.equal(c.body, "grant_type=refresh_token&refresh_token=rt0&client_id=spa");
  assert.equal(c.headers.get("Content-Type"), "application/x-www-form-urlencoded");
  assert.equal(c.headers.get("X-Tokend"), null);
  assert.notEqual(c.credentials, "include");
  assert.equal(c.auth, null);
});

test("cookie mode: credentials include, X-Tokend: 1, no refresh_token sent or kept anywhere", async (t) => {
  const srv = fakeServer(); // its answers carry refresh_token: the manager must ignore it
  const storageArea = fakeStorage();
  const channel = channelHub();
  const m = manager(t, srv, { cookie: true, storage: "local", storageArea, channel, locks: fakeLocks() });
  m.start(); // nothing yet: the first getAccessToken refreshes from the cookie
  assert.equal(await m.getAccessToken(), "at1");
  assert.equal(await m.refresh(), "at2");
  for (const c of srv.tokenCalls) {
    assert.equal(c.body, "grant_type=refresh_token&client_id=spa");
    assert.equal(c.credentials, "include");
    assert.equal(c.headers.get("X-Tokend"), "1");
  }
  assert.ok(!storageArea.getItem("tokend:spa").includes("rt"), "no refresh token in storage");
  assert.ok(channel.posted.every((p) => !("refresh_token" in p.data)), "no refresh token broadcast");
});

test("cookie mode: a refresh token given to start() is used once (the first exchange), never stored", async (t) => {
  const srv = fakeServer();
  const storageArea = fakeStorage();
  const m = manager(t, srv, { cookie: true, crossTab: false, storage: "session", storageArea });
  m.start({ access_token: "at0", refresh_token: "minted", expires_in: 3600 });
  assert.ok(!storageArea.getItem("tokend:spa").includes("minted"));
  await m.refresh();
  await m.refresh();
  assert.deepEqual(srv.tokenCalls.map((c) => c.body), ["grant_type=refresh_token&refresh_token=minted&client_id=spa", "grant_type=refresh_token&client_id=spa"]);
});

test("cookie mode logout: POST client_id to the revocation endpoint with X-Tokend and credentials", async (t) => {
  const srv = fakeServer();
  const m = manager(t, srv, { cookie: true, crossTab: false });
  m.start({ access_token: "at0", expires_in: 3600 });
  await m.logout();
  assert.equal(srv.calls.length, 1);
  const c = srv.calls[0];
  assert.deepEqual([c.url, c.method, c.body, c.credentials, c.headers.get("X-Tokend")], [REVOKE, "POST", "client_id=spa", "include", "1"]);
  await assert.rejects(m.getAccessToken(), ReauthRequiredError);
  assert.equal(srv.tokenCalls.length, 0);
});

test("revocationEndpoint option overrides the derived one", async (t) => {
  const srv = fakeServer();
  const m = manager(t, srv, { crossTab: false, revocationEndpoint: "https://auth.test/custom/revoke" });
  m.start(LOGIN);
  await m.logout().catch(() => {});
  assert.equal(srv.calls[0].url, "https://auth.test/custom/revoke");
});

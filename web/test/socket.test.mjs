import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager, tokenSocket } from "../dist/index.js";
import { TOKEN, fakeServer, fakeWebSocket, flush } from "./helpers.mjs";

const T0 = 1_700_000_000_000;
const WS_URL = "wss://api.test/ws";

async function setup(t, { login = { access_token: "at0", refresh_token: "rt0", expires_in: 3600 }, ...opts } = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, crossTab: false });
  m.start(login);
  const { WS, sockets } = fakeWebSocket();
  const r = { value: 0 };
  const s = tokenSocket(WS_URL, m, { WebSocket: WS, random: () => r.value, ...opts });
  const got = [];
  s.onmessage = (ev) => got.push(ev.data);
  t.after(() => (s.close(), m.close()));
  await flush();
  return { srv, m, s, sockets, got, r };
}

const last = (a) => a[a.length - 1];
/** What the socket sent on ws besides its tokend.ping liveness checks (socket-liveness.test.mjs). */
const app = (ws) => ws.sent.filter((d) => d !== '{"type":"tokend.ping"}');

test("offers exactly ['tokend', 'tokend.bearer.<token>']", async (t) => {
  const { sockets } = await setup(t);
  assert.equal(sockets.length, 1);
  assert.equal(sockets[0].url, WS_URL);
  assert.deepEqual(sockets[0].protocols, ["tokend", "tokend.bearer.at0"]);
});

for (const code of [4001, 1008]) {
  test(`close ${code}: refresh(old) then one immediate reconnect with the new token`, async (t) => {
    const { srv, sockets } = await setup(t);
    sockets[0].open();
    sockets[0].serverClose(code, "invalid_token");
    await flush();
    assert.equal(srv.tokenCalls.length, 1);
    assert.equal(sockets.length, 2, "reconnected without any timer");
    assert.deepEqual(sockets[1].protocols, ["tokend", "tokend.bearer.at1"]);
    // A second token close at once (no stable connection between): refresh, but back off.
    sockets[1].serverClose(code, "invalid_token");
    await flush();
    assert.equal(srv.tokenCalls.length, 2);
    assert.equal(sockets.length, 2, "no second immediate reconnect");
    t.mock.timers.tick(125);
    await flush();
    assert.equal(sockets.length, 3);
    assert.deepEqual(sockets[2].protocols, ["tokend", "tokend.bearer.at2"]);
  });
}

test("other closes back off: 250 ms doubling to 30 s, equal jitter", async (t) => {
  const { sockets, r, srv } = await setup(t);
  const expect = [250, 500, 1000, 2000, 4000, 8000, 16000, 30000, 30000];
  for (const [i, d] of expect.entries()) {
    r.value = i % 2 ? 0.999 : 0; // lower bound d/2, then near the upper bound d
    last(sockets).serverClose(1006);
    const delay = Math.ceil(d / 2 + r.value * (d / 2)); // d/2 ≤ delay < d
    t.mock.timers.tick(delay - 1);
    await flush();
    assert.equal(sockets.length, i + 1, `no reconnect before ${delay} ms (close ${i + 1})`);
    t.mock.timers.tick(1);
    await flush();
    assert.equal(sockets.length, i + 2, `reconnect by ${delay} ms (close ${i + 1})`);
  }
  assert.equal(srv.tokenCalls.length, 0, "a network close does not refresh");
});

test("a connection that opens and closes at once does not reset the backoff; 5 s open does", async (t) => {
  const { sockets } = await setup(t);
  sockets[0].serverClose(1006); // failure 1: 125 ms
  t.mock.timers.tick(125);
  await flush();
  sockets[1].open();
  t.mock.timers.tick(4_999);
  sockets[1].serverClose(1006); // failure 2: 250 ms, not reset
  t.mock.timers.tick(249);
  await flush();
  assert.equal(sockets.length, 2);
  t.mock.timers.tick(1);
  await flush();
  assert.equal(sockets.length, 3);
  sockets[2].open();
  t.mock.timers.tick(5_000);
  sockets[2].serverClose(1006); // reset: 125 ms again
  t.mock.timers.tick(124);
  await flush();
  assert.equal(sockets.length, 3);
  t.mock.timers.tick(1);
  await flush();
  assert.equal(sockets.length, 4);
});

test("sends queued while disconnected are delivered in order after (re)connect", async (t) => {
  const { s, sockets } = await setup(t);
  s.send("a");
  s.send("b");
  assert.equal(s.connected, false);
  sockets[0].open();
  assert.equal(s.connected, true);
  s.send("c");
  assert.deepEqual(app(sockets[0]), ["a", "b", "c"]);
  sockets[0].serverClose(1006);
  s.send("d");
  s.send("e");
  t.mock.timers.tick(125);
  await flush();
  sockets[1].open();
  s.send("f");
  assert.deepEqual(app(sockets[1]), ["d", "e", "f"]);
});

test("the queue is bounded: a send beyond maxQueue throws", async (t) => {
  const { s, sockets } = await setup(t, { maxQueue: 3 });
  s.send(1);
  s.send(2);
  s.send(3);
  assert.throws(() => s.send(4), /queue full/);
  sockets[0].open();
  assert.deepEqual(app(sockets[0]), [1, 2, 3]);
});

test("the default queue bound is 1024", async (t) => {
  const { s } = await setup(t);
  for (let i = 0; i < 1024; i++) s.send(String(i));
  assert.throws(() => s.send("x"), /queue full/);
});

test("renews in band before expiry; tokend.* control messages never reach the app", async (t) => {
  // 100 s token: the manager refreshes at 50 s (60 s lead capped at half the lifetime).
  const { s, sockets, got, srv } = await setup(t, { login: { access_token: "at0", refresh_token: "rt0", expires_in: 100 } });
  sockets[0].open();
  sockets[0].message('{"type":"chat","text":"hi"}');
  t.mock.timers.tick(50_000);
  await flush();
  assert.equal(srv.tokenCalls.length, 1);
  assert.ok(Date.now() < T0 + 100_000);
  assert.deepEqual(app(sockets[0]).map((x) => JSON.parse(x)), [{ type: "tokend.renew", token: "at1" }]);
  sockets[0].message('{"type":"tokend.renewed","exp":1700000100}');
  sockets[0].message('{"type":"tokend.some_future_message"}');
  s.send("after");
  assert.deepEqual(got, ['{"type":"chat","text":"hi"}']);
  assert.equal(sockets.length, 1, "renewal needs no reconnect");
  assert.equal(last(app(sockets[0])), "after");
});

test("tokend.renew_failed: reconnect at once with the manager's current token, no extra refresh", async (t) => {
  const { sockets, got, srv } = await setup(t, { login: { access_token: "at0", refresh_token: "rt0", expires_in: 100 } });
  sockets[0].open();
  t.mock.timers.tick(50_000);
  await flush();
  sockets[0].message('{"type":"tokend.renew_failed","error":"subject mismatch"}');
  await flush();
  assert.equal(sockets[0].closedWith.code, 4001);
  assert.equal(srv.tokenCalls.length, 1, "refresh(at0) finds at1 current: no request");
  assert.equal(sockets.length, 2);
  assert.deepEqual(sockets[1].protocols, ["tokend", "tokend.bearer.at1"]);
  assert.deepEqual(got, []);
});

test("tokend.renew_failed again before the new connection proved stable: refresh, then back off (no loop)", async (t) => {
  const { m, sockets, srv } = await setup(t, { login: { access_token: "at0", refresh_token: "rt0", expires_in: 100 } });
  sockets[0].open();
  t.mock.timers.tick(50_000);
  await flush();
  sockets[0].message('{"type":"tokend.renew_failed","error":"token is of another client (client_id)"}');
  await flush();
  assert.equal(sockets.length, 2, "the first refusal reconnects at once");
  sockets[1].open();
  await m.refresh("at1"); // at2: renewed in band
  await flush();
  assert.deepEqual(JSON.parse(last(app(sockets[1]))), { type: "tokend.renew", token: "at2" });
  sockets[1].message('{"type":"tokend.renew_failed","error":"token is of another client (client_id)"}');
  await flush();
  assert.deepEqual(sockets[1].closedWith, { code: 4001, reason: "token" });
  assert.equal(srv.tokenCalls.length, 2, "refresh(at1) fetched at2; refresh(at2) after the refusal finds at2 current");
  assert.equal(sockets.length, 2, "no second immediate reconnect");
  t.mock.timers.tick(125);
  await flush();
  assert.equal(sockets.length, 3);
  assert.deepEqual(sockets[2].protocols, ["tokend", "tokend.bearer.at2"]);
});

test("tokend.expiring: stop sending, close 4001, reconnect at once with a fresh token, queued sends follow", async (t) => {
  const { s, sockets, got, srv } = await setup(t);
  sockets[0].open();
  sockets[0].message('{"type":"tokend.expiring"}');
  s.send("queued");
  assert.deepEqual(sockets[0].closedWith, { code: 4001, reason: "token" });
  assert.deepEqual(app(sockets[0]), []);
  await flush();
  assert.equal(srv.tokenCalls.length, 1);
  assert.equal(sockets.length, 2);
  assert.deepEqual(sockets[1].protocols, ["tokend", "tokend.bearer.at1"]);
  sockets[1].open();
  assert.deepEqual(app(sockets[1]), ["queued"]);
  assert.deepEqual(got, []);
});

test("close() by the app: no reconnect, sends throw", async (t) => {
  const { s, sockets } = await setup(t);
  sockets[0].open();
  let closes = 0;
  s.onclose = () => closes++;
  s.close();
  await flush();
  t.mock.timers.tick(60_000);
  await flush();
  assert.equal(sockets.length, 1);
  assert.equal(closes, 1);
  assert.throws(() => s.send("x"), /closed/);
});

// tokenSocket liveness: tokend.ping on open and 25 s after each pong, a
// connection given up as dead 10 s after an unanswered ping or renewal
// (once the server has answered one), and the sends no pong confirmed
// reported through onundelivered. Fake clock and fake WebSocket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { TokenManager, tokenSocket } from "../dist/index.js";
import { TOKEN, fakeServer, fakeWebSocket, flush } from "./helpers.mjs";

const T0 = 1_700_000_000_000;
const PING = '{"type":"tokend.ping"}';
const PONG = '{"type":"tokend.pong"}';
const INTERVAL = 25_000;
const TIMEOUT = 10_000;

/** Wraps the (mocked) setTimeout/clearTimeout to keep the set of pending timers. */
function pendingTimers(t) {
  const pending = new Set();
  const { setTimeout: st, clearTimeout: ct } = globalThis;
  globalThis.setTimeout = (fn, ms, ...args) => {
    const h = st((...a) => (pending.delete(h), fn(...a)), ms, ...args);
    pending.add(h);
    return h;
  };
  globalThis.clearTimeout = (h) => (pending.delete(h), ct(h));
  t.after(() => Object.assign(globalThis, { setTimeout: st, clearTimeout: ct }));
  return pending;
}

async function setup(t, { login = { access_token: "at0", refresh_token: "rt0", expires_in: 3600 }, ...opts } = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const pending = pendingTimers(t);
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, crossTab: false });
  m.start(login);
  const { WS, sockets } = fakeWebSocket();
  const s = tokenSocket("wss://api.test/ws", m, { WebSocket: WS, random: () => 0, ...opts });
  const ev = []; // what the app saw, in order
  s.onmessage = (e) => ev.push("message " + e.data);
  s.onclose = (e) => ev.push("close " + e.code);
  s.onundelivered = (data) => ev.push(["undelivered", ...data]);
  t.after(() => (s.close(), m.close()));
  await flush();
  return { srv, m, s, sockets, ev, pending };
}

const pings = (ws) => ws.sent.filter((d) => d === PING).length;
const tick = async (t, ms) => (t.mock.timers.tick(ms), flush());

test("a path that stops answering is dead exactly 25 s + 10 s after the last pong; onclose 4000, the unconfirmed sends reported, a reconnect with the manager's token", async (t) => {
  const { s, m, sockets, ev } = await setup(t);
  const ws = sockets[0];
  ws.open();
  assert.deepEqual(ws.sent, [PING], "a ping on open");
  ws.message(PONG); // the server answers pings: the deadline applies from now on
  s.send("a");
  s.send("b");
  await tick(t, INTERVAL);
  assert.deepEqual(ws.sent, [PING, "a", "b", PING]);
  ws.message(PONG); // confirms a and b; the path stops forwarding after this
  s.send("c");
  await tick(t, INTERVAL - 1);
  assert.equal(pings(ws), 2, "the next ping comes 25 s after the pong");
  await tick(t, 1);
  assert.equal(pings(ws), 3);
  s.send("d");
  await tick(t, TIMEOUT - 1);
  assert.equal(s.connected, true, "alive until the timeout");
  assert.deepEqual(ev, []);
  await tick(t, 1);
  assert.equal(s.connected, false);
  assert.deepEqual(ev, ["close 4000", ["undelivered", "c", "d"]], "c and d, sent after the last confirming ping, and only they");
  assert.equal(ws.closedWith.code, 4000);
  assert.deepEqual(ws.sent, [PING, "a", "b", PING, "c", PING, "d"], "nothing sent again");
  s.send("e"); // queued for the next connection
  await tick(t, 124);
  assert.equal(sockets.length, 1, "reconnects after the backoff (125 ms with this jitter)");
  await tick(t, 1);
  assert.equal(sockets.length, 2);
  assert.deepEqual(sockets[1].protocols, ["tokend", "tokend.bearer." + (await m.getAccessToken())]);
  sockets[1].open();
  assert.deepEqual(sockets[1].sent, [PING, "e"]);
  assert.deepEqual(ev, ["close 4000", ["undelivered", "c", "d"]], "the old socket's own close event is not reported again");
});

test("an in-band renewal unanswered for 10 s is a dead path; the reconnect offers the renewed token", async (t) => {
  // 100 s token: the manager refreshes at 50 s and the socket renews in band.
  const { s, sockets, ev, srv } = await setup(t, { login: { access_token: "at0", refresh_token: "rt0", expires_in: 100 } });
  const ws = sockets[0];
  ws.open();
  ws.message(PONG);
  await tick(t, INTERVAL);
  ws.message(PONG); // at 25 s
  s.send("x");
  await tick(t, INTERVAL - 1); // 49.999 s: no ping yet
  assert.equal(pings(ws), 2);
  await tick(t, 1); // 50 s: the manager refreshes (at1); the ping timer is due too
  assert.equal(srv.tokenCalls.length, 1);
  assert.ok(ws.sent.includes('{"type":"tokend.renew","token":"at1"}'));
  const sentAt50 = ws.sent.length;
  await tick(t, TIMEOUT - 1);
  assert.deepEqual(ev, []);
  assert.equal(ws.sent.length, sentAt50);
  await tick(t, 1);
  assert.deepEqual(ev, ["close 4000", ["undelivered", "x"]]);
  await tick(t, 125);
  assert.equal(sockets.length, 2);
  assert.deepEqual(sockets[1].protocols, ["tokend", "tokend.bearer.at1"]);
  assert.equal(srv.tokenCalls.length, 1, "no extra refresh: at1 is current");
});

test("a renewal between pings is followed by a ping: unanswered, the connection is dead 10 s after the renewal", async (t) => {
  const { m, sockets, ev } = await setup(t);
  const ws = sockets[0];
  ws.open();
  ws.message(PONG);
  await tick(t, 5_000);
  await m.refresh("at0"); // at1: renewed in band at 5 s, 20 s before the next ping is due
  await flush();
  assert.deepEqual(ws.sent.slice(1), ['{"type":"tokend.renew","token":"at1"}', PING]);
  await tick(t, TIMEOUT - 1);
  assert.deepEqual(ev, []);
  await tick(t, 1);
  assert.deepEqual(ev, ["close 4000"], "nothing to report: no application sends");
  await tick(t, 125);
  assert.deepEqual(sockets[1].protocols, ["tokend", "tokend.bearer.at1"]);
});

test("a server that answers every ping and renewal keeps the connection: 10 minutes, a renewal among them", async (t) => {
  const { s, sockets, ev, srv } = await setup(t, { login: { access_token: "at0", refresh_token: "rt0", expires_in: 100 } });
  const ws = sockets[0];
  const send = ws.send.bind(ws);
  ws.send = (d) => {
    send(d);
    if (d === PING) queueMicrotask(() => ws.message(PONG));
    else if (String(d).includes('"tokend.renew"')) queueMicrotask(() => ws.message('{"type":"tokend.renewed","exp":0}'));
  };
  ws.open();
  for (let i = 0; i < 600; i++) {
    s.send("m" + i);
    await tick(t, 1000);
  }
  assert.equal(sockets.length, 1);
  assert.deepEqual(ev, []);
  assert.equal(pings(ws), 1 + 24, "a ping on open, then 25 s after each pong");
  assert.equal(srv.tokenCalls.length, 1, "at1 (3600 s) replaced the 100 s at0 at 50 s");
  assert.ok(ws.sent.includes('{"type":"tokend.renew","token":"at1"}'), "renewed in band");
  s.send("last"); // after the ping at 600 s, answered: everything before it is confirmed
  ws.serverClose(1001);
  assert.deepEqual(ev, ["close 1001", ["undelivered", "last"]]);
});

test("a server that never answers a ping is never timed out, and nothing is tracked", async (t) => {
  const { s, sockets, ev } = await setup(t, { maxQueue: 4 });
  const ws = sockets[0];
  ws.open();
  for (let i = 0; i < 40; i++) {
    s.send(String(i)); // more than maxQueue: nothing is held for confirmation
    await tick(t, INTERVAL);
  }
  assert.equal(sockets.length, 1, "one connection for 1000 s");
  assert.equal(s.connected, true);
  assert.equal(pings(ws), 1, "one ping, on open: the next comes 25 s after a pong");
  ws.serverClose(1006);
  assert.deepEqual(ev, ["close 1006"], "nothing reported: no confirmation was ever possible");
});

test("a server before tokend.pong answers a ping with tokend.renew_failed: taken as the pong, the connection stays", async (t) => {
  const { s, sockets, ev } = await setup(t);
  const ws = sockets[0];
  const old = '{"type":"tokend.renew_failed","error":"unknown control message"}';
  ws.open();
  ws.message(old);
  s.send("a");
  await tick(t, INTERVAL);
  ws.message(old); // confirms a
  s.send("b");
  await tick(t, 5 * 60_000 - INTERVAL); // pings every 25 s, each answered
  assert.equal(ws.closedWith, null);
  assert.equal(sockets.length, 1);
  assert.deepEqual(ev, []);
  // It is timed out like a current server once it stops answering.
  await tick(t, INTERVAL + TIMEOUT);
  assert.deepEqual(ev, ["close 4000", ["undelivered", "b"]]);
});

test("tokend.pong never reaches onmessage; application messages do", async (t) => {
  const { sockets, ev } = await setup(t);
  sockets[0].open();
  sockets[0].message(PONG);
  sockets[0].message('{"type":"chat"}');
  sockets[0].message(PONG);
  assert.deepEqual(ev, ['message {"type":"chat"}']);
});

test("unconfirmed sends count against maxQueue; at half of it the socket pings at once", async (t) => {
  const { s, sockets } = await setup(t, { maxQueue: 4 });
  const ws = sockets[0];
  ws.open();
  ws.message(PONG);
  s.send(1);
  assert.deepEqual(ws.sent, [PING, 1]);
  s.send(2);
  assert.deepEqual(ws.sent, [PING, 1, 2, PING], "2 of 4 unconfirmed: an early ping");
  s.send(3);
  s.send(4);
  assert.equal(pings(ws), 2, "one ping outstanding at a time");
  assert.throws(() => s.send(5), /queue full/);
  ws.message(PONG); // confirms 1 and 2
  s.send(5);
  assert.deepEqual(ws.sent, [PING, 1, 2, PING, 3, 4, 5, PING], "3, 4 and 5 unconfirmed: another early ping");
});

test("sends queued while disconnected go out after the ping on open; a later ping confirms them", async (t) => {
  const { s, sockets, ev } = await setup(t, { maxQueue: 4 });
  sockets[0].open();
  sockets[0].message(PONG);
  sockets[0].serverClose(1006);
  s.send(1);
  s.send(2);
  s.send(3);
  await tick(t, 125);
  const ws = sockets[1];
  ws.open();
  assert.deepEqual(ws.sent, [PING, 1, 2, 3], "one ping outstanding: no early one during the flush");
  ws.message(PONG); // answers the ping sent before 1, 2, 3: confirms none of them
  s.send(4);
  assert.deepEqual(ws.sent, [PING, 1, 2, 3, 4, PING], "4 unconfirmed: an early ping");
  assert.throws(() => s.send(5), /queue full/);
  ws.message(PONG); // confirms 1 to 4
  s.send(5);
  ws.serverClose(1006);
  assert.deepEqual(ev, ["close 1006", "close 1006", ["undelivered", 5]]);
});

test("any other end of a connection reports its unconfirmed sends; close() by the app does not", async (t) => {
  const { s, sockets, ev } = await setup(t);
  sockets[0].open();
  sockets[0].message(PONG);
  s.send("a");
  sockets[0].serverClose(1006);
  assert.deepEqual(ev, ["close 1006", ["undelivered", "a"]]);
  await tick(t, 125);
  sockets[1].open();
  sockets[1].message(PONG);
  s.send("b");
  s.close();
  await flush();
  assert.deepEqual(ev, ["close 1006", ["undelivered", "a"], "close 1000"]);
});

test("closing the socket stops pinging: no timer is left", async (t) => {
  const { s, m, sockets, pending } = await setup(t);
  sockets[0].open();
  sockets[0].message(PONG);
  await tick(t, INTERVAL);
  s.close();
  m.close();
  await flush();
  assert.equal(pending.size, 0, "no pending timer after close()");
  const n = sockets[0].sent.length;
  await tick(t, 10 * 60_000);
  assert.equal(sockets[0].sent.length, n);
  assert.equal(sockets.length, 1);
});

test("a connection that ends stops its timers: none left while reconnecting", async (t) => {
  const { sockets, pending } = await setup(t);
  sockets[0].open();
  sockets[0].message(PONG);
  sockets[0].serverClose(1006);
  // Only the reconnect backoff (and the manager's own refresh timer) remain.
  assert.ok(pending.size <= 2, `pending timers: ${pending.size}`);
  await tick(t, 125);
  assert.equal(sockets.length, 2);
  assert.equal(pings(sockets[0]), 1, "the ended connection never pings again");
});

// The browser column of docs/client-policy.md, the table of the clients'
// defaults, checked against what TokenManager and tokenSocket do with
// their default options (fake timers, fake fetch and WebSocket), and
// against the exported constants. refresh/policy_test.go and
// wsconn/policy_test.go check the Go column of the same file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as web from "../dist/index.js";
import { TOKEN, deferred, fakeServer, fakeWebSocket, flush, json } from "./helpers.mjs";

const { TokenManager, tokenSocket } = web;
const T0 = 1_700_000_000_000;

/** The rows of every table in the file: key → { go, browser, why } (value cells: their leading code span). */
function readTable(text) {
  const rows = new Map();
  const span = (cell) => /^\s*`([^`]*)`/.exec(cell)?.[1];
  for (const line of text.split("\n")) {
    if (!line.startsWith("|") || line.startsWith("|---")) continue;
    const cells = line.trim().replace(/^\||\|$/g, "").split("|");
    const key = span(cells[0]);
    if (key === undefined) continue; // a header
    assert.equal(cells.length, 4, `row ${key}: 4 cells`);
    const [go, browser] = [span(cells[1]), span(cells[2])];
    assert.ok(go !== undefined && browser !== undefined, `row ${key}: value cells start with a code span`);
    assert.ok(!rows.has(key), `row ${key} repeated`);
    rows.set(key, { go, browser, why: cells[3].trim() });
  }
  return rows;
}

const UNITS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };

/** Evaluates a value expression (see the file's Format section) in ms; vars: lifetime, lead in ms. */
function evaluate(expr, vars = {}) {
  const toks = expr.match(/\d+(?:\.\d+)?[a-z]*|[a-z]+|[-+×*/(),]/g) ?? [];
  assert.equal(toks.join(""), expr.replace(/\s+/g, ""), `${expr}: unknown characters`);
  let i = 0;
  const eat = (t) => (toks[i] === t ? (i++, true) : false);
  const sum = () => {
    let v = product();
    for (;;) {
      if (eat("+")) v += product();
      else if (eat("-")) v -= product();
      else return v;
    }
  };
  const product = () => {
    let v = factor();
    for (;;) {
      if (eat("×") || eat("*")) v *= factor();
      else if (eat("/")) v /= factor();
      else return v;
    }
  };
  const factor = () => {
    const t = toks[i++];
    assert.ok(t !== undefined, `${expr}: ends early`);
    if (t === "(") {
      const v = sum();
      assert.ok(eat(")"), `${expr}: missing )`);
      return v;
    }
    if (t === "min" || t === "max") {
      assert.ok(eat("("), `${expr}: ${t} without (`);
      const a = sum();
      assert.ok(eat(","), `${expr}: ${t} with one argument`);
      const b = sum();
      assert.ok(eat(")"), `${expr}: ${t} without )`);
      return Math[t](a, b);
    }
    const num = /^(\d+(?:\.\d+)?)([a-z]*)$/.exec(t);
    if (num) {
      assert.ok(num[2] === "" || num[2] in UNITS, `${expr}: unit ${num[2]}`);
      return Number(num[1]) * (num[2] ? UNITS[num[2]] : 1);
    }
    assert.ok(t in vars, `${expr}: unknown name ${t}`);
    return vars[t];
  };
  const v = sum();
  assert.equal(i, toks.length, `${expr}: trailing ${toks.slice(i).join(" ")}`);
  return v;
}

const table = readTable(readFileSync(new URL("../../docs/client-policy.md", import.meta.url), "utf8"));
const value = (key) => {
  assert.ok(table.has(key), `the table has a row ${key}`);
  return table.get(key).browser;
};
/** A wait in ms as the fake clock reaches it: fractions of a ms round up (float noise aside). */
const whole = (ms) => Math.ceil(ms - 1e-6);

function setup(t, { r = 0, ...opts } = {}) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => r, events: null, crossTab: false, ...opts });
  t.after(() => m.close());
  return { srv, m };
}

async function tick(t, ms) {
  t.mock.timers.tick(ms);
  await flush();
}

/** The value p has settled with once promises ran, or "pending". */
async function settled(p) {
  let v = "pending";
  p.then((x) => (v = x), (e) => (v = e));
  await flush();
  return v;
}

/** Asserts that the token endpoint's call number `n` comes exactly `ms` after now, none before. */
async function nextCallAfter(t, srv, n, ms, what) {
  await tick(t, whole(ms) - 1);
  assert.equal(srv.tokenCalls.length, n - 1, `${what}: call ${n} not before ${ms} ms`);
  await tick(t, 1);
  assert.equal(srv.tokenCalls.length, n, `${what}: call ${n} at ${ms} ms`);
}

/** The waits a backoff row set gives for failures 1..n with random r. */
function backoffWaits(n, r, cap) {
  const base = evaluate(value("backoff.base"));
  const jitter = value("backoff.jitter");
  return Array.from({ length: n }, (_, k) => {
    const c = Math.min(cap, base * 2 ** k);
    return jitter === "full" ? r * c : c / 2 + (r * c) / 2;
  });
}

/** Makes every token request fail with fail(), starts a refresh now, and asserts the waits between requests. */
async function assertRetries(t, fail, waits, what) {
  const { srv, m } = setup(t, { r: 0.25 });
  srv.tokenReply = fail;
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 86_400 });
  await m.refresh().catch(() => {});
  assert.equal(srv.tokenCalls.length, 1);
  for (const [i, w] of waits.entries()) await nextCallAfter(t, srv, i + 2, w, what);
}

const LIFETIMES_S = [5, 10, 60, 100, 200, 300, 3_600, 86_400];
const checked = new Set();
const row = (key, fn) => {
  checked.add(key);
  test(`policy ${key}: ${value(key)}`, fn);
};

row("refresh.start", async (t) => {
  for (const life of LIFETIMES_S) {
    await t.test(`lifetime ${life} s`, async (t) => {
      const { srv, m } = setup(t);
      m.start({ access_token: "at0", refresh_token: "rt0", expires_in: life });
      await nextCallAfter(t, srv, 1, evaluate(value("refresh.start"), { lifetime: life * 1000 }), `lifetime ${life} s`);
    });
  }
});

row("refresh.jitter", async (t) => {
  for (const life of LIFETIMES_S) {
    await t.test(`lifetime ${life} s, random 0.5`, async (t) => {
      const { srv, m } = setup(t, { r: 0.5 });
      m.start({ access_token: "at0", refresh_token: "rt0", expires_in: life });
      const lifetime = life * 1000;
      const start = evaluate(value("refresh.start"), { lifetime });
      const most = evaluate(value("refresh.jitter"), { lifetime, lead: lifetime - start });
      await nextCallAfter(t, srv, 1, start - 0.5 * most, `lifetime ${life} s`);
    });
  }
});

row("expiry.margin", async (t) => {
  for (const life of LIFETIMES_S) {
    await t.test(`lifetime ${life} s`, async (t) => {
      const { srv, m } = setup(t);
      const hang = deferred();
      srv.tokenReply = () => hang.promise; // the refresh stays in flight
      m.start({ access_token: "at0", refresh_token: "rt0", expires_in: life });
      const until = whole(life * 1000 - evaluate(value("expiry.margin"), { lifetime: life * 1000 }));
      await tick(t, until - 1);
      assert.equal(await settled(m.getAccessToken()), "at0", `handed out ${until - 1} ms after the start`);
      await tick(t, 1);
      assert.equal(await settled(m.getAccessToken()), "pending", `not handed out ${until} ms after the start`);
    });
  }
});

const answered = () => json(500, { error: "server_error" });
row("backoff.base", async (t) => {
  assert.equal(web.BACKOFF_BASE_MS, evaluate(value("backoff.base")));
  await assertRetries(t, answered, backoffWaits(2, 0.25, Infinity), "500 server_error");
});
row("backoff.cap", async (t) => {
  const cap = evaluate(value("backoff.cap"));
  assert.equal(web.BACKOFF_CAP_MS, cap);
  await assertRetries(t, answered, backoffWaits(9, 0.25, cap), "500 server_error");
});
row("backoff.jitter", async (t) => {
  await assertRetries(t, answered, backoffWaits(4, 0.25, evaluate(value("backoff.cap"))), "500 server_error");
});

row("backoff.unanswered-cap", async (t) => {
  // Nobody answered: fetch rejects (connection refused, DNS, offline), or a gateway's bare 502/503/504.
  const cap = evaluate(value("backoff.unanswered-cap"));
  const waits = backoffWaits(9, 0.25, cap);
  assert.ok(Math.max(...waits) <= 5_000, "retries at most 5 s apart");
  await t.test("fetch rejects with TypeError", (t) =>
    assertRetries(t, () => Promise.reject(new TypeError("Failed to fetch")), waits, "TypeError"));
  for (const status of [502, 503, 504]) {
    await t.test(`bare ${status}`, (t) => assertRetries(t, () => new Response(null, { status }), waits, `bare ${status}`));
  }
});

row("retry-after.statuses", async (t) => {
  const honoured = [];
  for (const status of [408, 429, 500, 502, 503, 504]) {
    await t.test(`${status} with Retry-After: 7`, async (t) => {
      const { srv, m } = setup(t, { r: 0.5 });
      srv.tokenReply = () => (srv.tokenCalls.length === 1 ? json(status, { error: "temporarily_unavailable" }, { "Retry-After": "7" }) : srv.issue());
      m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 86_400 });
      await m.refresh().catch(() => {});
      await tick(t, 500); // the plain backoff: random 0.5 of 1 s
      if (srv.tokenCalls.length === 2) return;
      await nextCallAfter(t, srv, 2, 6_500, `${status}`);
      honoured.push(status);
    });
  }
  const v = value("retry-after.statuses");
  assert.deepEqual(honoured, v === "any" ? [408, 429, 500, 502, 503, 504] : v.split(",").map(Number));
});

row("retry-after.cap", async (t) => {
  const { srv, m } = setup(t, { r: 0.5 });
  srv.tokenReply = () => (srv.tokenCalls.length === 1 ? json(503, { error: "temporarily_unavailable" }, { "Retry-After": "86400" }) : srv.issue());
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 86_400 * 2 });
  await m.refresh().catch(() => {});
  await nextCallAfter(t, srv, 2, evaluate(value("retry-after.cap")), "Retry-After: 86400");
});

row("retry-after.clock", async (t) => {
  // The answer's Date is an hour ahead of the client's clock, its Retry-After 7 s ahead.
  const { srv, m } = setup(t, { r: 0.5 });
  const date = (ms) => new Date(T0 + ms).toUTCString();
  srv.tokenReply = () =>
    srv.tokenCalls.length === 1 ? json(503, { error: "temporarily_unavailable" }, { "Retry-After": date(7_000), Date: date(3_600_000) }) : srv.issue();
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 86_400 });
  await m.refresh().catch(() => {});
  const wait = { "client clock": 7_000, "Date header": 500 }[value("retry-after.clock")];
  assert.ok(wait !== undefined, value("retry-after.clock"));
  await nextCallAfter(t, srv, 2, wait, "HTTP-date");
});

row("fetch.timeout", async (t) => {
  const { srv, m } = setup(t);
  srv.tokenReply = () => new Promise(() => {}); // never answers
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 86_400 });
  const p = m.refresh();
  p.catch(() => {});
  await flush(); // the request is sent
  assert.equal(srv.tokenCalls.length, 1);
  const v = value("fetch.timeout");
  if (v === "none") {
    await tick(t, 3_600_000);
    assert.equal(await settled(p), "pending", "a hung request is still awaited after an hour");
    assert.equal(srv.tokenCalls.length, 1);
  } else {
    const d = evaluate(v);
    await tick(t, d - 1);
    assert.equal(await settled(p), "pending");
    await tick(t, 1);
    assert.notEqual(await settled(p), "pending", `given up after ${d} ms`);
  }
});

/** Closes every socket as it opens (code 1006) and asserts the waits between connects for random r. */
async function assertReconnects(t, r) {
  t.mock.timers.enable({ apis: ["setTimeout", "Date"], now: T0 });
  const srv = fakeServer();
  const m = new TokenManager({ tokenEndpoint: TOKEN, clientId: "spa", fetch: srv.fetch, random: () => 0, events: null, crossTab: false });
  m.start({ access_token: "at0", refresh_token: "rt0", expires_in: 86_400 });
  const { WS, sockets } = fakeWebSocket();
  const s = tokenSocket("wss://api.test/ws", m, { WebSocket: WS, random: () => r });
  t.after(() => (s.close(), m.close()));
  await flush();
  const base = evaluate(value("socket.backoff.base"));
  const cap = evaluate(value("socket.backoff.cap"));
  const jitter = value("socket.backoff.jitter");
  for (let k = 0; k < 9; k++) {
    const c = Math.min(cap, base * 2 ** k);
    const wait = jitter === "full" ? r * c : c / 2 + (r * c) / 2;
    sockets.at(-1).serverClose(1006);
    await tick(t, whole(wait) - 1);
    assert.equal(sockets.length, k + 1, `no reconnect before ${wait} ms (failure ${k + 1})`);
    await tick(t, 1);
    assert.equal(sockets.length, k + 2, `reconnect at ${wait} ms (failure ${k + 1})`);
  }
}

row("socket.backoff.base", async (t) => {
  assert.equal(web.SOCKET_BACKOFF_BASE_MS, evaluate(value("socket.backoff.base")));
  await assertReconnects(t, 0);
});
row("socket.backoff.cap", async (t) => {
  assert.equal(web.SOCKET_BACKOFF_CAP_MS, evaluate(value("socket.backoff.cap")));
  await assertReconnects(t, 0.999);
});
row("socket.backoff.jitter", (t) => assertReconnects(t, 0.5));
row("socket.stable", () => {
  // socket.test.mjs checks that the count starts again after a connection stayed open this long.
  assert.equal(web.SOCKET_STABLE_MS, evaluate(value("socket.stable")));
});

for (const [key, name] of [
  ["socket.ping-interval", "SOCKET_PING_INTERVAL_MS"],
  ["socket.pong-timeout", "SOCKET_PONG_TIMEOUT_MS"],
]) {
  row(key, (t) => {
    if (web[name] === undefined) return t.skip(`@tokend/web exports no ${name} yet; the table says ${value(key)}`);
    assert.equal(web[name], evaluate(value(key)));
  });
}

test("policy: every row of the table is checked here", () => {
  assert.deepEqual([...table.keys()].filter((k) => !checked.has(k)), []);
});

test("policy: the expression reader", () => {
  const vars = { lifetime: 3_600_000, lead: 600_000 };
  assert.equal(evaluate("250ms"), 250);
  assert.equal(evaluate("1m"), 60_000);
  assert.equal(evaluate("min(10s, lifetime/10)", vars), 10_000);
  assert.equal(evaluate("min(0.8×lifetime, max(lifetime-60s, 0.5×lifetime))", vars), 2_880_000);
  assert.equal(evaluate("0.1×lead", vars), 60_000);
  assert.equal(evaluate("(1s + 2s) * 2"), 6_000);
  for (const bad of ["5x", "min(1s)", "(1s", "life", "1s 2s"]) assert.throws(() => evaluate(bad, vars), bad);
});

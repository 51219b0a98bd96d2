// tokenSocket across a relay that stops forwarding without closing (the
// harness's wsRelay origin and POST /ws-stall): the page notices the dead
// path exactly 25 s + 10 s after the last pong, reports the sends made
// during the stall as undelivered, and reconnects. The page clock
// (Playwright's fake clock, paused) stands for the waiting.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { browserMissing, needs, startStack, until } from "./setup.mjs";

const skip = browserMissing() || false;
const INTERVAL = 25_000; // SOCKET_PING_INTERVAL_MS
const TIMEOUT = 10_000; // SOCKET_PONG_TIMEOUT_MS

describe("tokenSocket liveness", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  test("h. a stalled relay: dead within 25 s + 10 s, the stalled sends reported undelivered, a reconnect", async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    if (!stack.origins.wsRelay) return t.skip("harness without wsRelay");
    const ctx = await stack.browser.newContext();
    t.after(() => ctx.close());
    await ctx.clock.install({ time: Date.now() });
    const page = await stack.open(ctx);
    await ctx.clock.pauseAt(Date.now() + 1000);
    const minted = await stack.mint("hana", "spa", 0);
    await stack.reset();
    const state = () => page.evaluate(() => window.h.state);
    await page.evaluate(({ auth, tokens, ws }) => {
      window.h.start({ auth, clientId: "spa", tokens });
      return window.h.watchedSocket(ws);
    }, { auth: stack.origins.auth, ws: stack.origins.wsRelay, tokens: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: minted.expires_in, token_type: "Bearer" } });
    await until(async () => (await state()).pongs >= 1, "the pong to the ping sent on open");

    // Sent and echoed, then confirmed by the next ping's pong.
    await page.evaluate(() => window.h.sendPaced("a", 3, 0));
    await until(async () => (await state()).received.length === 3, "3 echoes");
    await ctx.clock.runFor(INTERVAL);
    await until(async () => (await state()).pongs >= 2, "the pong to the second ping");

    assert.deepEqual(await (await stack.control("/ws-stall")).json(), { stalled: 1 });
    await page.evaluate(() => window.h.sendPaced("s", 5, 0));
    await ctx.clock.runFor(INTERVAL + TIMEOUT - 1);
    let s = await state();
    assert.deepEqual(s.socketEvents, ["open"], "alive until 35 s after the last pong");
    assert.deepEqual(s.undelivered, []);
    await ctx.clock.runFor(1);
    s = await state();
    assert.deepEqual(s.socketEvents, ["open", "close:4000"], "dead exactly 25 s + 10 s after the last pong");
    assert.deepEqual(s.undelivered, ["s000", "s001", "s002", "s003", "s004"], "the stalled sends, and only they");
    assert.equal(s.pongs, 2);

    // The reconnect, after the first backoff step (at most 250 ms), through the same relay.
    await ctx.clock.runFor(250);
    await until(async () => (await state()).socketEvents.length === 3, "the reconnect");
    await page.evaluate(() => window.h.sendPaced("b", 1, 0));
    await until(async () => (await state()).received.at(-1) === "b000", "an echo on the new connection");
    s = await state();
    assert.deepEqual(s.socketEvents, ["open", "close:4000", "open"]);
    assert.deepEqual(s.received, ["a000", "a001", "a002", "b000"]);
    const log = await stack.wsLog();
    assert.equal(log.connections.length, 2);
    assert.ok(log.connections.every((c) => c.subject === "hana" && c.via === "subprotocol"), JSON.stringify(log.connections));
    assert.deepEqual(log.messages.map((m) => m.data), ["a000", "a001", "a002", "b000"], "no stalled send reached the server, none was sent again");
    assert.deepEqual(log.messages.map((m) => m.conn), [1, 1, 1, 2]);
  });
});

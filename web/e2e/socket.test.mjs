// tokenSocket against wsconn.Handler (web.md, "WebSocket"): the token comes
// as a subprotocol, is renewed while connected, and a 4001 close leads to
// one immediate reconnect. Real time: the server's expiry clock is real, so
// this file runs tokend with 5 s access tokens.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { browserMissing, needs, startStack, until } from "./setup.mjs";

const skip = browserMissing() || false;
const TTL = 5;

describe("tokenSocket", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack({ accessTTL: TTL });
    await stack.launch();
  });
  after(async () => stack?.stop());

  test("f. 200 messages across a token expiry arrive once, in order; a 4001 close reconnects once, at once", async (t) => {
    const why = needs(stack, "lib", "origins");
    if (why) return t.skip(why);
    const ctx = await stack.browser.newContext();
    t.after(() => ctx.close());
    const page = await stack.open(ctx);
    const minted = await stack.mint("frank", "spa", 0);
    // The whole seconds left when the answer was written: the TTL, or one
    // less if a second boundary passed between issuing and answering.
    assert.ok(minted.expires_in === TTL || minted.expires_in === TTL - 1, `expires_in ${minted.expires_in}, TTL ${TTL}`);
    await stack.reset();
    await page.evaluate(({ auth, tokens, ws }) => {
      window.h.start({ auth, clientId: "spa", tokens, refreshLeadMs: 1000 });
      return window.h.socket(ws);
    }, { auth: stack.origins.auth, ws: stack.origins.ws, tokens: { access_token: minted.access_token, refresh_token: minted.refresh_token, expires_in: minted.expires_in, token_type: "Bearer" } });

    // 200 messages over 8 s: the first token ends (5 s) while they flow.
    const want = Array.from({ length: 200 }, (_, i) => "m" + String(i).padStart(3, "0"));
    await page.evaluate(() => window.h.sendPaced("m", 200, 40));
    await until(async () => (await page.evaluate(() => window.h.state.received.length)) >= 200, "200 echoes", 20_000);
    const log = await stack.wsLog();
    assert.deepEqual(log.messages.map((m) => m.data), want, "the server got each message once, in order");
    assert.deepEqual(await page.evaluate(() => window.h.state.received), want, "the app saw only its echoes (no tokend.* messages)");
    assert.ok(log.connections.every((c) => c.protocol === "tokend" && c.via === "subprotocol"), JSON.stringify(log.connections));
    const jtis = new Set(log.connections.flatMap((c) => c.jtis));
    assert.ok(jtis.size >= 2, `the token was renewed in band or on a reconnect (token IDs seen: ${jtis.size})`);
    assert.ok(log.connections.every((c) => c.close_code !== 4001), "no connection ended for an expired token");
    t.diagnostic(`socket: ${log.connections.length} connection(s), token IDs per connection ${log.connections.map((c) => c.jtis.length).join(",")}`);

    // Server closes 4001 on an open socket: exactly one immediate reconnect.
    const before = log.connections.length;
    assert.deepEqual(await stack.wsClose(4001, "invalid_token"), { closed: 1 });
    const after = await until(async () => { const l = await stack.wsLog(); return l.connections.length > before && l.connections.at(-1).closed_ms === 0 && l; }, "the reconnect");
    await page.evaluate(() => window.h.sendPaced("after", 1, 0));
    await until(async () => (await page.evaluate(() => window.h.state.received.at(-1))) === "after000", "the echo on the new socket");
    const final = await stack.wsLog();
    assert.equal(final.connections.length, before + 1, "exactly one reconnect");
    const closed = final.connections[before - 1], fresh = final.connections[before];
    assert.equal(closed.close_code, 4001);
    const gap = fresh.opened_ms - closed.closed_ms;
    assert.ok(gap < 250, `reconnected ${gap} ms after the close, before any backoff (250 ms)`);
    t.diagnostic(`socket: reconnected ${gap} ms after the 4001 close`);
    assert.deepEqual(final.messages.at(-1), { conn: fresh.id, data: "after000" });
    assert.equal(after.connections.at(-1).id, fresh.id);
  });
});

// After a login through tokend's page (login-app.mjs, pages/login-app.js):
// reloads of the callback and of the app page never log the user out (the
// callback URL was cleaned, so no invalid_state reaches the app; the
// manager finds its tokens in session or local storage, or refreshes from
// tokend's cookie in cookie mode; in memory mode a prompt=none login gets
// them back from tokend's session without a page). login-tabs.test.mjs:
// the tabs.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { loginApp, tokenPosts } from "./login-app.mjs";
import { ACCESS_TTL, LOGIN_USER, browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;

describe("after the login: reloads", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());
  let loaded, browser, formLogin, startLogin, callback, tokendPages;
  before(() => ({ loaded, browser, formLogin, startLogin, callback, tokendPages } = loginApp(stack)));

  for (const storage of ["session", "local"]) {
    test(`${storage} storage: reloads after the login (callback, then the app page) never log the user out`, async (t) => {
      const why = needs(stack, "lib", "origins", "login");
      if (why) return t.skip(why);
      const ctx = await browser(t, { clock: true });
      const { page, result } = await formLogin(ctx, "a", storage);
      assert.equal(new URL(page.url()).search, "", "the callback URL was cleaned");
      await stack.reset();

      await page.reload();
      let r = await loaded(page);
      assert.deepEqual({ error: r.error, redirect: r.redirect, reauth: r.reauth }, { error: null, redirect: null, reauth: 0 }, "reload of the callback: nothing to finish, no invalid_state");
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });

      await page.goto(stack.origins.app + result.redirect.returnTo);
      r = await loaded(page);
      assert.deepEqual({ error: r.error, reauth: r.reauth }, { error: null, reauth: 0 });
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
      await page.reload();
      r = await loaded(page);
      assert.deepEqual({ error: r.error, reauth: r.reauth }, { error: null, reauth: 0 }, "reload of the app page");
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });

      let log = await stack.authLog({ settled: true });
      assert.deepEqual(log.filter((e) => e.path === "/oauth/authorize" || e.path === "/oauth/token").map((e) => e.path), [], "no new login, no token request: the stored tokens served");

      // Past the access token's expiry the stored refresh token still works.
      const now = await page.evaluate(() => Date.now());
      await ctx.clock.setSystemTime(now + (ACCESS_TTL + 60) * 1000);
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
      log = await stack.authLog({ settled: true });
      assert.deepEqual(tokenPosts(log, "refresh_token").map((e) => e.status), [200]);
      assert.equal(await page.evaluate(() => window.app.result.reauth), 0);
    });
  }

  test("cookie mode (memory storage): reloads after the login refresh from tokend's cookie, never log the user out", async (t) => {
    const why = needs(stack, "lib", "origins", "login", "cookie");
    if (why) return t.skip(why);
    const ctx = await browser(t, { clock: true });
    const { page, result } = await formLogin(ctx, "c", "memory"); // only the cookie outlives a reload
    assert.equal(result.redirect.refreshToken, false, "the exchange's answer kept the refresh token out of the page");
    assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
    for (const where of ["callback", "app page"]) {
      if (where === "app page") await page.goto(stack.origins.app + result.redirect.returnTo);
      await stack.reset();
      await page.reload();
      const r = await loaded(page);
      assert.deepEqual({ error: r.error, redirect: r.redirect, reauth: r.reauth }, { error: null, redirect: null, reauth: 0 }, `reload of the ${where}`);
      assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
      const log = await stack.authLog({ settled: true });
      assert.deepEqual(log.filter((e) => e.path === "/oauth/authorize" || e.path === "/oauth/token").map((e) => [e.path, e.grant_type, e.cookie, e.refresh_param, e.status]),
        [["/oauth/token", "refresh_token", true, false, 200]], `reload of the ${where}: one refresh by the cookie, no new login`);
    }
  });

  test("memory storage: a reload forgets the tokens, and login({ prompt: 'none' }) gets new ones from tokend's session without a page", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await browser(t, { clock: true });
    const { page } = await formLogin(ctx, "a", "memory");
    await page.reload();
    const r = await loaded(page);
    assert.deepEqual({ error: r.error, redirect: r.redirect, reauth: r.reauth }, { error: null, redirect: null, reauth: 0 }, "reload of the callback: no invalid_state");
    await stack.reset();
    page.rendered.length = 0;
    await startLogin(page, { prompt: "none" });
    const again = await callback(page, "a");
    assert.equal(again.error, null);
    assert.equal(again.redirect.sub, LOGIN_USER.name);
    assert.deepEqual(tokendPages(page), [], "no page of tokend was rendered");
    assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
    const log = await stack.authLog({ settled: true });
    assert.deepEqual(log.filter((e) => e.path === "/oauth/authorize" || e.path === "/login").map((e) => [e.path, e.status]), [["/oauth/authorize", 302]]);
  });
});

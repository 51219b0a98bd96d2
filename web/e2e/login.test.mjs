// The browser login (issue #19) in Chromium against a real `tokend serve`:
// an app page calls login() from @tokend/web/login (web/dist), the user
// types on tokend's own login page with the keyboard alone, and the app's
// callback page calls handleRedirect(), which starts the TokenManager
// (pages/login-app.js). Two apps on two origins (login-a on app, login-b
// on app2) share the browser session at tokend. Nothing waits by sleeping:
// the tests wait for navigations and selectors, and count requests at the
// harness's auth proxy.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { loginApp, tokenPosts } from "./login-app.mjs";
import { LOGIN_USER, browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;

describe("login through tokend's page", { skip }, () => {
  let stack;
  before(async () => {
    stack = await startStack();
    await stack.launch();
  });
  after(async () => stack?.stop());

  let appURL, browser, openApp, startLogin, callback, tokendPages, typeLogin, formLogin;
  before(() => ({ appURL, browser, openApp, startLogin, callback, tokendPages, typeLogin, formLogin } = loginApp(stack)));

  test("keyboard only: app page → login() → tokend's form typed in → callback → handleRedirect starts the manager, API call 200", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await browser(t);
    await stack.reset();
    const page = await openApp(ctx, "a");
    await startLogin(page);
    await page.waitForURL((u) => u.href.startsWith(stack.origins.auth + "/oauth/authorize?"));
    const form = page.rendered.at(-1);
    assert.equal(form.status, 200, "tokend rendered its login page");
    await typeLogin(page);
    const r = await callback(page, "a");

    assert.equal(r.error, null);
    assert.deepEqual({ ...r.redirect, sid: !!r.redirect.sid }, {
      sub: LOGIN_USER.name, sid: true, idToken: true, refreshToken: true,
      returnTo: new URL(appURL("a")).pathname + new URL(appURL("a")).search,
    });
    assert.equal(new URL(page.url()).search, "", "the callback URL was cleaned of code, state and iss");
    assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
    assert.equal(r.reauth, 0);

    // The form's POST was answered by redirects to the app's origin
    // (tokend's /oauth/authorize, then the callback), which Chromium let
    // through: the page's form-action names the app's origin.
    const log = await stack.authLog({ settled: true });
    const post = log.findIndex((e) => e.method === "POST" && e.path === "/login");
    assert.ok(post >= 0, "the form was posted to tokend");
    assert.deepEqual(log.slice(post, post + 2).map((e) => [e.method, e.path, e.status]), [["POST", "/login", 303], ["GET", "/oauth/authorize", 302]]);
    assert.ok(log[post].set_cookie.startsWith("tokend_session=…"), `the login set the session cookie: ${log[post].set_cookie}`);
    assert.deepEqual(page.csp, [], "no CSP violation reported");
    assert.deepEqual(tokenPosts(log, "authorization_code").map((e) => [e.client_id, e.origin, e.status]), [["login-a", stack.origins.app, 200]]);
  });

  test("single sign-on: after app A's login, app B on another origin gets a code without the form", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await browser(t);
    const a = await formLogin(ctx, "a");
    await stack.reset();
    const page = await openApp(ctx, "b");
    await startLogin(page);
    const r = await callback(page, "b");

    assert.equal(r.error, null);
    assert.equal(r.redirect.sub, LOGIN_USER.name);
    assert.equal(r.redirect.sid, a.result.redirect.sid, "the same browser session at tokend");
    assert.deepEqual(tokendPages(page), [], "no page of tokend was rendered for app B");
    const log = await stack.authLog({ settled: true });
    assert.deepEqual(log.filter((e) => e.path === "/oauth/authorize").map((e) => e.status), [302], "the authorization request was answered by a redirect");
    assert.equal(log.filter((e) => e.path === "/login").length, 0, "no login form was posted");
    assert.deepEqual(tokenPosts(log, "authorization_code").map((e) => [e.client_id, e.origin, e.status]), [["login-b", stack.origins.app2, 200]]);
    assert.equal(await page.$("input[type=password]"), null);
  });

  test("prompt=none without a session: the app gets login_required from handleRedirect, and no page", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await browser(t);
    await stack.reset();
    const page = await openApp(ctx, "a");
    await startLogin(page, { prompt: "none" });
    const r = await callback(page, "a");

    assert.equal(r.redirect, null);
    assert.deepEqual({ name: r.error?.name, error: r.error?.error }, { name: "OAuthError", error: "login_required" });
    assert.equal(new URL(page.url()).search, "", "the error response was cleaned from the URL");
    assert.deepEqual(tokendPages(page), [], "tokend rendered no page");
    const log = await stack.authLog({ settled: true });
    assert.equal(tokenPosts(log, "authorization_code").length, 0, "no code to exchange");
  });

  test("logout with end_families ends the session and only A's families: B keeps its family but gets no code silently; A's next login shows the form", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await browser(t);
    const { page: pageA } = await formLogin(ctx, "a");
    const pageB = await openApp(ctx, "b");
    await startLogin(pageB);
    assert.equal((await callback(pageB, "b")).error, null, "B logged in by single sign-on");
    assert.equal((await pageB.evaluate(() => window.app.refresh())).error, undefined, "B's refresh token works before the logout");

    await stack.reset();
    await pageA.evaluate(() => { void window.app.logout({ endFamilies: true }); });
    await pageA.waitForURL((u) => u.href.startsWith(stack.origins.auth + "/oauth/logout?"));
    await pageA.waitForLoadState();
    let log = await stack.authLog({ settled: true });
    assert.deepEqual(log.filter((e) => e.path === "/oauth/revoke").map((e) => [e.client_id, e.status]), [["login-a", 200]], "the manager revoked A's refresh token");
    const out = log.filter((e) => e.path === "/oauth/logout");
    assert.deepEqual(out.map((e) => e.status), [200], "tokend's logged-out page, no confirmation (the ID token hint names the session)");
    assert.ok(out[0].set_cookie.startsWith("tokend_session=…;") && /Max-Age=0/i.test(out[0].set_cookie), `the session cookie is cleared: ${out[0].set_cookie}`);

    // B's family is another app's: end_families never ends it (each app
    // ends its own), but the ended session gives B no new code silently.
    await stack.reset();
    const b = await pageB.evaluate(() => window.app.refresh());
    assert.equal(b.error, undefined, JSON.stringify(b));
    log = await stack.authLog({ settled: true });
    assert.deepEqual(tokenPosts(log, "refresh_token").map((e) => [e.client_id, e.status]), [["login-b", 200]]);
    await startLogin(pageB, { prompt: "none" });
    const silent = await callback(pageB, "b");
    assert.deepEqual({ name: silent.error?.name, error: silent.error?.error }, { name: "OAuthError", error: "login_required" }, "the session has ended");

    // A's next login shows the form again.
    await stack.reset();
    const again = await openApp(ctx, "a");
    await startLogin(again);
    await again.waitForSelector("input#password");
    assert.equal(tokendPages(again).at(-1)?.status, 200, "the login page");
    await typeLogin(again);
    assert.equal((await callback(again, "a")).error, null, "and logs in again");
  });
});

// tokend's login page under attack, in Chromium (the browser, not only the
// headers): its Content-Security-Policy lets the form's POST be answered by
// redirects to the client's redirect URI on another origin (form-action
// names it) and no further; the page refuses to be framed (frame-ancestors
// 'none', X-Frame-Options DENY); and a login form posted by another site
// (login CSRF) does not log the browser in.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { after, before, describe, test } from "node:test";

import { loginApp, tokenPosts } from "./login-app.mjs";
import { LOGIN_CALLBACK, LOGIN_USER, browserMissing, needs, startStack } from "./setup.mjs";

const skip = browserMissing() || false;

describe("the login page in the browser: CSP, framing, login CSRF", { skip }, () => {
  let stack, h;
  before(async () => {
    stack = await startStack();
    await stack.launch();
    h = loginApp(stack);
  });
  after(async () => stack?.stop());

  /** A valid authorization request of login-a (S256 challenge of a fresh verifier). */
  function authorizeURL() {
    const b64 = (b) => b.toString("base64url");
    const challenge = b64(createHash("sha256").update(b64(randomBytes(32))).digest());
    return `${stack.origins.auth}/oauth/authorize?` + new URLSearchParams({
      response_type: "code", client_id: "login-a", redirect_uri: stack.origins.app + LOGIN_CALLBACK, scope: "openid",
      state: b64(randomBytes(16)), nonce: b64(randomBytes(16)), code_challenge: challenge, code_challenge_method: "S256",
    });
  }

  test("CSP form-action: the form's POST is redirected to the app's callback on another origin, and Chromium follows", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await h.browser(t);
    const page = await h.openApp(ctx, "a");
    const form = page.waitForResponse((r) => r.url().startsWith(stack.origins.auth + "/oauth/authorize?") && r.status() === 200);
    await h.startLogin(page);
    const csp = (await (await form).allHeaders())["content-security-policy"];
    const formAction = csp.split(";").map((d) => d.trim()).find((d) => d.startsWith("form-action "));
    assert.deepEqual(formAction.split(" ").slice(1), ["'self'", stack.origins.app], "form-action: tokend itself and the app's origin only");
    assert.notEqual(new URL(stack.origins.app).origin, new URL(stack.origins.auth).origin, "the app is on another origin than tokend");

    await stack.reset();
    await h.typeLogin(page);
    const r = await h.callback(page, "a");
    assert.equal(r.error, null);
    const log = await stack.authLog({ settled: true });
    assert.deepEqual(log.filter((e) => e.path === "/login" || e.path === "/oauth/authorize").map((e) => [e.method, e.path, e.status]),
      [["POST", "/login", 303], ["GET", "/oauth/authorize", 302]], "the POST was answered by tokend's redirects");
    assert.deepEqual(tokenPosts(log, "authorization_code").map((e) => e.status), [200], "the callback got the code and exchanged it");
    assert.deepEqual(page.csp, [], "Chromium reported no CSP violation");
    assert.deepEqual(await page.evaluate(() => window.app.call()), { status: 200, subject: LOGIN_USER.name });
  });

  test("framing: an app page embedding /oauth/authorize in an iframe gets no login form", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    const ctx = await h.browser(t);
    const page = await h.tab(ctx);

    // The control: a page of another origin in the same iframe is shown,
    // and the test reads into it.
    const control = `${stack.origins.app2}${LOGIN_CALLBACK}`;
    await page.goto(`${stack.origins.app}/login-frame.html?` + new URLSearchParams({ src: control }));
    const shown = await page.waitForSelector("iframe#victim").then((el) => el.contentFrame());
    await shown.waitForSelector("text=handleRedirect");
    assert.equal(shown.url(), control);

    const url = authorizeURL();
    const answered = page.waitForResponse((r) => r.url() === url);
    await page.goto(`${stack.origins.app}/login-frame.html?` + new URLSearchParams({ src: url }));
    const res = await answered;
    assert.equal(res.status(), 200, "tokend answered the framed request with its login page");
    const headers = await res.allHeaders();
    assert.equal(headers["x-frame-options"], "DENY");
    assert.match(headers["content-security-policy"], /frame-ancestors 'none'/);
    await page.waitForLoadState("load");
    const frame = await (await page.$("iframe#victim")).contentFrame();
    assert.ok(!frame.url().startsWith(stack.origins.auth), `the frame does not show tokend: ${frame.url()}`);
    assert.equal(await frame.$("input"), null, "no form field in the frame");
    assert.ok(page.csp.some((m) => m.includes("frame-ancestors")), `Chromium reported the blocked frame: ${page.csp}`);
  });

  test("login CSRF: another site's page posting the login form does not log the browser in", async (t) => {
    const why = needs(stack, "lib", "origins", "login");
    if (why) return t.skip(why);
    // The attacker loads the form in their own browser: valid fields, a
    // CSRF token for their browser, and the user's real credentials.
    const attacker = await h.browser(t);
    const ap = await h.openApp(attacker, "a");
    await h.startLogin(ap);
    await ap.waitForSelector("input#password");
    const action = await ap.$eval("form", (f) => f.action);
    const fields = [...await ap.$$eval("form input[type=hidden]", (els) => els.map((e) => [e.name, e.value])),
      ["username", LOGIN_USER.name], ["password", LOGIN_USER.password]];
    assert.ok(fields.some(([k]) => k === "csrf_token"), "the form has a CSRF token");
    const csrfPage = `${stack.origins.other}/login-csrf.html?` + new URLSearchParams({ action, fields: JSON.stringify(fields) });

    /** Opens the attacker's page in ctx and returns tokend's answer to the POST it makes. */
    async function attack(ctx) {
      const page = await h.tab(ctx);
      const posted = page.waitForResponse((r) => r.url() === action && r.request().method() === "POST");
      await page.goto(csrfPage);
      const res = await posted;
      return { page, status: res.status() };
    }

    for (const visited of [false, true]) {
      const ctx = await h.browser(t);
      if (visited) {
        // The victim's browser has its own CSRF cookie from tokend's form.
        const own = await h.openApp(ctx, "a");
        await h.startLogin(own);
        await own.waitForSelector("input#password");
        await own.close();
      }
      await stack.reset();
      const { page, status } = await attack(ctx);
      assert.equal(status, 403, `victim ${visited ? "with" : "without"} tokend's CSRF cookie: the form is refused`);
      await page.waitForSelector("#alert");
      const log = await stack.authLog({ settled: true });
      assert.deepEqual(log.filter((e) => e.path === "/login").map((e) => [e.status, e.set_cookie.startsWith("tokend_session=")]), [[403, false]], "no session cookie set");
      assert.equal(log.filter((e) => e.path === "/oauth/authorize").length, 0, "not sent on to the authorization endpoint");
      const err = await h.silentLogin(ctx, "a");
      assert.equal(err?.error, "login_required", "the next prompt=none login finds no session");
    }

    // The same fields from the browser they were made for do log in: the
    // refusal above is the form's binding to its browser.
    await stack.reset();
    assert.equal((await attack(attacker)).status, 303);
    const log = await stack.authLog({ settled: true });
    assert.ok(log.find((e) => e.path === "/login").set_cookie.startsWith("tokend_session="));
  });
});

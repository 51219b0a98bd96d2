// An independent relying party against a real tokend: the Go program
// web/e2e/rp-go (github.com/coreos/go-oidc/v3 with golang.org/x/oauth2, a
// confidential client) runs discovery, prints its authorization URL, and
// after the login page (driven here in Chromium) exchanges the code with
// PKCE, verifies the ID token with go-oidc (RS256 against the JWKS, nonce,
// at_hash), refreshes, calls userinfo and prints a summary with its
// end-session URL, which the browser then follows.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { browserMissing, startProcess, rpSuite, USER } from "./rp-setup.mjs";

const skip = browserMissing() || false;

describe("go-oidc with x/oauth2 as a relying party", { skip }, () => {
  const suite = rpSuite();

  test("discovery → login page → code with PKCE → verified ID token → refresh → userinfo → logout", async () => {
    const { stack, rp, page } = suite;
    const prog = startProcess(stack.bin("rp-go"), [
      "-issuer", stack.issuer, "-client-id", "rp-go", "-post-logout-redirect-uri", `${rp.base}/logged-out`,
    ], { env: { ...process.env, RP_CLIENT_SECRET: stack.secrets["rp-go"] } });
    try {
      const authURL = new URL(JSON.parse((await prog.wait(/^\{"auth_url".*\}$/, "the authorization URL"))[0]).auth_url);
      assert.equal(authURL.origin + authURL.pathname, stack.issuer + "/oauth/authorize");
      assert.equal(authURL.searchParams.get("code_challenge_method"), "S256");
      assert.ok(authURL.searchParams.get("nonce"));

      await page.goto(authURL.href);
      await stack.login(page);
      const s = JSON.parse((await prog.wait(/^\{"id_token_verified".*\}$/, "the summary"))[0]);
      assert.equal(await prog.exited, 0, `rp-go failed: ${prog.out.stderr}`);
      await page.waitForURL((u) => u.pathname === "/callback" && u.port !== new URL(stack.issuer).port);

      assert.equal(s.id_token_verified, true);
      assert.equal(s.sub, USER.name);
      assert.equal(s.nonce_matched, true);
      assert.equal(s.at_hash_ok, true, "at_hash matches the access token");
      assert.equal(s.id_claims.iss, stack.issuer);
      assert.equal(s.id_claims.aud, "rp-go");
      assert.ok(s.id_claims.sid, "the ID token names the browser session");
      assert.equal(s.had_refresh_token, true);
      assert.equal(s.refreshed_access_differs, true, "the refresh gave a new access token");
      assert.equal(s.refresh_token_rotated, true, "the refresh token rotated");
      assert.equal(s.userinfo_sub, USER.name);

      // Single sign-on holds until the logout...
      const sso = await stack.promptNone(page, "rp-go", rp);
      assert.ok(sso.params.get("code"), "prompt=none with a session gets a code");

      // ...which, with the ID token as hint, needs no confirmation page.
      const end = new URL(s.end_session_url);
      assert.equal(end.origin + end.pathname, stack.issuer + "/oauth/logout");
      const back = rp.next("/logged-out");
      await page.goto(end.href);
      assert.equal((await back).searchParams.get("state"), s.logout_state);

      const none = await stack.promptNone(page, "rp-go", rp);
      assert.equal(none.params.get("error"), "login_required", "the session at tokend ended");
      assert.equal(none.params.get("state"), none.state);
    } finally {
      if (prog.child.exitCode === null) prog.child.kill("SIGTERM");
      await prog.exited;
    }
  });
});

// An independent relying party against a real tokend: panva's
// openid-client (npm), a certified OpenID Connect RP library, runs the
// whole code flow as a public client — discovery, authorization (the
// login page driven in Chromium), the code exchange with PKCE, ID token
// validation (its claims and, with non-repudiation checks, its RS256
// signature against the JWKS), refresh, userinfo and RP-initiated logout.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import * as oidc from "openid-client";

import { browserMissing, rpSuite, USER } from "./rp-setup.mjs";

const skip = browserMissing() || false;

describe("openid-client as a relying party", { skip }, () => {
  const suite = rpSuite();

  test("discovery → login page → code with PKCE → ID token → refresh → userinfo → logout", async () => {
    const { stack, rp, page } = suite;
    // Discovery (OpenID Connect Discovery 1.0); http is allowed only because
    // the issuer is on loopback in this test.
    const config = await oidc.discovery(new URL(stack.issuer), "rp-node", undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests, oidc.enableNonRepudiationChecks],
    });
    const md = config.serverMetadata();
    assert.equal(md.issuer, stack.issuer);
    assert.deepEqual(md.code_challenge_methods_supported, ["S256"]);
    assert.equal(md.authorization_response_iss_parameter_supported, true);

    // Authorization request, as the library builds it.
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const redirectURI = `${rp.base}/callback`;
    const authURL = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectURI, scope: "openid offline_access", state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    });
    const reached = rp.next("/callback");
    await page.goto(authURL.href);
    await stack.login(page);
    const callback = await reached;
    assert.equal(callback.searchParams.get("iss"), stack.issuer, "the iss response parameter (RFC 9207)");

    // The library checks state and iss, sends the verifier, and validates
    // the ID token (iss, aud, azp, nonce, exp, iat, signature).
    const tokens = await oidc.authorizationCodeGrant(config, callback, {
      pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
    });
    const claims = tokens.claims();
    assert.equal(claims.sub, USER.name);
    assert.equal(claims.iss, stack.issuer);
    assert.equal(claims.nonce, nonce);
    assert.ok(claims.sid, "the ID token names the browser session (sid)");
    assert.equal(typeof claims.auth_time, "number");
    assert.ok(tokens.refresh_token, "a refresh token");
    assert.equal(tokens.token_type.toLowerCase(), "bearer");
    // A code is single use: the library's second exchange of it is refused.
    await assert.rejects(
      oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce }),
      (e) => e.error === "invalid_grant",
    );
    // That replay revoked what the first exchange issued (RFC 6749 §4.1.2),
    await assert.rejects(oidc.refreshTokenGrant(config, tokens.refresh_token), (e) => e.error === "invalid_grant");
    // so log in again: the browser's session at tokend answers at once.
    const again = await relogin(config, redirectURI);
    const refreshed = await oidc.refreshTokenGrant(config, again.tokens.refresh_token);
    assert.notEqual(refreshed.refresh_token, again.tokens.refresh_token, "the refresh token rotated");
    assert.notEqual(refreshed.access_token, again.tokens.access_token);

    const info = await oidc.fetchUserInfo(config, refreshed.access_token, USER.name);
    assert.equal(info.sub, USER.name);

    // Before the logout the session logs the user in without a page.
    const sso = await stack.promptNone(page, "rp-node", rp);
    assert.ok(sso.params.get("code"), "prompt=none with a session gets a code");

    // RP-initiated logout with the ID token as hint: no confirmation page,
    // straight back to the registered post-logout URI with the state.
    const logoutState = oidc.randomState();
    const endURL = oidc.buildEndSessionUrl(config, {
      id_token_hint: again.tokens.id_token, post_logout_redirect_uri: `${rp.base}/logged-out`,
      state: logoutState, end_families: "true",
    });
    const back = rp.next("/logged-out");
    await page.goto(endURL.href);
    assert.equal((await back).searchParams.get("state"), logoutState);

    // The session at tokend ended, and with end_families the login's tokens.
    const none = await stack.promptNone(page, "rp-node", rp);
    assert.equal(none.params.get("error"), "login_required");
    assert.equal(none.params.get("state"), none.state);
    assert.equal(none.params.get("iss"), stack.issuer);
    await assert.rejects(oidc.refreshTokenGrant(config, refreshed.refresh_token), (e) => e.error === "invalid_grant");
  });

  /** A second authorization in the same browser: single sign-on, no form. */
  async function relogin(config, redirectURI) {
    const { rp, page } = suite;
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const reached = rp.next("/callback");
    await page.goto(oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectURI, scope: "openid offline_access", state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: "S256",
    }).href);
    const callback = await reached;
    const tokens = await oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state, expectedNonce: nonce });
    assert.equal(tokens.claims().sub, USER.name);
    return { tokens };
  }
});

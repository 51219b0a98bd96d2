// The Go CLI login (package nativelogin, RFC 8252) against a real tokend,
// with a scripted browser: examples/cli-login runs with BROWSER=none, so it
// prints the authorization URL instead of opening a browser; Chromium opens
// that URL and logs in on tokend's page; the CLI's loopback listener gets
// the code, the CLI exchanges it, saves the refresh token and prints the
// access token's claims. A second run resumes from the saved refresh token
// and needs no browser.
import assert from "node:assert/strict";
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { browserMissing, startProcess, startRP, USER } from "./rp-setup.mjs";

const skip = browserMissing() || false;

describe("examples/cli-login in a scripted browser", { skip }, () => {
  let stack, page, env;
  before(async () => {
    stack = await startRP();
    await stack.launch();
    page = await (await stack.browser.newContext()).newPage();
    // The example keeps its refresh token under os.UserConfigDir().
    env = { ...process.env, BROWSER: "none", HOME: stack.tmp, XDG_CONFIG_HOME: join(stack.tmp, "config") };
  });
  after(async () => stack?.stop());

  const runCLI = () => startProcess(stack.bin("cli-login"), ["--issuer", stack.issuer, "--client-id", "cli"], { env });

  /** The saved refresh token file: its path, mode and content. */
  async function saved(out) {
    const path = out.match(/refresh token saved to (\S+)/)?.[1];
    return { path, mode: (await stat(path)).mode & 0o777, token: (await readFile(path, "utf8")).trim() };
  }

  /** The claims the CLI printed: the JSON after "access token claims:". */
  function claims(stdout) {
    const i = stdout.indexOf("access token claims:\n");
    assert.ok(i >= 0, `no claims in ${stdout}`);
    return JSON.parse(stdout.slice(i + "access token claims:\n".length));
  }

  test("first run: login in Chromium, claims printed, refresh token saved; second run resumes without a browser", async () => {
    const first = runCLI();
    let file;
    try {
      const url = new URL((await first.wait(/^\s+(http\S+)$/, "the authorization URL"))[1]);
      assert.equal(url.origin + url.pathname, stack.issuer + "/oauth/authorize");
      assert.equal(url.searchParams.get("client_id"), "cli");
      assert.equal(url.searchParams.get("code_challenge_method"), "S256");
      assert.match(url.searchParams.get("redirect_uri"), /^http:\/\/127\.0\.0\.1:\d+\/callback$/);

      await page.goto(url.href);
      await stack.login(page);
      await page.waitForURL((u) => u.href.startsWith(url.searchParams.get("redirect_uri")));
      assert.equal(await first.exited, 0, `cli-login failed: ${first.out.stderr}`);
      const c = claims(first.out.stdout);
      assert.equal(c.sub, USER.name);
      assert.equal(c.iss, stack.issuer);
      assert.equal(c.client_id, "cli");
      assert.doesNotMatch(first.out.stdout + first.out.stderr, /eyJ[\w-]+\.eyJ/, "no token printed");
      file = await saved(first.out.stdout);
      assert.equal(file.mode, 0o600);
      assert.ok(file.token.length > 20, "a refresh token saved");
    } finally {
      if (first.child.exitCode === null) first.child.kill("SIGTERM");
      await first.exited;
    }

    // The second run finds the refresh token and refreshes: no URL, no login.
    const second = runCLI();
    try {
      const ended = await Promise.race([
        second.exited.then((code) => ({ code })),
        second.wait(/Open this address/, "a prompt").then(() => ({ prompted: true }), () => ({ prompted: false })),
      ]);
      assert.notEqual(ended.prompted, true, "the second run asked for a browser");
      assert.equal(await second.exited, 0, `second run failed: ${second.out.stderr}`);
      assert.doesNotMatch(second.out.stdout, /logged in;/);
      assert.equal(claims(second.out.stdout).sub, USER.name);
      const rotated = (await readFile(file.path, "utf8")).trim();
      assert.notEqual(rotated, file.token, "the refresh rotated the saved token (OnRefresh)");
    } finally {
      if (second.child.exitCode === null) second.child.kill("SIGTERM");
      await second.exited;
    }
  });
});

// Shared setup of the relying-party interop tests (rp-*.test.mjs): a real
// `tokend serve` on a temporary SQLite store, with no proxy in front, its
// issuer the address it listens on (http://127.0.0.1:PORT); a user and
// the RP clients created with the tokend CLI; the Go programs the tests
// drive (tokend, web/e2e/rp-go, examples/cli-login) built into
// web/e2e/.bin/rp/; a small HTTP listener on 127.0.0.1 that serves as a
// redirect target and tells the test which URL the browser reached; and
// Chromium (playwright-core, Debian's binary).
//
// Nothing stubs tokend or the relying parties: the RPs are unmodified
// libraries (openid-client, go-oidc with x/oauth2, nativelogin) talking to
// the real server over HTTP, and the login page is filled in a real browser.
import { after, before } from "node:test";
import { execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

import { CHROMIUM, LAUNCH_ARGS, repo } from "./setup.mjs";

export { browserMissing } from "./setup.mjs";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const binDir = join(here, ".bin", "rp");

/** The user every RP test logs in as, created with `tokend user create`. */
export const USER = { name: "alice", password: "correct horse battery staple" };

/**
 * The clients the tests register. Redirect URIs are loopback ones, which
 * tokend matches on any port (RFC 8252 §7.3), so each test's listeners
 * may take a random port.
 */
const CLIENTS = [
  // openid-client as a public client (token_endpoint_auth_method none).
  { id: "rp-node", args: ["--public"] },
  // go-oidc with x/oauth2 as a confidential client (client_secret_basic).
  { id: "rp-go", args: [] },
  // the CLI login (nativelogin): a native app, public.
  { id: "cli", args: ["--public"] },
];

/** Builds the Go programs the tests run: tokend, the Go RP and the CLI example. */
async function buildBinaries() {
  await mkdir(binDir, { recursive: true });
  const env = { ...process.env, CGO_ENABLED: process.env.CGO_ENABLED ?? "0" };
  const build = (out, pkg) => run("go", ["build", "-o", join(binDir, out), pkg], { cwd: repo, env });
  await Promise.all([build("tokend", "./cmd/tokend"), build("rp-go", "./web/e2e/rp-go"), build("cli-login", "./examples/cli-login")]);
}

/**
 * Runs a Go program of binDir (or any command) and collects its output.
 * lines() yields stdout lines as they come; wait(re) resolves with the
 * first stdout or stderr line matching re (already seen or to come);
 * exited resolves with the exit code.
 */
export function startProcess(cmd, args, opts = {}) {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
  const seen = [];
  const waiters = [];
  const out = { stdout: "", stderr: "" };
  const onLine = (stream) => (line) => {
    out[stream] += line + "\n";
    if (process.env.E2E_VERBOSE) process.stderr.write(`[${cmd.split("/").pop()} ${stream}] ${line}\n`);
    seen.push(line);
    for (const w of [...waiters]) {
      const m = line.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  };
  createInterface({ input: child.stdout }).on("line", onLine("stdout"));
  createInterface({ input: child.stderr }).on("line", onLine("stderr"));
  const exited = new Promise((r) => child.on("exit", (code, signal) => r(code ?? signal)));
  return {
    child, out, exited,
    /** The first line matching re; fails when the process exits first. */
    wait(re, what = String(re)) {
      for (const line of seen) {
        const m = line.match(re);
        if (m) return Promise.resolve(m);
      }
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        exited.then((code) => reject(new Error(`${cmd} exited (${code}) before ${what}; stdout: ${out.stdout} stderr: ${out.stderr}`)));
      });
    },
  };
}

/**
 * A listener on 127.0.0.1 that answers every request with a short page
 * and remembers the URLs it was asked for: next(path) resolves with the
 * URL of the next request to path (or the last one not yet taken).
 */
export async function startListener() {
  const pending = new Map(); // path -> URL[] not yet taken
  const waiting = new Map(); // path -> resolve[]
  const server = createServer((req, res) => {
    const u = new URL(req.url, `http://${req.headers.host}`);
    const w = waiting.get(u.pathname);
    if (w?.length) w.shift()(u);
    else pending.set(u.pathname, [...(pending.get(u.pathname) ?? []), u]);
    res.writeHead(200, { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store" });
    res.end("relying party: done\n");
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    next(path) {
      const p = pending.get(path);
      if (p?.length) return Promise.resolve(p.shift());
      return new Promise((r) => waiting.set(path, [...(waiting.get(path) ?? []), r]));
    },
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

/** Base64url of bytes, unpadded (RFC 7636 §3). */
const b64url = (b) => Buffer.from(b).toString("base64url");

/**
 * Starts tokend with the user and clients. Returns { issuer, secrets,
 * tmp, bin(name), launch(), promptNone(page, clientId, redirectBase),
 * login(page), stop() }.
 */
export async function startRP() {
  const tmp = await mkdtemp(join(tmpdir(), "tokend-rp-"));
  const children = [];
  const stack = { tmp, browser: null, secrets: {} };
  try {
    await buildBinaries();
    const tokend = join(binDir, "tokend");
    const store = `sqlite://${join(tmp, "tokend.db")}`;
    const cli = (args, input) => new Promise((resolve, reject) => {
      const p = execFile(tokend, args, { cwd: tmp }, (err, stdout, stderr) => (err ? reject(new Error(`tokend ${args.slice(0, 2).join(" ")}: ${err.message} ${stderr}`)) : resolve(stdout)));
      p.stdin.end(input ?? "");
    });
    await cli(["user", "create", USER.name, "--password-stdin", "--store", store, "--init"], USER.password + "\n");
    for (const c of CLIENTS) {
      const out = await cli(["client", "create", "--store", store, "--id", c.id, ...c.args,
        "--redirect-uri", "http://127.0.0.1/callback", "--post-logout-redirect-uri", "http://127.0.0.1/logged-out", "--json"]);
      stack.secrets[c.id] = JSON.parse(out).client_secret;
    }
    const t = startProcess(tokend, ["serve", "--store", store, "--addr", "127.0.0.1:0", "--access-ttl", "300s", "--log-level", "warn"], { cwd: tmp });
    children.push(t);
    stack.issuer = (await t.wait(/^tokend: listening on (\S+)/, "tokend's listening line"))[1];
  } catch (e) {
    for (const c of children) c.child.kill("SIGTERM");
    await Promise.all(children.map((c) => c.exited));
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }

  Object.assign(stack, {
    /** The path of a program built into binDir. */
    bin: (name) => join(binDir, name),
    async launch() {
      const { chromium } = await import("playwright-core");
      stack.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
      return stack.browser;
    },
    /**
     * Fills tokend's login page, on which page must be, through its
     * labelled fields (as a screen reader names them) and submits it.
     */
    async login(page) {
      await page.getByLabel("Username").fill(USER.name);
      await page.getByLabel("Password").fill(USER.password);
      await page.getByRole("button", { name: "Log in" }).click();
    },
    /**
     * Sends page to tokend's authorization endpoint with prompt=none for
     * clientId (a valid request: PKCE S256, state), redirecting to
     * listener's /callback, and resolves with the callback's parameters
     * and the state sent: a code while the browser has a session at
     * tokend, error=login_required once it has none (OIDC Core §3.1.2.6).
     */
    async promptNone(page, clientId, listener) {
      const state = b64url(randomBytes(16));
      const verifier = b64url(randomBytes(32));
      const u = new URL(stack.issuer + "/oauth/authorize");
      u.search = new URLSearchParams({
        response_type: "code", client_id: clientId, redirect_uri: `${listener.base}/callback`,
        scope: "openid", state, prompt: "none",
        code_challenge: b64url(createHash("sha256").update(verifier).digest()), code_challenge_method: "S256",
      }).toString();
      const reached = listener.next("/callback");
      await page.goto(u.href);
      return { params: (await reached).searchParams, state };
    },
    async stop() {
      await stack.browser?.close().catch(() => {});
      for (const c of children) if (c.child.exitCode === null) c.child.kill("SIGTERM");
      await Promise.all(children.map((c) => c.exited));
      await rm(tmp, { recursive: true, force: true });
    },
  });
  return stack;
}

/**
 * rpSuite registers, in the calling describe block, the hooks of a
 * relying-party test: a tokend (startRP), a redirect listener
 * (startListener) and a page in Chromium before its tests, all stopped
 * after them. It returns the object those fill in: { stack, rp, page }.
 */
export function rpSuite() {
  const s = { stack: undefined, rp: undefined, page: undefined };
  before(async () => {
    s.stack = await startRP();
    s.rp = await startListener();
    await s.stack.launch();
    s.page = await (await s.stack.browser.newContext()).newPage();
  });
  after(async () => {
    await s.rp?.close();
    await s.stack?.stop();
  });
  return s;
}


// Shared setup of the browser end-to-end tests: builds tokend and the
// harness, creates the clients on a temporary SQLite store, runs
// `tokend serve` behind the harness's auth proxy, and launches Chromium.
//
// Nothing here stubs the product: the pages load the real web/dist build,
// talk to the real tokend through a transparent proxy, and call an API
// guarded by the real verify middleware and wsconn.Handler.
import { execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
export const repo = resolve(here, "../..");
const web = join(repo, "web");
const binDir = join(here, ".bin");

/**
 * Default access-token lifetime of the tokend under test, in seconds: long
 * enough that no proactive refresh fires while a test runs (the tests move
 * the page clock instead). The WebSocket test passes a short one.
 */
export const ACCESS_TTL = 300;

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
export const LAUNCH_ARGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const inCI = !!process.env.CI;

/**
 * Why the browser tests cannot run on this machine, or "" if they can.
 * In CI (env CI set) a missing browser is a failure, not a skip.
 */
export function browserMissing() {
  if (existsSync(CHROMIUM)) return "";
  const msg = `Chromium not found at ${CHROMIUM}: install it with "apt-get install -y chromium" or set CHROMIUM to its path`;
  if (inCI) throw new Error(msg);
  return msg;
}

/**
 * A reason to skip a test that needs something not yet in this build, or
 * false when it is there. In CI (or with E2E_REQUIRE_ALL=1) a missing piece
 * fails instead, so that a merged tree cannot skip its way to green.
 */
export function needs(stack, ...what) {
  const missing = what.filter((w) => !stack.features[w]);
  if (missing.length === 0) return false;
  const why = missing.map((w) => FEATURE_HELP[w]).join("; ");
  if (inCI || process.env.E2E_REQUIRE_ALL) throw new Error(`e2e: missing ${missing.join(", ")}: ${why}`);
  return `not in this build: ${why}`;
}

const FEATURE_HELP = {
  lib: "web/dist/index.js (the @tokend/web build: cd web && npm ci && npm run build)",
  origins: "client --origin and CORS (the websrv branch)",
  cookie: "client --cookie, cookie mode (the websrv branch)",
  login: "the authorization code flow: client create --redirect-uri, tokend user create, and web/dist/login.js (@tokend/web/login)",
};

/**
 * The built-in user the login tests type in on tokend's login page, and
 * the public clients of the two apps that log in through it (login-a on
 * the app origin, login-b on app2), each with its own redirect URI; and
 * login-cookie, login-a's twin in cookie mode.
 */
export const LOGIN_USER = { name: "lena", password: "correct horse battery staple" };
export const LOGIN_CALLBACK = "/login-callback.html";

async function buildBinaries() {
  await mkdir(binDir, { recursive: true });
  const env = { ...process.env, CGO_ENABLED: process.env.CGO_ENABLED ?? "0" };
  await Promise.all([
    run("go", ["build", "-o", join(binDir, "tokend"), "./cmd/tokend"], { cwd: repo, env }),
    run("go", ["build", "-o", join(binDir, "harness"), "./web/e2e/harness"], { cwd: repo, env }),
  ]);
}

/** Builds web/dist unless it is there and E2E_NO_BUILD is set, or web/ has no package yet. */
async function buildLib() {
  const pkg = join(web, "package.json");
  if (!existsSync(pkg)) return existsSync(join(web, "dist", "index.js"));
  if (process.env.E2E_NO_BUILD && existsSync(join(web, "dist", "index.js"))) return true;
  if (!existsSync(join(web, "node_modules"))) {
    await run("npm", ["ci", "--no-audit", "--no-fund"], { cwd: web, env: { ...process.env, PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD: "1" } });
  }
  await run("npm", ["run", "build"], { cwd: web });
  return existsSync(join(web, "dist", "index.js"));
}

/** Starts cmd and resolves with the child and its first stdout line matching re. */
function startProcess(cmd, args, re, opts = {}) {
  return new Promise((resolveP, reject) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], ...opts });
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
      if (process.env.E2E_VERBOSE) process.stderr.write(d);
    });
    const rl = createInterface({ input: child.stdout });
    const timer = setTimeout(() => reject(new Error(`${cmd}: no start line in 20s; stderr: ${stderr}`)), 20_000);
    rl.on("line", (line) => {
      const m = line.match(re);
      if (m) {
        clearTimeout(timer);
        resolveP({ child, match: m });
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`${cmd} exited with ${code}: ${stderr}`));
    });
  });
}

async function cli(...args) {
  const { stdout } = await run(join(binDir, "tokend"), args, { cwd: repo });
  return stdout;
}

/** cli with input on standard input (a password). */
async function cliStdin(input, ...args) {
  const p = run(join(binDir, "tokend"), args, { cwd: repo });
  p.child.stdin.end(input);
  return (await p).stdout;
}

/** Creates the login tests' user and clients (LOGIN_USER; login-a, login-b, and login-cookie in cookie mode if cookie) on store. */
async function createLoginClients(store, origins, cookie) {
  await cliStdin(LOGIN_USER.password + "\n", "user", "create", LOGIN_USER.name, "--password-stdin", "--store", store, "--argon2-params", "m=8192,t=1,p=1");
  for (const [id, origin] of [["login-a", origins.app], ["login-b", origins.app2]]) {
    await cli("client", "create", "--store", store, "--id", id, "--public", "--origin", origin, "--redirect-uri", origin + LOGIN_CALLBACK);
  }
  if (cookie) await cli("client", "create", "--store", store, "--id", "login-cookie", "--public", "--cookie", "--origin", origins.app, "--redirect-uri", origins.app + LOGIN_CALLBACK);
}

/** Polls fn until it returns a truthy value or deadlineMs passes (real processes only). */
export async function until(fn, what, deadlineMs = 10_000) {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The fingerprint the harness logs for a token. */
export function fingerprint(tok) {
  return createHash("sha256").update(tok).digest("hex").slice(0, 16);
}

/**
 * Starts the whole stack. Returns an object with the origins, helpers and
 * stop(); stack.features says which contract pieces this build has.
 */
export async function startStack({ accessTTL = ACCESS_TTL } = {}) {
  const tmp = await mkdtemp(join(tmpdir(), "tokend-e2e-"));
  const [, lib] = await Promise.all([buildBinaries(), buildLib()]);

  const children = [];
  const h = await startProcess(join(binDir, "harness"), ["-pages", join(here, "pages"), "-dist", join(web, "dist")], /^\{.*\}$/, { cwd: repo });
  children.push(h.child);
  const origins = JSON.parse(h.match[0]);

  const help = await cli("client", "create", "--help");
  const features = {
    lib, origins: help.includes("--origin"), cookie: help.includes("--cookie"),
    login: lib && help.includes("--redirect-uri") && existsSync(join(web, "dist", "login.js")),
  };
  const store = `sqlite://${join(tmp, "tokend.db")}`;
  const origin = features.origins ? ["--origin", origins.app] : [];
  await cli("client", "create", "--store", store, "--init", "--id", "spa", "--public", ...origin);
  if (features.cookie) await cli("client", "create", "--store", store, "--id", "spa-cookie", "--public", "--cookie", ...origin);
  const mintFor = features.cookie ? "spa,spa-cookie" : "spa";
  const backend = JSON.parse(await cli("client", "create", "--store", store, "--id", "backend", "--mint", "--mint-for", mintFor, "--json"));
  if (features.login && features.origins) await createLoginClients(store, origins, features.cookie);

  const serve = () => startProcess(join(binDir, "tokend"), [
    "serve", "--store", store, "--addr", "127.0.0.1:0", "--issuer", origins.auth,
    "--access-ttl", `${accessTTL}s`, "--log-level", "warn",
  ], /^tokend: listening on (\S+)/, { cwd: tmp });
  const t = await serve();
  children.push(t.child);
  const tokendURL = t.match[1];

  const control = (path, init = {}) => fetch(origins.control + path, { method: "POST", ...init });
  await control(`/upstream?url=${encodeURIComponent(tokendURL)}`);
  await control(`/backend?id=backend&secret=${encodeURIComponent(backend.client_secret)}`);
  await until(async () => (await fetch(origins.auth + "/readyz").catch(() => ({}))).status === 200, "tokend /readyz through the proxy");

  const basic = "Basic " + Buffer.from(`backend:${backend.client_secret}`).toString("base64");
  const stack = {
    origins, tokendURL, features, tmp, accessTTL,
    /** Mints a fresh login (force) for subject at clientId; ttl in seconds (0: server's). */
    async mint(subject, clientId = "spa", ttl = 0) {
      const res = await fetch(origins.auth + "/v1/tokens", {
        method: "POST", headers: { authorization: basic, "content-type": "application/json" },
        body: JSON.stringify({ subject, client_id: clientId, ttl, force: true }),
      });
      if (res.status !== 200) throw new Error(`mint: ${res.status} ${await res.text()}`);
      return res.json();
    },
    /** Ends a login (refresh-token family) at the server, as the backend. */
    async revokeSession(sessionID) {
      const res = await fetch(`${origins.auth}/v1/sessions/${encodeURIComponent(sessionID)}`, { method: "DELETE", headers: { authorization: basic } });
      if (res.status !== 204) throw new Error(`revoke session: ${res.status} ${await res.text()}`);
    },
    /** tokend_refresh_rotations_total by outcome. */
    async rotations() {
      const text = await (await fetch(stack.tokendURL + "/metrics")).text();
      const out = { rotated: 0, repeated: 0, reuse_detected: 0 };
      for (const m of text.matchAll(/^tokend_refresh_rotations_total\{outcome="(\w+)"\} (\d+)/gm)) out[m[1]] = Number(m[2]);
      return out;
    },
    control,
    async slow(ms, when = "after") { await control(`/slow?ms=${ms}&when=${when}`); },
    async reset() { await control("/reset"); },
    async authLog({ settled = false } = {}) { return (await fetch(origins.control + "/auth-log" + (settled ? "?settled=1" : ""))).json(); },
    async apiLog() { return (await fetch(origins.control + "/api-log")).json(); },
    async wsLog() { return (await fetch(origins.control + "/ws-log")).json(); },
    /** The app backend's mints (GET /session/tokens) since the last reset: their count and tokend's statuses. */
    async backendLog() { return (await fetch(origins.control + "/backend-log")).json(); },
    async wsClose(code, reason = "") { return (await control(`/ws-close?code=${code}&reason=${encodeURIComponent(reason)}`)).json(); },
    /**
     * Stops tokend (SIGTERM), waits downMs of real time (and for whileDown()),
     * and starts it again on the same store at a new port, which the proxy
     * then forwards to. Resolves once /readyz answers through the proxy, with
     * the real times (epoch ms) tokend went down and answered again, and what
     * whileDown resolved with. Its metrics restart at 0.
     */
    async restartTokend(downMs, whileDown = async () => {}) {
      const old = children.find((c) => c.spawnargs.includes("serve"));
      const exited = new Promise((r) => old.on("exit", r));
      old.kill("SIGTERM");
      await exited;
      children.splice(children.indexOf(old), 1);
      const downAt = Date.now();
      const [, during] = await Promise.all([new Promise((r) => setTimeout(r, downMs)), whileDown()]);
      const next = await serve();
      children.push(next.child);
      stack.tokendURL = next.match[1];
      await control(`/upstream?url=${encodeURIComponent(stack.tokendURL)}`);
      await until(async () => (await fetch(origins.auth + "/readyz").catch(() => ({}))).status === 200, "tokend /readyz after the restart");
      return { downAt, upAt: Date.now(), during };
    },
    browser: null,
    async launch() {
      const { chromium } = await import("playwright-core");
      stack.browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: LAUNCH_ARGS });
      return stack.browser;
    },
    /** Opens the test page of origin (app or other) in ctx and waits for its module to load. */
    async open(ctx, which = "app") {
      const page = await ctx.newPage();
      page.on("pageerror", (e) => process.env.E2E_VERBOSE && console.error("pageerror:", e));
      await page.goto(`${origins[which]}/app.html`);
      await page.waitForFunction(() => window.hReady === true);
      return page;
    },
    async stop() {
      await stack.browser?.close().catch(() => {});
      for (const c of children) c.kill("SIGTERM");
      await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.on("exit", r)))));
      await rm(tmp, { recursive: true, force: true });
    },
  };
  return stack;
}

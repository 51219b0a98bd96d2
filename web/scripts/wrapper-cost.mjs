// What TokenManager.fetch adds to a call, in Node, against a fetch that
// answers at once: the wrapper's own work (route check, cached token,
// header, challenge check), without the network. Give it one or more built
// dist directories to compare them in one run:
//   node scripts/wrapper-cost.mjs dist [../other/dist]
// Prints, per build, the median over rounds of ns per call through the
// wrapper and through the same fetch called directly.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dirs = process.argv.slice(2);
if (dirs.length === 0) dirs.push("dist");
const CALLS = 20_000, ROUNDS = 15;
const API = "https://api.test/data";
const answer = () => Promise.resolve(new Response(null, { status: 200 }));

const builds = [];
for (const d of dirs) {
  const lib = await import(pathToFileURL(resolve(d, "index.js")).href);
  const m = new lib.TokenManager({ tokenEndpoint: "https://auth.test/oauth/token", clientId: "spa", fetch: answer, events: null, crossTab: false, apiOrigins: [API] });
  m.start({ access_token: "at", refresh_token: "rt", expires_in: 86_400 });
  builds.push({ dir: d, m, wrapped: [], plain: [] });
}

async function time(fn) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) await fn();
  return Number(process.hrtime.bigint() - t0) / CALLS;
}

const plain = () => answer().then(() => new Headers({ Authorization: "Bearer at" }));
for (let r = 0; r < ROUNDS; r++) {
  // Alternate the order so that drift hits every build alike.
  for (const b of r % 2 ? [...builds].reverse() : builds) {
    b.wrapped.push(await time(() => b.m.fetch(API)));
    b.plain.push(await time(plain));
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
for (const b of builds) {
  const w = median(b.wrapped), p = median(b.plain);
  console.log(`${b.dir}: TokenManager.fetch ${w.toFixed(0)} ns/call, plain fetch + header ${p.toFixed(0)} ns/call, added ${(w - p).toFixed(0)} ns/call`);
  b.m.close();
}

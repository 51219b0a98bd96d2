// Prints gzip sizes (node:zlib, level 9, one run) of our core bundle and of
// the two libraries an SPA would otherwise use. Run after `npm run build`.
import { readFileSync, existsSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { build } from "esbuild";

const require = createRequire(import.meta.url);
const pkgDir = (name) => dirname(require.resolve(name + "/package.json"));
const gz = (buf) => gzipSync(buf, { level: 9 }).length;

async function oidcMin() {
  const dir = pkgDir("oidc-client-ts");
  const min = join(dir, "dist/browser/oidc-client-ts.min.js");
  if (existsSync(min)) return { file: "oidc-client-ts/dist/browser/oidc-client-ts.min.js", buf: readFileSync(min) };
  const r = await build({ entryPoints: [join(dir, "dist/esm/oidc-client-ts.js")], bundle: true, minify: true, format: "esm", write: false });
  return { file: "oidc-client-ts (esbuild --minify)", buf: Buffer.from(r.outputFiles[0].contents) };
}

const rows = [
  { file: "@tokend/web core (dist/tokend.min.js, esbuild --minify)", buf: readFileSync(new URL("../dist/tokend.min.js", import.meta.url)) },
  { file: "@auth0/auth0-spa-js/dist/auth0-spa-js.production.js", buf: readFileSync(join(pkgDir("@auth0/auth0-spa-js"), "dist/auth0-spa-js.production.js")) },
  await oidcMin(),
];
for (const r of rows) console.log(`${(gz(r.buf) / 1024).toFixed(2).padStart(7)} kB gzip  ${(r.buf.length / 1024).toFixed(1).padStart(7)} kB min  ${r.file}`);
const core = gz(rows[0].buf);
console.log(core <= 5 * 1024 ? `core within the 5 kB target (${core} B)` : `core OVER the 5 kB target (${core} B)`);
if (core > 5 * 1024) process.exitCode = 1;

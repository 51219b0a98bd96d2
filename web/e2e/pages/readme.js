// README.md's "Browser apps" example as an app would write it: on every
// load the page asks its backend (GET /session/tokens, which mints
// {"subject":"alice","client_id":"spa"} at tokend, without force) for
// tokens, starts a TokenManager with them and calls its API. The query
// string says where tokend is (auth), the client (client, default spa),
// the storage mode (storage) and cookie mode (cookie=1); window.result
// says what happened, for the tests.
import { TokenManager } from "/lib/index.js";

const q = new URLSearchParams(location.search);
const clientId = q.get("client") || "spa";
const result = { loaded: false, reauth: 0 };
window.result = result;

const opts = {
  tokenEndpoint: q.get("auth") + "/oauth/token",
  clientId,
  apiOrigins: [location.origin],              // the token goes there and to the page's origin, nowhere else
  onReauthRequired: () => { result.reauth++; }, // the README: location.assign("/login")
};
if (q.get("storage")) opts.storage = q.get("storage");
if (q.get("cookie") === "1") opts.cookie = true;
const tokens = new TokenManager(opts);

/** One API call through the manager: its status and the subject the API saw. */
async function call() {
  try {
    const res = await tokens.fetch("/api/echo");
    return { status: res.status, subject: res.status === 200 ? (await res.json()).subject : "" };
  } catch (e) {
    return { status: 0, error: e.name + ": " + e.message };
  }
}
window.call = call;

try {
  const minted = await (await fetch("/session/tokens?client=" + encodeURIComponent(clientId))).json(); // what your backend minted
  result.session = minted.session_id;
  result.mintedRefreshToken = typeof minted.refresh_token === "string" && minted.refresh_token !== "";
  tokens.start(minted);
  Object.assign(result, await call());
} catch (e) {
  result.error = e.name + ": " + e.message;
}
result.loaded = true;

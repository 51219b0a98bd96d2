// The example's page: log in through tokend's login page, then watch the
// access token refresh. It uses the built @tokend/web, served at /web/.
import { TokenManager, jwtClaims } from "/web/index.js";
import { handleRedirect, login, logout } from "/web/login.js";

const issuer = location.origin; // tokend runs on this origin (examples/login-app/main.go)
const clientId = "login-app";
const redirectUri = location.origin + "/callback";
const idTokenKey = "login-app:id_token"; // kept for logout's id_token_hint

const $ = (id) => document.getElementById(id);
const tokens = new TokenManager({
  tokenEndpoint: issuer + "/oauth/token",
  clientId,
  storage: "session", // a reload keeps the login
  onReauthRequired: () => {
    event("the login ended: log in again");
    show(null);
  },
});

let count = -1; // the first token is the login's, not a refresh
let exp = 0;

function event(text) {
  const li = document.createElement("li");
  li.textContent = new Date().toLocaleTimeString() + "  " + text;
  $("events").prepend(li);
}

function show(token) {
  const on = token !== null;
  $("login").hidden = on;
  $("logout").hidden = $("refresh").hidden = $("token").hidden = !on;
  if (!on) {
    $("status").textContent = "Not logged in.";
    exp = 0;
    return;
  }
  const c = jwtClaims(token);
  exp = c.exp * 1000;
  $("sub").textContent = c.sub;
  $("status").textContent = "Logged in.";
  tick();
}

function tick() {
  if (exp === 0) return;
  const left = Math.round((exp - Date.now()) / 1000);
  $("exp").textContent = new Date(exp).toLocaleTimeString() + " (in " + left + " s)";
}
setInterval(tick, 1000);

tokens.onToken((token) => {
  count++;
  $("count").textContent = String(count);
  const c = jwtClaims(token);
  event((count === 0 ? "got an access token" : "refreshed") + ", expires " + new Date(c.exp * 1000).toLocaleTimeString());
  show(token);
});

$("login").onclick = () => login({ issuer, clientId, redirectUri, scope: "openid" });
$("refresh").onclick = () => tokens.refresh().catch((e) => event("refresh failed: " + e.message));
$("logout").onclick = async () => {
  const idTokenHint = sessionStorage.getItem(idTokenKey) ?? undefined;
  sessionStorage.removeItem(idTokenKey);
  await logout({ issuer, clientId, idTokenHint, postLogoutRedirectUri: location.origin + "/", manager: tokens });
};

try {
  const done = await handleRedirect({ manager: tokens }); // null unless this URL is the login's answer
  if (done) {
    if (done.idToken) sessionStorage.setItem(idTokenKey, done.idToken);
    history.replaceState(null, "", done.returnTo);
    event("logged in as " + (done.claims?.sub ?? "?"));
  }
  show(await tokens.getAccessToken()); // from the login, or from sessionStorage after a reload
} catch (e) {
  if (e?.name !== "ReauthRequiredError") event("error: " + e.message);
  show(null);
}

// @tokend/web/login: a user's login in the browser by the authorization
// code flow with PKCE and OpenID Connect, against any provider that
// publishes its metadata (tokend, or another). A separate entry point, so
// that apps that get their tokens another way do not carry it.
export { discover, type ProviderMetadata } from "./discovery.js";
export { buildAuthorizeURL, login, type LoginEnv, type LoginOptions } from "./authorize.js";
export { handleRedirect, type HandleRedirectOptions, type LoginResult } from "./callback.js";
export { buildLogoutURL, logout, type LogoutOptions } from "./endsession.js";
export { pkceChallenge } from "./pkce.js";
export { OAuthError } from "./errors.js";

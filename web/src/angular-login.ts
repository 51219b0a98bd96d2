// @tokend/web/angular/login: the routes of a login in an Angular app, a
// guard that starts it and a guard for the callback route that finishes it.
// Its own entry point, so that the interceptor does not need @angular/router.
import { inject } from "@angular/core";
import { Router, type CanActivateFn, type UrlTree } from "@angular/router";
import { ReauthRequiredError } from "./errors.js";
import { login, type LoginOptions } from "./authorize.js";
import { handleRedirect, type HandleRedirectOptions } from "./callback.js";
import type { TokenManager } from "./manager.js";

/**
 * A guard for routes that need a login: lets the navigation through once
 * manager has an access token (getAccessToken: the one held, another
 * tab's, the stored one, or a refresh, from the cookie in cookie mode),
 * and when the login has ended or none was ever started
 * (ReauthRequiredError), starts login(options) with returnTo the route's
 * URL and cancels the navigation while the page leaves. Any other error
 * (tokend unreachable) fails the navigation.
 *
 *   { path: "orders", component: Orders, canActivate: [loginGuard(tokens, { issuer, clientId, redirectUri })] }
 */
export function loginGuard(manager: Pick<TokenManager, "getAccessToken">, options: Omit<LoginOptions, "returnTo">): CanActivateFn {
  return async (_route, state) => {
    try {
      await manager.getAccessToken();
      return true;
    } catch (e) {
      if (!(e instanceof ReauthRequiredError)) throw e;
      await login({ ...options, returnTo: state.url });
      return false;
    }
  };
}

export interface LoginCallbackOptions extends Omit<HandleRedirectOptions, "manager"> {
  /** Where to go when the URL holds no response (a reload of the callback page); default "/". */
  fallback?: string;
  /** Where to go when handleRedirect() refuses (its OAuthError); default: the navigation fails with it. */
  onError?: (error: unknown) => string;
}

/**
 * A guard for the callback route (the redirectUri): handleRedirect() with
 * manager, then a redirect to the login's returnTo, so the callback
 * route itself never renders.
 *
 *   { path: "callback", canActivate: [loginCallback(tokens)], children: [] }
 */
export function loginCallback(manager: Pick<TokenManager, "start">, options: LoginCallbackOptions = {}): CanActivateFn {
  return async (): Promise<UrlTree> => {
    const router = inject(Router);
    let to: string;
    try {
      to = (await handleRedirect({ ...options, manager }))?.returnTo ?? options.fallback ?? "/";
    } catch (e) {
      if (!options.onError) throw e;
      to = options.onError(e);
    }
    return router.parseUrl(to);
  };
}

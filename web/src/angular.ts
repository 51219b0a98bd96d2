import { HttpErrorResponse, type HttpInterceptorFn, type HttpRequest } from "@angular/common/http";
import { catchError, from, switchMap, throwError } from "rxjs";
import type { TokenManager } from "./index.js";

/**
 * An Angular functional interceptor: adds `Authorization: Bearer` from
 * manager, and on a 401 (or a 403 with refreshOn403, never for
 * error="insufficient_scope") refreshes once through the manager's
 * single flight and replays once with the new token; the replay's error
 * propagates. Requests the manager gives no token (sendsTokenTo: another
 * origin than the page's and apiOrigins, or the token and revocation
 * endpoints) pass untouched.
 *
 *   provideHttpClient(withInterceptors([tokendInterceptor(manager)]))
 */
export function tokendInterceptor(manager: TokenManager): HttpInterceptorFn {
  return (req, next) => {
    if (!manager.sendsTokenTo(req.url)) return next(req);
    const auth = (r: HttpRequest<unknown>, token: string) => r.clone({ setHeaders: { Authorization: "Bearer " + token } });
    return from(manager.getAccessToken()).pipe(
      switchMap((token) =>
        next(auth(req, token)).pipe(
          catchError((err: unknown) => {
            if (!(err instanceof HttpErrorResponse) || !manager.isChallenge(err.status, err.headers.get("WWW-Authenticate"))) {
              return throwError(() => err);
            }
            return from(manager.refresh(token)).pipe(
              catchError(() => throwError(() => err)),
              switchMap((fresh) => next(auth(req, fresh))),
            );
          }),
        ),
      ),
    );
  };
}

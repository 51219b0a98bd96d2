package store

// Optional capabilities. Beyond Store, a backend may have optional
// interfaces (FailureCounter, Leaser, LegacyTokens, FamiliarSources,
// Scrubber), and callers find them with Capability, never by a type
// assertion on the store they were given: that store may be a wrapper
// (WithTimeout, sealed.Wrap), and a wrapper has only the methods of
// Store, so that it never claims a capability the store under it lacks.
// A wrapper
//
//   - has a method Unwrap() Store that returns the store it wraps, which
//     Capability walks through, so that what the wrapper does not
//     intercept is found under it as it is;
//   - and, for each capability it must intercept (WithTimeout puts its
//     deadline on FailureCounter, Leaser and LegacyTokens), a method
//     As(target any) bool, as an error has for errors.As: given a pointer
//     to the capability's interface, it stores there its own
//     implementation and reports true if the store under it has that
//     capability, and reports false otherwise.

// Unwrap returns the store that st wraps, if st says (with a method
// Unwrap() Store, as the results of WithTimeout and sealed.Wrap have),
// else nil.
func Unwrap(st Store) Store {
	if u, ok := st.(interface{ Unwrap() Store }); ok {
		return u.Unwrap()
	}
	return nil
}

// Capability returns st's optional interface T (FailureCounter, Leaser,
// LegacyTokens, FamiliarSources, Scrubber, or a backend's own type such
// as *redis.Store), through any wrappers: st itself if it is a T, else
// what st's method As provides as a T (a wrapper intercepting T), else
// the same for the store under st (Unwrap), and so on down. It reports
// false if no store of the chain has T.
//
// What a wrapper intercepts comes with the wrapper's own handling (a
// deadline on each call, under WithTimeout); what it does not is the
// store's own: FamiliarSources, Scrubber and Importer under WithTimeout,
// whose callers bound each call themselves, and every capability under
// sealed.Wrap, none of which carries a key or secret to seal but
// Importer, which carries them as stored (sealed) on purpose.
func Capability[T any](st Store) (T, bool) {
	for ; st != nil; st = Unwrap(st) {
		if c, ok := st.(T); ok {
			return c, true
		}
		if a, ok := st.(interface{ As(target any) bool }); ok {
			var c T
			if a.As(&c) {
				return c, true
			}
		}
	}
	var zero T
	return zero, false
}

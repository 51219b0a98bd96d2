package verify

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"time"
)

// maxNumericDate bounds exp, nbf and iat (about year 36812), far enough
// for any token and near enough that time arithmetic cannot overflow.
const maxNumericDate = 1 << 40

// claims decodes and checks the payload of a token whose signature holds,
// signed by the key kid, at now.
func (v *Verifier) claims(payload []byte, kid string, now time.Time) (*Claims, error) {
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%w: claims are not a JSON object", ErrMalformed)
	}
	c := &Claims{KeyID: kid, Extra: m}
	var err error
	str := func(name string, dst *string) {
		if raw, ok := m[name]; ok && err == nil {
			delete(m, name)
			if *dst, ok = raw.(string); !ok {
				err = fmt.Errorf("%w: claim %s is not a string", ErrMalformed, name)
			}
		}
	}
	date := func(name string, dst *time.Time) {
		if raw, ok := m[name]; ok && err == nil {
			delete(m, name)
			if *dst, ok = numericDate(raw); !ok {
				err = fmt.Errorf("%w: claim %s is not a NumericDate", ErrMalformed, name)
			}
		}
	}
	str("iss", &c.Issuer)
	str("sub", &c.Subject)
	str("jti", &c.ID)
	str("client_id", &c.ClientID)
	str("scope", &c.Scope)
	date("exp", &c.Expiry)
	date("nbf", &c.NotBefore)
	date("iat", &c.IssuedAt)
	if err != nil {
		return nil, err
	}
	if c.Audience, err = audience(m); err != nil {
		return nil, err
	}
	if c.Expiry.IsZero() {
		return nil, fmt.Errorf("%w: no exp", ErrMalformed)
	}

	iss := *v.iss.Load()
	if c.Issuer == "" || c.Issuer != iss {
		return nil, fmt.Errorf("%w: %q", ErrIssuer, truncate(c.Issuer))
	}
	if err := v.checkAudience(c.Audience, iss); err != nil {
		return nil, err
	}
	switch {
	case !now.Before(c.Expiry.Add(v.o.Leeway)):
		return nil, fmt.Errorf("%w at %s", ErrExpired, c.Expiry.UTC().Format(time.RFC3339))
	case !c.NotBefore.IsZero() && now.Add(v.o.Leeway).Before(c.NotBefore):
		return nil, fmt.Errorf("%w: nbf is %s", ErrNotYetValid, c.NotBefore.UTC().Format(time.RFC3339))
	case !c.IssuedAt.IsZero() && now.Add(v.o.Leeway).Before(c.IssuedAt):
		return nil, fmt.Errorf("%w: iat is %s", ErrNotYetValid, c.IssuedAt.UTC().Format(time.RFC3339))
	}
	return c, nil
}

// checkAudience checks aud, a token's, against Options.Audience, or iss
// (the issuer, not "") if that is empty.
func (v *Verifier) checkAudience(aud []string, iss string) error {
	switch {
	case v.o.InsecureSkipAudienceCheck:
		return nil
	case len(aud) == 0:
		return fmt.Errorf("%w: no aud", ErrAudience)
	case len(v.o.Audience) == 0:
		if slices.Contains(aud, iss) {
			return nil
		}
		return ErrAudience
	}
	for _, a := range aud {
		if slices.Contains(v.o.Audience, a) {
			return nil
		}
	}
	return ErrAudience
}

// audience takes aud, a string or an array of strings, out of m.
func audience(m map[string]any) ([]string, error) {
	raw, ok := m["aud"]
	if !ok {
		return nil, nil
	}
	delete(m, "aud")
	switch aud := raw.(type) {
	case string:
		return []string{aud}, nil
	case []any:
		out := make([]string, len(aud))
		for i, a := range aud {
			if out[i], ok = a.(string); !ok {
				return nil, fmt.Errorf("%w: claim aud is not an array of strings", ErrMalformed)
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: claim aud is neither a string nor an array", ErrMalformed)
}

// numericDate converts an RFC 7519 NumericDate, seconds since the epoch,
// possibly with a fraction, as encoding/json decodes it.
func numericDate(raw any) (time.Time, bool) {
	f, ok := raw.(float64)
	if !ok || f < 0 || f > maxNumericDate {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), true
}

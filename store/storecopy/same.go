package storecopy

import (
	"reflect"
	"time"
)

// Same reports whether a and b, two records of one type as two stores
// return them, hold the same content: every field compared, whatever
// fields the type has, with the differences the backends' encodings make
// taken out. Times are compared as instants to the microsecond (every
// backend keeps microseconds; zone and monotonic reading ignored), and a
// nil slice equals an empty one (a backend may read back either).
func Same[T any](a, b T) bool {
	return same(reflect.ValueOf(a), reflect.ValueOf(b))
}

var timeType = reflect.TypeFor[time.Time]()

func same(a, b reflect.Value) bool {
	if a.Type() != b.Type() {
		return false
	}
	if a.Type() == timeType {
		ta, tb := a.Interface().(time.Time), b.Interface().(time.Time)
		return ta.Truncate(time.Microsecond).Equal(tb.Truncate(time.Microsecond))
	}
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if !same(a.Field(i), b.Field(i)) {
				return false
			}
		}
		return true
	case reflect.Slice:
		if a.Len() != b.Len() {
			return false
		}
		for i := range a.Len() {
			if !same(a.Index(i), b.Index(i)) {
				return false
			}
		}
		return true
	case reflect.String:
		return a.String() == b.String()
	case reflect.Bool:
		return a.Bool() == b.Bool()
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return a.Int() == b.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return a.Uint() == b.Uint()
	}
	// A field of another kind (map, pointer, float) compares as Go does;
	// unexported fields cannot be read, and no record has one.
	return a.CanInterface() && b.CanInterface() && reflect.DeepEqual(a.Interface(), b.Interface())
}

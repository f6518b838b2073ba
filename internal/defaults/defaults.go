// Package defaults fills in configuration fields left unset. A field
// whose zero value means "the default" takes the standard library's
// cmp.Or(v, def); a number or duration whose zero or negative value means
// "the default" takes Positive(v, def).
package defaults

// Number is what Positive accepts: integers, floats and types over them
// (time.Duration).
type Number interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64 |
		~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64 | ~uintptr |
		~float32 | ~float64
}

// Positive returns v when it is above zero, else def.
func Positive[T Number](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

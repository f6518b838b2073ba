package strictjson

import "encoding/json"

// objectFast is Object's path for the common, well-formed input: after
// json.Valid (the same scanner the decoder uses, without allocations) it
// walks the top-level object directly. It reports ok only when Object
// would accept data, with the same members (copied out of data); for
// anything else — a key with escapes or non-ASCII bytes, an unknown,
// duplicate, null or missing member, not an object — it returns false
// and Object takes the decoder path, which finds the precise error.
// FuzzObjectFastMatchesDecoder checks the two paths agree.
func objectFast(data []byte, fields []string) (map[string]json.RawMessage, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	i := skipSpace(data, 0)
	if data[i] != '{' {
		return nil, false
	}
	// One buffer for every member's bytes: values never add up to more
	// than data, so it is never reallocated.
	buf := make([]byte, 0, len(data))
	out := make(map[string]json.RawMessage, len(fields))
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return out, len(fields) == 0
	}
	for {
		// data[i] is the key's opening quote.
		j := i + 1
		for data[j] != '"' {
			if data[j] == '\\' || data[j] >= 0x80 {
				return nil, false
			}
			j++
		}
		key := data[i+1 : j]
		if !known(key, fields) {
			return nil, false
		}
		if _, dup := out[string(key)]; dup {
			return nil, false
		}
		i = skipSpace(data, j+1) // the ':'
		i = skipSpace(data, i+1) // the value
		end := valueEnd(data, i)
		v := data[i:end]
		if string(v) == "null" {
			return nil, false
		}
		start := len(buf)
		buf = append(buf, v...)
		out[string(key)] = buf[start:len(buf):len(buf)]
		i = skipSpace(data, end)
		if data[i] == '}' {
			break
		}
		i = skipSpace(data, i+1) // after ','
	}
	// json.Valid leaves nothing but whitespace after the object.
	return out, len(out) == len(fields)
}

func known(key []byte, fields []string) bool {
	for _, f := range fields {
		if f == string(key) {
			return true
		}
	}
	return false
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// valueEnd returns the index just past the valid JSON value at data[i].
func valueEnd(data []byte, i int) int {
	depth := 0
	for {
		switch c := data[i]; c {
		case '"':
			i++
			for data[i] != '"' {
				if data[i] == '\\' {
					i++
				}
				i++
			}
			i++
		case '{', '[':
			depth++
			i++
		case '}', ']':
			depth--
			i++
		default:
			// A number, true, false or null, or whitespace, ',' or ':'
			// inside a composite value.
			if depth == 0 {
				for i < len(data) && !delimiter(data[i]) {
					i++
				}
				return i
			}
			i++
		}
		if depth == 0 {
			return i
		}
	}
}

func delimiter(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

package contracts

import (
	"crypto/hmac"
	"crypto/sha256"
)

// macHexLen is the length of a token's MAC part: 64 lowercase hex digits.
const macHexLen = 2 * sha256.Size

// Token is a parsed waitpoint token "<kid>:<64 lowercase hex>".
type Token struct {
	Kid string
	MAC [sha256.Size]byte
}

// ParseToken checks a token's format. Any deviation (missing colon, bad kid,
// uppercase or short hex) is validation / invalid_token / malformed; the
// error never quotes the token. It runs on every verify and delivery, so
// it checks the kid with a byte table (the rule of ValidateKid) and decodes
// the MAC eight digits at a time.
func ParseToken(field, s string) (Token, error) {
	var t Token
	n := len(s) - macHexLen - 1 // the kid's length
	if n < 1 || n > MaxKidLen || s[n] != ':' || !kidBytes(s[:n]) || !decodeLowerHex(s[n+1:], &t.MAC) {
		return Token{}, ErrTokenMalformed.With("%s: must be <kid>:<64 lowercase hex>", field)
	}
	t.Kid = s[:n]
	return t, nil
}

// kidByte marks the bytes a kid may hold: [A-Za-z0-9._-] (ValidateKid).
var kidByte = func() (t [256]bool) {
	for c := range t {
		t[c] = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
	}
	return t
}()

// kidBytes reports whether every byte of kid is a kid byte.
func kidBytes(kid string) bool {
	for i := 0; i < len(kid); i++ {
		if !kidByte[kid[i]] {
			return false
		}
	}
	return true
}

// Byte-wise (SWAR) constants of decodeLowerHex.
const (
	swarOnes  = 0x0101010101010101
	swarHighs = 0x8080808080808080
)

// swarAtLeast returns, for each byte of x (each below 0x80), 0x80 where the
// byte is >= k and 0 elsewhere. No byte's sum carries into the next one.
func swarAtLeast(x uint64, k byte) uint64 { return (x + swarOnes*uint64(0x80-k)) & swarHighs }

// decodeLowerHex decodes 64 lowercase hex digits into out and reports
// whether s was exactly that (out is partly written otherwise). It works
// on eight digits at a time in a uint64: a digit is ASCII and in '0'-'9'
// or 'a'-'f'; its value is its low nibble, plus 9 for a letter (bit 6).
func decodeLowerHex(s string, out *[sha256.Size]byte) bool {
	if len(s) != macHexLen {
		return false
	}
	ok := uint64(swarHighs)
	for i := 0; i < macHexLen; i += 8 {
		q := s[i : i+8]
		x := uint64(q[0]) | uint64(q[1])<<8 | uint64(q[2])<<16 | uint64(q[3])<<24 |
			uint64(q[4])<<32 | uint64(q[5])<<40 | uint64(q[6])<<48 | uint64(q[7])<<56
		y := x &^ swarHighs
		digit := swarAtLeast(y, '0') &^ swarAtLeast(y, '9'+1)
		letter := swarAtLeast(y, 'a') &^ swarAtLeast(y, 'f'+1)
		ok &= ^x & (digit | letter)
		v := x&(swarOnes*0x0f) + 9*(x>>6&swarOnes) // digit values, one per byte
		w := (v<<4 | v>>8) & 0x00ff00ff00ff00ff    // output bytes at bytes 0, 2, 4, 6
		w = (w | w>>8) & 0x0000ffff0000ffff
		w |= w >> 16
		o := out[i/2 : i/2+4]
		o[0], o[1], o[2], o[3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
	}
	return ok == swarHighs
}

func hmacEqual(a, b []byte) bool { return hmac.Equal(a, b) }

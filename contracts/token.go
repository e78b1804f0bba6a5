package contracts

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
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

// ComputeMAC returns HMAC-SHA256(secret, kid || ":" || message). Binding the
// kid stops a token from being replayed under another kid.
func ComputeMAC(kid string, secret, message []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(kid))
	m.Write([]byte{':'})
	m.Write(message)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// SignToken returns the token "<kid>:<hex MAC>" for message under secret.
// Every backend produces the same token for the same kid, secret and message.
func SignToken(kid string, secret, message []byte) string {
	mac := ComputeMAC(kid, secret, message)
	buf := make([]byte, 0, len(kid)+1+macHexLen)
	buf = append(buf, kid...)
	buf = append(buf, ':')
	buf = hex.AppendEncode(buf, mac[:])
	return string(buf)
}

// KidRecord is what a keystore holds for one kid. ExpiresAtMs is nil for the
// current kid and set for a verifying kid.
type KidRecord struct {
	Kid         string
	Secret      Secret
	ExpiresAtMs *int64
}

// Usable reports whether a token signed by this kid is accepted at nowMs:
// the kid is current, or verifying with expires_at_ms >= now_ms.
func (r KidRecord) Usable(nowMs int64) bool {
	return r.ExpiresAtMs == nil || *r.ExpiresAtMs >= nowMs
}

// CheckToken decides verification (docs/spec.md §3) once a driver has looked
// up the token's kid. initialized reports whether the partition has any
// keystore at all; rec is the kid's record, nil when the kid is unknown.
// The MAC is compared in constant time.
func CheckToken(t Token, message []byte, initialized bool, rec *KidRecord, nowMs int64) error {
	switch {
	case !initialized:
		return NotInitialized()
	case rec == nil:
		return ErrUnknownKid.With("token: kid %q is not known", t.Kid)
	case !rec.Usable(nowMs):
		return ErrTokenExpired.With("token: kid %q is past its grace window", t.Kid)
	}
	want := ComputeMAC(t.Kid, rec.Secret, message)
	if !hmac.Equal(want[:], t.MAC[:]) {
		return SignatureMismatch()
	}
	return nil
}

func hmacEqual(a, b []byte) bool { return hmac.Equal(a, b) }

// WaitpointMessage is the signed message of a waitpoint token:
// execution_id "|" waitpoint_id "|" waitpoint_key "|" created_at_ms (decimal).
func WaitpointMessage(executionID, waitpointID, waitpointKey string, createdAtMs int64) []byte {
	b := make([]byte, 0, len(executionID)+len(waitpointID)+len(waitpointKey)+24)
	b = append(b, executionID...)
	b = append(b, '|')
	b = append(b, waitpointID...)
	b = append(b, '|')
	b = append(b, waitpointKey...)
	b = append(b, '|')
	return strconv.AppendInt(b, createdAtMs, 10)
}

// NewID returns a random (version 4) UUID in canonical lowercase form, for
// waitpoint, suspension, signal and lease ids.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails on supported platforms.
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

// CRC16 is CRC16-XMODEM (polynomial 0x1021, initial value 0), the checksum
// Redis Cluster uses for key slots: CRC16("123456789") == 0x31C3.
func CRC16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}

// crc16Table[i] is the CRC16-XMODEM of the byte i: one lookup per byte
// instead of eight shifts (PartitionOf runs on every operation).
var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// PartitionOf routes a scope to one of p partitions: CRC16(scope) mod p.
// It panics if p < 1, which is a driver bug.
func PartitionOf(scope string, p int) int {
	if p < 1 {
		panic("contracts: PartitionOf with fewer than one partition")
	}
	var crc uint16
	for i := 0; i < len(scope); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^scope[i]]
	}
	return int(crc) % p
}

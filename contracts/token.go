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
// error never quotes the token.
func ParseToken(field, s string) (Token, error) {
	var t Token
	if len(s) < 2+macHexLen || s[len(s)-macHexLen-1] != ':' {
		return t, ErrTokenMalformed.With("%s: must be <kid>:<64 lowercase hex>", field)
	}
	kid, mac := s[:len(s)-macHexLen-1], s[len(s)-macHexLen:]
	if ValidateKid(field, kid) != nil || !decodeLowerHex(mac, &t.MAC) {
		return Token{}, ErrTokenMalformed.With("%s: must be <kid>:<64 lowercase hex>", field)
	}
	t.Kid = kid
	return t, nil
}

// hexVal maps a lowercase hex digit to its value and every other byte to 0xff.
var hexVal = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = byte(c - '0')
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] = byte(c - 'a' + 10)
	}
	return t
}()

// decodeLowerHex decodes 64 lowercase hex digits into out in one pass and
// reports whether every digit was one.
func decodeLowerHex(s string, out *[sha256.Size]byte) bool {
	var bad byte
	for i := range out {
		hi, lo := hexVal[s[2*i]], hexVal[s[2*i+1]]
		bad |= hi | lo
		out[i] = hi<<4 | lo&0x0f
	}
	return bad&0xf0 == 0
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

// CheckToken decides verification (CONTRACT.md §3) once a driver has looked
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
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// PartitionOf routes a scope to one of p partitions: CRC16(scope) mod p.
// It panics if p < 1, which is a driver bug.
func PartitionOf(scope string, p int) int {
	if p < 1 {
		panic("contracts: PartitionOf with fewer than one partition")
	}
	return int(CRC16([]byte(scope))) % p
}

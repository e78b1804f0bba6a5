package driver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Domain tags of the two token purposes (docs/spec.md §3). Each MAC input
// starts with one of them, NUL-terminated, so no input of one purpose is an
// input of the other, whatever the fields: a signature of the sign API is
// never a waitpoint token, and a waitpoint token never verifies.
const (
	waitpointTag = "flowfabric/v2/waitpoint-token\x00"
	signatureTag = "flowfabric/v2/signature\x00"
)

// WaitpointInput is the MAC input of a waitpoint token (docs/spec.md §3):
//
//	"flowfabric/v2/waitpoint-token" 0x00
//	u8 len | kid | u8 len | execution_id | u8 len | waitpoint_id |
//	u8 len | waitpoint_key | created_at_ms as 8 bytes, big-endian two's complement
//
// Every field is length-prefixed, so the encoding is injective: a token
// opens exactly one waitpoint of exactly one execution. The fields'
// validated lengths (kid ≤ 64, ids and keys ≤ 128 bytes) fit one byte.
func WaitpointInput(kid, executionID, waitpointID, waitpointKey string, createdAtMs int64) []byte {
	b := make([]byte, 0, len(waitpointTag)+4+len(kid)+len(executionID)+len(waitpointID)+len(waitpointKey)+8)
	b = append(b, waitpointTag...)
	b = appendU8String(b, kid)
	b = appendU8String(b, executionID)
	b = appendU8String(b, waitpointID)
	b = appendU8String(b, waitpointKey)
	return binary.BigEndian.AppendUint64(b, uint64(createdAtMs))
}

// SignatureInput is the MAC input of a signature of the sign API
// (docs/spec.md §3):
//
//	"flowfabric/v2/signature" 0x00
//	u8 len | kid | u16 len (big-endian) | scope | u32 len (big-endian) | message
//
// The scope is bound in, so a signature made for one scope never verifies
// under another.
func SignatureInput(kid, scope string, message []byte) []byte {
	return AppendSignatureInput(make([]byte, 0, len(signatureTag)+7+len(kid)+len(scope)+len(message)), kid, scope, message)
}

// AppendSignatureInput appends SignatureInput(kid, scope, message) to b, for
// callers that reuse a buffer on a hot path.
func AppendSignatureInput(b []byte, kid, scope string, message []byte) []byte {
	return append(AppendSignatureHeader(b, kid, scope, len(message)), message...)
}

// AppendSignatureHeader appends the part of SignatureInput that precedes the
// message (at most 351 bytes for valid arguments), for callers that write
// the message to the MAC separately.
func AppendSignatureHeader(b []byte, kid, scope string, messageLen int) []byte {
	b = append(b, signatureTag...)
	b = appendU8String(b, kid)
	b = binary.BigEndian.AppendUint16(b, uint16(len(scope)))
	b = append(b, scope...)
	return binary.BigEndian.AppendUint32(b, uint32(messageLen))
}

// appendU8String appends s with a one-byte length prefix. Callers pass
// validated fields of at most 255 bytes.
func appendU8String(b []byte, s string) []byte {
	if len(s) > 255 {
		panic("driver: token field longer than 255 bytes (arguments must be validated first)")
	}
	return append(append(b, byte(len(s))), s...)
}

// ComputeMAC returns HMAC-SHA256(secret, input), where input is a
// WaitpointInput or a SignatureInput.
func ComputeMAC(secret, input []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, secret)
	m.Write(input)
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}

// SignToken returns the token "<kid>:<hex MAC>" of input under secret; input
// must have been built for the same kid (WaitpointInput, SignatureInput).
// Every backend produces the same token for the same kid, secret and input.
func SignToken(kid string, secret, input []byte) string {
	mac := ComputeMAC(secret, input)
	buf := make([]byte, 0, len(kid)+1+2*sha256.Size)
	buf = append(buf, kid...)
	buf = append(buf, ':')
	buf = hex.AppendEncode(buf, mac[:])
	return string(buf)
}

// TokenFingerprint is the only form of a token that introspection and logs
// show: the first 16 hex digits of SHA-256 of the token string
// (docs/spec.md §3). It cannot be turned back into the token.
func TokenFingerprint(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:8])
}

// KidRecord is what a keystore holds for one kid. ExpiresAtMs is nil for the
// current kid and set for a verifying kid. A revoked kid (docs/spec.md
// §8.7) keeps its record, without its secret, for as long as the keystore
// lives: it never verifies again and its name is never reused.
type KidRecord struct {
	Kid         string
	Secret      contracts.Secret
	ExpiresAtMs *int64
	Revoked     bool
}

// Usable reports whether a token signed by this kid is accepted at nowMs:
// the kid is current, or verifying with expires_at_ms >= now_ms.
func (r KidRecord) Usable(nowMs int64) bool {
	return !r.Revoked && (r.ExpiresAtMs == nil || *r.ExpiresAtMs >= nowMs)
}

// CheckToken decides verification (docs/spec.md §3) once a driver has looked
// up the token's kid. initialized reports whether the partition has any
// keystore at all; rec is the kid's record, nil when the kid is unknown.
// The MAC is compared in constant time.
//
// input is the MAC input the token must sign, built with t.Kid
// (WaitpointInput or SignatureInput); it is not read unless the kid is
// known and usable.
func CheckToken(t contracts.Token, input []byte, initialized bool, rec *KidRecord, nowMs int64) error {
	switch {
	case !initialized:
		return NotInitialized()
	case rec == nil:
		return contracts.ErrUnknownKid.With("token: kid %q is not known", t.Kid)
	case rec.Revoked:
		return contracts.ErrTokenExpired.With("token: kid %q was revoked", t.Kid)
	case !rec.Usable(nowMs):
		return contracts.ErrTokenExpired.With("token: kid %q is past its grace window", t.Kid)
	}
	want := ComputeMAC(rec.Secret, input)
	if !hmac.Equal(want[:], t.MAC[:]) {
		return SignatureMismatch()
	}
	return nil
}

// NewID returns a random (version 4) UUID in canonical lowercase form, for
// waitpoint, suspension, signal and lease ids.
func NewID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails on supported platforms.
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return FormatID(u)
}

// FormatID returns the canonical lowercase text of a UUID's 16 bytes, the
// form NewID returns; a store that keeps ids as bytes reads them back with
// it.
func FormatID(u [16]byte) string {
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
		panic("driver: PartitionOf with fewer than one partition")
	}
	var crc uint16
	for i := 0; i < len(scope); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^scope[i]]
	}
	return int(crc) % p
}

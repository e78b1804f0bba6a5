package driver

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strconv"

	"github.com/flowfabric/flowfabric-go/contracts"
)

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
	buf := make([]byte, 0, len(kid)+1+2*sha256.Size)
	buf = append(buf, kid...)
	buf = append(buf, ':')
	buf = hex.AppendEncode(buf, mac[:])
	return string(buf)
}

// KidRecord is what a keystore holds for one kid. ExpiresAtMs is nil for the
// current kid and set for a verifying kid.
type KidRecord struct {
	Kid         string
	Secret      contracts.Secret
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
func CheckToken(t contracts.Token, message []byte, initialized bool, rec *KidRecord, nowMs int64) error {
	switch {
	case !initialized:
		return NotInitialized()
	case rec == nil:
		return contracts.ErrUnknownKid.With("token: kid %q is not known", t.Kid)
	case !rec.Usable(nowMs):
		return contracts.ErrTokenExpired.With("token: kid %q is past its grace window", t.Kid)
	}
	want := ComputeMAC(t.Kid, rec.Secret, message)
	if !hmac.Equal(want[:], t.MAC[:]) {
		return SignatureMismatch()
	}
	return nil
}

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
		panic("driver: PartitionOf with fewer than one partition")
	}
	var crc uint16
	for i := 0; i < len(scope); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^scope[i]]
	}
	return int(crc) % p
}

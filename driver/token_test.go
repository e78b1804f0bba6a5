package driver

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func TestCRC16MatchesRedisClusterVector(t *testing.T) {
	// The Redis Cluster specification's test vector.
	if got := CRC16([]byte("123456789")); got != 0x31C3 {
		t.Fatalf("CRC16(123456789) = %#04x, want 0x31c3", got)
	}
	if got := CRC16(nil); got != 0 {
		t.Fatalf("CRC16(empty) = %#04x, want 0", got)
	}
}

func TestPartitionOf(t *testing.T) {
	if got := PartitionOf("123456789", 16384); got != 0x31C3 {
		t.Fatalf("PartitionOf = %d, want the Redis slot %d", got, 0x31C3)
	}
	if got := PartitionOf("anything", 1); got != 0 {
		t.Fatalf("PartitionOf(_, 1) = %d, want 0", got)
	}
	if got := PartitionOf("123456789", 256); got != 0x31C3%256 {
		t.Fatalf("PartitionOf(_, 256) = %d, want %d", got, 0x31C3%256)
	}
}

func TestSignTokenIsHMACOverItsInput(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	in := SignatureInput("kid-1", "scope", []byte("hello"))
	m := hmac.New(sha256.New, secret)
	m.Write(in)
	want := "kid-1:" + hex.EncodeToString(m.Sum(nil))
	if got := SignToken("kid-1", secret, in); got != want {
		t.Fatalf("SignToken = %s, want %s", got, want)
	}
}

func TestCheckToken(t *testing.T) {
	secret := contracts.Secret(strings.Repeat("s", 32))
	msg := []byte("message")
	tok, _ := contracts.ParseToken("token", SignToken("k1", secret, msg)) // any input: CheckToken compares MACs
	exp := int64(1000)
	current := &KidRecord{Kid: "k1", Secret: secret}
	verifying := &KidRecord{Kid: "k1", Secret: secret, ExpiresAtMs: &exp}
	cases := []struct {
		name        string
		initialized bool
		rec         *KidRecord
		msg         []byte
		now         int64
		want        error
	}{
		{"current", true, current, msg, 5000, nil},
		{"verifying at expiry", true, verifying, msg, 1000, nil},
		{"verifying one ms late", true, verifying, msg, 1001, contracts.ErrTokenExpired},
		{"unknown kid", true, nil, msg, 0, contracts.ErrUnknownKid},
		{"no keystore", false, nil, msg, 0, contracts.ErrHMACSecretNotInitialized},
		{"wrong message", true, current, []byte("other"), 0, contracts.ErrSignatureMismatch},
		{"wrong secret", true, &KidRecord{Kid: "k1", Secret: contracts.Secret(strings.Repeat("x", 32))}, msg, 0, contracts.ErrSignatureMismatch},
	}
	for _, c := range cases {
		err := CheckToken(tok, c.msg, c.initialized, c.rec, c.now)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestInputLayout(t *testing.T) {
	got := WaitpointInput("k1", "exec-1", "wp", "approve", 1767225600000)
	want := "flowfabric/v2/waitpoint-token\x00" + "\x02k1" + "\x06exec-1" + "\x02wp" + "\x07approve" +
		string(binary.BigEndian.AppendUint64(nil, 1767225600000))
	if string(got) != want {
		t.Fatalf("WaitpointInput = %q, want %q", got, want)
	}
	got = SignatureInput("k1", "s", []byte("hello"))
	want = "flowfabric/v2/signature\x00" + "\x02k1" + "\x00\x01s" + "\x00\x00\x00\x05hello"
	if string(got) != want {
		t.Fatalf("SignatureInput = %q, want %q", got, want)
	}
	if !bytes.Equal(AppendSignatureInput([]byte("x"), "k1", "s", []byte("hello"))[1:], got) {
		t.Fatal("AppendSignatureInput differs from SignatureInput")
	}
}

func TestTokenFingerprint(t *testing.T) {
	tok := "k1:" + strings.Repeat("ab", 32)
	sum := sha256.Sum256([]byte(tok))
	if got := TokenFingerprint(tok); got != hex.EncodeToString(sum[:])[:16] || len(got) != 16 {
		t.Fatalf("TokenFingerprint = %q", got)
	}
}

func TestNewIDIsCanonicalUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if err := contracts.ValidateUUID("id", id); err != nil {
			t.Fatalf("NewID() = %q: %v", id, err)
		}
		if id[14] != '4' || !strings.ContainsRune("89ab", rune(id[19])) {
			t.Fatalf("NewID() = %q is not version 4, variant 10", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

// referenceParseToken is ParseToken's rule written plainly (ValidateKid,
// then hex.Decode of lowercase digits): the fast ParseToken must agree.
// referenceCRC16 is CRC16-XMODEM bit by bit.
func referenceCRC16(b []byte) uint16 {
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

// Every digit position and every byte value: the eight-at-a-time decoder
// accepts exactly the lowercase hex digits, wherever they sit.
func TestCRC16Table(t *testing.T) {
	b := make([]byte, 0, 300)
	for i := range 300 {
		b = append(b, byte(i*7+i>>3))
		if got, want := CRC16(b), referenceCRC16(b); got != want {
			t.Fatalf("CRC16 of %d bytes = %#04x, want %#04x", len(b), got, want)
		}
		if got, want := PartitionOf(string(b), 1000), int(referenceCRC16(b))%1000; got != want {
			t.Fatalf("PartitionOf of %d bytes = %d, want %d", len(b), got, want)
		}
	}
}

func BenchmarkPartitionOf(b *testing.B) {
	for b.Loop() {
		sinkInt = PartitionOf("exec-0001", 256)
	}
}

var sinkInt int

func TestFormatIDIsCanonical(t *testing.T) {
	u := [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}
	if got, want := FormatID(u), "01234567-89ab-cdef-fedc-ba9876543210"; got != want {
		t.Fatalf("FormatID = %q, want %q", got, want)
	}
}

package contracts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
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

func TestSignTokenIsHMACOverKidAndMessage(t *testing.T) {
	secret := []byte(strings.Repeat("k", 32))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("kid-1:hello"))
	want := "kid-1:" + hex.EncodeToString(m.Sum(nil))
	if got := SignToken("kid-1", secret, []byte("hello")); got != want {
		t.Fatalf("SignToken = %s, want %s", got, want)
	}
}

func TestParseToken(t *testing.T) {
	good := SignToken("k.1_a-B", make([]byte, 32), []byte("m"))
	if tok, err := ParseToken("token", good); err != nil || tok.Kid != "k.1_a-B" {
		t.Fatalf("ParseToken(good) = %+v, %v", tok, err)
	}
	mac := good[len(good)-64:]
	bad := map[string]string{
		"empty":          "",
		"no colon":       "k" + mac,
		"empty kid":      ":" + mac,
		"short mac":      "k:" + mac[:63],
		"long mac":       "k:" + mac + "0",
		"uppercase hex":  "k:" + strings.ToUpper(mac),
		"non-hex":        "k:" + strings.Repeat("g", 64),
		"bad kid char":   "k/1:" + mac,
		"colon in kid":   "a:b:" + mac,
		"kid too long":   strings.Repeat("k", 65) + ":" + mac,
		"space trailing": good + " ",
	}
	for name, tok := range bad {
		_, err := ParseToken("token", tok)
		if !errors.Is(err, ErrTokenMalformed) {
			t.Errorf("%s: err = %v, want invalid_token/malformed", name, err)
			continue
		}
		if tok != "" && strings.Contains(err.Error(), mac) {
			t.Errorf("%s: error quotes the MAC: %v", name, err)
		}
	}
}

func TestCheckToken(t *testing.T) {
	secret := Secret(strings.Repeat("s", 32))
	msg := []byte("message")
	tok, _ := ParseToken("token", SignToken("k1", secret, msg))
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
		{"verifying one ms late", true, verifying, msg, 1001, ErrTokenExpired},
		{"unknown kid", true, nil, msg, 0, ErrUnknownKid},
		{"no keystore", false, nil, msg, 0, ErrHMACSecretNotInitialized},
		{"wrong message", true, current, []byte("other"), 0, ErrSignatureMismatch},
		{"wrong secret", true, &KidRecord{Kid: "k1", Secret: Secret(strings.Repeat("x", 32))}, msg, 0, ErrSignatureMismatch},
	}
	for _, c := range cases {
		err := CheckToken(tok, c.msg, c.initialized, c.rec, c.now)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.want)
		}
	}
}

func TestWaitpointMessage(t *testing.T) {
	got := string(WaitpointMessage("exec-1", "wp", "approve", 1767225600000))
	if got != "exec-1|wp|approve|1767225600000" {
		t.Fatalf("WaitpointMessage = %q", got)
	}
}

func TestNewIDIsCanonicalUUIDv4(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := NewID()
		if err := ValidateUUID("id", id); err != nil {
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
func referenceParseToken(s string) (Token, bool) {
	var t Token
	if len(s) < 2+macHexLen || s[len(s)-macHexLen-1] != ':' {
		return Token{}, false
	}
	kid, mac := s[:len(s)-macHexLen-1], s[len(s)-macHexLen:]
	if ValidateKid("token", kid) != nil || strings.ToLower(mac) != mac {
		return Token{}, false
	}
	if _, err := hex.Decode(t.MAC[:], []byte(mac)); err != nil {
		return Token{}, false
	}
	t.Kid = kid
	return t, true
}

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
func TestParseTokenEveryByteAtEveryPosition(t *testing.T) {
	good := SignToken("k1", make([]byte, 32), []byte("m"))
	for pos := len(good) - macHexLen; pos < len(good); pos++ {
		for c := range 256 {
			s := good[:pos] + string([]byte{byte(c)}) + good[pos+1:]
			tok, err := ParseToken("token", s)
			ref, ok := referenceParseToken(s)
			if (err == nil) != ok || tok != ref {
				t.Fatalf("byte %#02x at %d: ParseToken %+v, %v; reference %+v, %v", c, pos, tok, err, ref, ok)
			}
		}
	}
	for c := range 256 {
		s := "k" + string([]byte{byte(c)}) + good[2:]
		tok, err := ParseToken("token", s)
		ref, ok := referenceParseToken(s)
		if (err == nil) != ok || tok != ref {
			t.Fatalf("kid byte %#02x: ParseToken %+v, %v; reference %+v, %v", c, tok, err, ref, ok)
		}
	}
}

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

var (
	sinkToken Token
	sinkInt   int
)

func BenchmarkParseToken(b *testing.B) {
	tok := SignToken("kid-a", make([]byte, 32), []byte("m"))
	for b.Loop() {
		sinkToken, _ = ParseToken("token", tok)
	}
}

func BenchmarkPartitionOf(b *testing.B) {
	for b.Loop() {
		sinkInt = PartitionOf("exec-0001", 256)
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add(SignToken("k1", make([]byte, 32), []byte("m")))
	f.Add("k1:")
	f.Add(":" + strings.Repeat("a", 64))
	f.Add("k1:" + strings.Repeat("A", 64))
	f.Add("k1:" + strings.Repeat("\xe0", 64))
	f.Fuzz(func(t *testing.T, s string) {
		tok, err := ParseToken("token", s)
		if ref, ok := referenceParseToken(s); (err == nil) != ok || tok != ref {
			t.Fatalf("ParseToken %+v, %v; reference %+v, %v", tok, err, ref, ok)
		}
		if err != nil {
			if !errors.Is(err, ErrTokenMalformed) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		// A token that parses re-encodes to itself: the format is canonical.
		if got := tok.Kid + ":" + hex.EncodeToString(tok.MAC[:]); got != s {
			t.Fatalf("round trip %q -> %q", s, got)
		}
	})
}

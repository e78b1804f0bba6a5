package contracts

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

func TestParseToken(t *testing.T) {
	good := "k.1_a-B:" + strings.Repeat("5c", 32)
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

func TestParseTokenEveryByteAtEveryPosition(t *testing.T) {
	good := "k1:" + strings.Repeat("5c", 32)
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

var (
	sinkToken Token
)

func BenchmarkParseToken(b *testing.B) {
	tok := "kid-a:" + strings.Repeat("5c", 32)
	for b.Loop() {
		sinkToken, _ = ParseToken("token", tok)
	}
}

func FuzzParseToken(f *testing.F) {
	f.Add("k1:" + strings.Repeat("5c", 32))
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

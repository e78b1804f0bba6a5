// Package kek seals stored HMAC secrets under a key-encryption key (KEK).
//
// A backend given a Keyring stores each secret in sealed form instead of in
// plain: AES-256-GCM under a key derived from the keyring's primary KEK,
// with the kid and the partition as associated data, so a sealed secret
// opens only for the kid and partition it was written for. Someone who can
// read the store but not the KEK file learns no secret; someone who can
// write the store cannot move a sealed secret to another kid or partition.
//
// # Stored form
//
//	"ffs1" | fingerprint (8 bytes) | nonce (12 bytes) | AES-GCM ciphertext and tag
//
// 72–104 bytes for the contract's 32–64-byte secrets, so it is never
// mistaken for a secret stored in plain (at most 64 bytes). The fingerprint
// names the KEK that sealed it, so a store sealed under a KEK this process
// does not hold fails with a clear kek_mismatch instead of an opaque
// authentication error.
//
// Sealing is deterministic: the nonce is HMAC-SHA256, under a second key
// derived from the KEK, of (partition, kid, secret). The same secret for the
// same kid and partition always seals to the same bytes, so a store can
// compare stored forms (a re-run seed or rotation is a noop, another secret
// is a conflict) without holding the KEK; a nonce repeats only with the
// plaintext and associated data it was derived from, which is the SIV
// construction (RFC 5297) and reveals nothing but that equality.
//
// # Keyrings and rotation of the KEK
//
// A Keyring seals with its primary KEK and opens secrets sealed under any of
// its KEKs, and secrets stored in plain (written before a KEK was
// configured). Changing the KEK without downtime: give every process the new
// KEK as kek_file and the old one as kek_previous_file, run `ff rewrap` to
// re-seal every stored secret under the new KEK (no kid changes), then drop
// kek_previous_file.
package kek

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// Size is the length of a KEK: 32 bytes, an AES-256 key.
const Size = 32

const (
	magic       = "ffs1"
	fpLen       = 8
	nonceLen    = 12
	tagLen      = 16
	headerLen   = len(magic) + fpLen + nonceLen
	minSealed   = headerLen + contracts.MinSecretBytes + tagLen
	maxSealed   = headerLen + contracts.MaxSecretBytes + tagLen
	labelEnc    = "flowfabric kek v1 encryption key"
	labelNonce  = "flowfabric kek v1 nonce key"
	labelFinger = "flowfabric kek v1 fingerprint"
)

// Key is one key-encryption key. Its bytes never print: String and the fmt
// verbs show only its fingerprint.
type Key struct {
	aead     cipher.AEAD
	nonceKey []byte
	fp       [fpLen]byte
}

// New returns the Key for 32 KEK bytes. It keeps no reference to b.
func New(b []byte) (*Key, error) {
	if len(b) != Size {
		return nil, contracts.Invalid("kek", fmt.Sprintf("must be %d bytes (64 hex digits), got %d bytes", Size, len(b)))
	}
	block, err := aes.NewCipher(derive(b, labelEnc))
	if err != nil {
		return nil, contracts.ErrInternal.With("kek: %v", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, contracts.ErrInternal.With("kek: %v", err)
	}
	k := &Key{aead: aead, nonceKey: derive(b, labelNonce)}
	copy(k.fp[:], derive(b, labelFinger))
	return k, nil
}

// derive returns HMAC-SHA256(kek, label): independent subkeys for the
// cipher, the nonces and the fingerprint, so none of them reveals another.
func derive(kek []byte, label string) []byte {
	m := hmac.New(sha256.New, kek)
	m.Write([]byte(label))
	return m.Sum(nil)
}

// Parse reads a KEK file's content: 64 hex digits (either case, surrounding
// whitespace such as a trailing newline ignored) or exactly 32 raw bytes.
// field names the setting in errors (for example "kek_file"); errors never
// quote the content.
func Parse(field string, data []byte) (*Key, error) {
	if len(data) == Size && !isHex(data) {
		return New(data)
	}
	s := strings.TrimSpace(string(data))
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != Size {
		return nil, contracts.Invalid(field, ruleFile)
	}
	return New(b)
}

// ruleFile is the rule a KEK file's content follows.
var ruleFile = fmt.Sprintf("must hold a %d-byte key: 64 hex digits (e.g. from `openssl rand -hex 32`) or %d raw bytes", Size, Size)

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// LoadFile reads and parses the KEK file at path. field names the setting
// in errors; the path is named, the content never.
func LoadFile(field, path string) (*Key, error) {
	if path == "" {
		return nil, contracts.Invalid(field, "must name a file holding the key-encryption key")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, contracts.Invalid(field, fmt.Sprintf("cannot read %s: %v", path, unwrapPathError(err)))
	}
	k, err := Parse(field, data)
	clear(data)
	if err != nil {
		return nil, contracts.Invalid(field, path+": "+ruleFile)
	}
	return k, nil
}

// unwrapPathError drops the path os.ReadFile repeats in its error.
func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// Fingerprint names the key in 16 hex digits, derived one-way from it: safe
// to log, and stored with every secret it seals.
func (k *Key) Fingerprint() string { return hex.EncodeToString(k.fp[:]) }

// String returns "kek:" and the fingerprint.
func (k *Key) String() string { return "kek:" + k.Fingerprint() }

// GoString keeps %#v from printing the key's fields.
func (k *Key) GoString() string { return "kek.Key(" + k.Fingerprint() + ")" }

// Format makes every fmt verb print String, never the key's fields.
func (k *Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// seal returns secret's stored form for kid on partition.
func (k *Key) seal(kid string, partition int, secret []byte) []byte {
	out := make([]byte, headerLen, headerLen+len(secret)+tagLen)
	copy(out, magic)
	copy(out[len(magic):], k.fp[:])
	nonce := out[len(magic)+fpLen : headerLen]
	m := hmac.New(sha256.New, k.nonceKey)
	writeContext(m, kid, partition)
	m.Write(secret)
	copy(nonce, m.Sum(nil))
	return k.aead.Seal(out, nonce, secret, associatedData(out[:len(magic)+fpLen], kid, partition))
}

// open reverses seal; ok is false when the stored form does not
// authenticate for kid and partition.
func (k *Key) open(kid string, partition int, stored []byte) (secret []byte, ok bool) {
	nonce := stored[len(magic)+fpLen : headerLen]
	b, err := k.aead.Open(nil, nonce, stored[headerLen:], associatedData(stored[:len(magic)+fpLen], kid, partition))
	return b, err == nil
}

// associatedData binds a sealed secret to its header, kid and partition.
func associatedData(header []byte, kid string, partition int) []byte {
	var b bytes.Buffer
	b.Write(header)
	writeContext(&b, kid, partition)
	return b.Bytes()
}

// writeContext writes the partition and the length-prefixed kid, an
// unambiguous encoding of the pair.
func writeContext(w interface{ Write([]byte) (int, error) }, kid string, partition int) {
	var n [8]byte
	binary.BigEndian.PutUint32(n[:4], uint32(partition))
	binary.BigEndian.PutUint32(n[4:], uint32(len(kid)))
	w.Write(n[:])
	w.Write([]byte(kid))
}

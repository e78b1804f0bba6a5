package conformance

import (
	"crypto/hmac"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// The token layout of docs/spec.md §3, written here a second time,
// independently of package driver, so that the suite checks drivers
// against the specification rather than against the shared code.

// refWaitpointInput is the MAC input of a waitpoint token.
func refWaitpointInput(kid, executionID, waitpointID, waitpointKey string, createdAtMs int64) []byte {
	b := []byte("flowfabric/v2/waitpoint-token\x00")
	for _, f := range []string{kid, executionID, waitpointID, waitpointKey} {
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	var ts [8]byte
	binary.BigEndian.PutUint64(ts[:], uint64(createdAtMs))
	return append(b, ts[:]...)
}

// refSignatureInput is the MAC input of a signature of the sign API.
func refSignatureInput(kid, scope string, message []byte) []byte {
	b := []byte("flowfabric/v2/signature\x00")
	b = append(b, byte(len(kid)))
	b = append(b, kid...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(scope)))
	b = append(b, scope...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(message)))
	return append(b, message...)
}

// refToken is kid ":" hex(HMAC-SHA256(secret, input)).
func refToken(kid string, secret, input []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(input)
	return kid + ":" + hex.EncodeToString(m.Sum(nil))
}

// expectedToken is the token sign gives for msg in scope under fixture f.
func expectedToken(f fixture, scope string, msg []byte) string {
	return refToken(f.Kid, f.Secret, refSignatureInput(f.Kid, scope, msg))
}

// expectedWaitpointToken is the token of waitpoint wp of executionID under f.
func expectedWaitpointToken(f fixture, executionID string, wp contracts.WaitpointOutcome) string {
	return refToken(f.Kid, f.Secret, refWaitpointInput(f.Kid, executionID, wp.WaitpointID, wp.WaitpointKey, wp.CreatedAtMs))
}

// legacyWaitpointMessage is how a waitpoint was signed before domain tags:
// the message an attacker holding the sign API would sign to mint a token.
func legacyWaitpointMessage(executionID string, wp contracts.WaitpointOutcome) []byte {
	return []byte(executionID + "|" + wp.WaitpointID + "|" + wp.WaitpointKey + "|" + strconv.FormatInt(wp.CreatedAtMs, 10))
}

//go:embed testdata/token_vectors.json
var tokenVectorsJSON []byte

// tokenVector is one published test vector of docs/spec.md §3.
type tokenVector struct {
	Name         string  `json:"name"`
	Purpose      string  `json:"purpose"` // "signature" or "waitpoint"
	Kid          string  `json:"kid"`
	SecretHex    string  `json:"secret_hex"`
	Scope        *string `json:"scope"`
	MessageHex   *string `json:"message_hex"`
	ExecutionID  string  `json:"execution_id"`
	WaitpointID  string  `json:"waitpoint_id"`
	WaitpointKey string  `json:"waitpoint_key"`
	CreatedAtMs  *int64  `json:"created_at_ms"`
	InputHex     string  `json:"input_hex"`
	Token        string  `json:"token"`
}

func (v tokenVector) secret(t testing.TB) contracts.Secret {
	s, err := hex.DecodeString(v.SecretHex)
	require.NoError(t, err, "vector %q: secret_hex", v.Name)
	return s
}

func (v tokenVector) message(t testing.TB) []byte {
	m, err := hex.DecodeString(*v.MessageHex)
	require.NoError(t, err, "vector %q: message_hex", v.Name)
	return m
}

// input rebuilds the vector's MAC input with the reference layout.
func (v tokenVector) input(t testing.TB) []byte {
	if v.Purpose == "signature" {
		return refSignatureInput(v.Kid, *v.Scope, v.message(t))
	}
	return refWaitpointInput(v.Kid, v.ExecutionID, v.WaitpointID, v.WaitpointKey, *v.CreatedAtMs)
}

// tokenVectors returns the published vectors, each checked against the
// reference layout: its input_hex and its token.
func tokenVectors(t testing.TB) []tokenVector {
	var vs []tokenVector
	require.NoError(t, json.Unmarshal(tokenVectorsJSON, &vs), "testdata/token_vectors.json")
	require.GreaterOrEqual(t, len(vs), 12, "docs/spec.md §3 publishes at least 12 vectors")
	for _, v := range vs {
		require.Contains(t, []string{"signature", "waitpoint"}, v.Purpose, "vector %q: purpose", v.Name)
		require.Equal(t, v.InputHex, hex.EncodeToString(v.input(t)), "vector %q: input_hex is not the layout of docs/spec.md §3", v.Name)
		require.Equal(t, v.Token, refToken(v.Kid, v.secret(t), v.input(t)), "vector %q: token", v.Name)
	}
	return vs
}

// signPublishedVectors: every signature vector of docs/spec.md §3 is what
// sign answers for its kid, secret, scope and message, and verifies; the
// same signature under another scope does not; and no waitpoint vector
// verifies, whatever it is presented as.
func signPublishedVectors(t *testing.T, k *keystoreEnv) {
	vs := tokenVectors(t)
	// sign answers with the current kid: install each vector's kid in turn
	// (seed, then rotations whose grace keeps the earlier ones verifying)
	// and sign that kid's vectors while it is current.
	var kids []string
	secrets := map[string]string{}
	for _, v := range vs {
		if _, seen := secrets[v.Kid]; !seen {
			kids = append(kids, v.Kid)
			secrets[v.Kid] = v.SecretHex
		}
		require.Equal(t, secrets[v.Kid], v.SecretHex, "vector %q: one secret per kid", v.Name)
	}
	for i, kid := range kids {
		f := fixture{Kid: kid, Hex: secrets[kid]}
		var err error
		f.Secret, err = hex.DecodeString(f.Hex)
		require.NoError(t, err)
		if i == 0 {
			k.mustSeed(f)
		} else {
			k.mustRotate(f, hourMs)
		}
		for _, v := range vs {
			if v.Purpose != "signature" || v.Kid != kid {
				continue
			}
			out := k.mustSign(*v.Scope, v.message(t))
			require.Equal(t, v.Token, out.Token, "vector %q: sign", v.Name)
			k.mustVerify(*v.Scope, v.message(t), v.Token, v.Kid)
			_, err := k.verify(anotherScope(*v.Scope), v.message(t), v.Token)
			ksWantErr(t, "vector "+v.Name+": verify under another scope", err, contracts.ErrSignatureMismatch)
		}
	}
	for _, v := range vs {
		if v.Purpose != "waitpoint" {
			continue
		}
		wp := contracts.WaitpointOutcome{WaitpointID: v.WaitpointID, WaitpointKey: v.WaitpointKey, CreatedAtMs: *v.CreatedAtMs}
		for _, m := range [][]byte{legacyWaitpointMessage(v.ExecutionID, wp), v.input(t)} {
			for _, scope := range []string{"", v.ExecutionID} {
				_, err := k.verify(scope, m, v.Token)
				ksWantErr(t, "vector "+v.Name+": a waitpoint token presented to verify", err, contracts.ErrSignatureMismatch)
			}
		}
	}
}

// deliverRefusesSignatures: whatever message the sign API signs, its
// output never opens a waitpoint, not even for the message waitpoints were
// signed over before domain tags, or the exact MAC input of the waitpoint;
// and a waitpoint token never verifies (docs/spec.md §3).
func deliverRefusesSignatures(t *testing.T, suite sigSuite) {
	w := suite.open(t)
	s := w.mustSuspend("suspend", suspendArgs("mint-1", contracts.ConditionAny, "approve"))
	wp := s.Waitpoints[0]
	for i, m := range [][]byte{
		legacyWaitpointMessage("mint-1", wp),
		refWaitpointInput(fxA.Kid, "mint-1", wp.WaitpointID, wp.WaitpointKey, wp.CreatedAtMs),
	} {
		for _, scope := range []string{"mint-1", ""} {
			sig, err := w.e.Sign(ctx(), contracts.SignArgs{Scope: scope, Message: m})
			require.NoError(t, err, "sign %d", i)
			require.NotEqual(t, wp.Token, sig.Token, "sign %d under scope %q minted the waitpoint's token", i, scope)
			_, err = w.e.DeliverSignal(ctx(), contracts.DeliverSignalArgs{ExecutionID: "mint-1", WaitpointID: wp.WaitpointID, Token: sig.Token, Name: "forged"})
			sigWantErr(t, "deliver a signature", err, contracts.ErrSignatureMismatch)
			_, err = w.e.Verify(ctx(), contracts.VerifyArgs{Scope: scope, Message: m, Token: wp.Token})
			sigWantErr(t, "verify a waitpoint token", err, contracts.ErrSignatureMismatch)
		}
	}
	out := w.mustDeliver("deliver the real token", signalTo(s, "approve", "ok", ""))
	require.Equal(t, contracts.OutcomeAccepted, out.Outcome, "the waitpoint's own token still delivers")
}

// anotherScope returns a valid scope other than scope, of the same length
// when it has one.
func anotherScope(scope string) string {
	if scope == "" {
		return "x"
	}
	if scope[0] == 'x' {
		return "y" + scope[1:]
	}
	return "x" + scope[1:]
}

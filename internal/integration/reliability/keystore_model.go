package reliability

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strings"

	"github.com/anishathalye/porcupine"
)

// KeystoreOp names a keystore operation of docs/spec.md §4 as the model sees
// it: one partition's share of a call.
type KeystoreOp string

// The keystore operations the model knows.
const (
	KsRotate KeystoreOp = "rotate" // one partition's entry of rotate_all
	KsList   KeystoreOp = "list"   // one partition of list_kids
	KsSign   KeystoreOp = "sign"
	KsVerify KeystoreOp = "verify"
	KsSeed   KeystoreOp = "seed" // only on one-partition backends
)

// KeystoreInput is one partition's share of a keystore call. Secrets are
// named by a small integer (the test derives the bytes from kid and
// variant), so the model compares variants, never bytes.
type KeystoreInput struct {
	Op        KeystoreOp
	Partition int
	Kid       string // rotate: new kid; verify: the token's kid; seed: kid
	Variant   int    // rotate, seed: the secret given; verify: the secret that signed the token
}

// KeystoreOutput is what the call answered for that partition.
type KeystoreOutput struct {
	Err        string   // "code" or "code/reason" of a contract error; "" on success
	Outcome    string   // rotate: rotated|noop; seed: seeded|already_seeded|already_initialized
	Kid        string   // sign, verify: the kid; rotate: previous_kid; seed: current_kid; list: current kid
	Verifying  []string // list: the verifying kids, sorted by name
	SignedWith int      // sign: the variant whose secret produced the token, -1 if none did
	SameSecret bool     // seed already_seeded
}

// ksState is one partition's keystore: the current kid and the verifying
// kids, each with the variant of its secret. Grace windows in the histories
// are long, so nothing expires and nothing is collected. Values are
// immutable; key is their canonical form.
type ksState struct {
	current string
	vars    map[string]int // kid -> variant, current included
	key     string
}

func newKsState(current string, vars map[string]int) *ksState {
	kids := make([]string, 0, len(vars))
	for k, v := range vars {
		kids = append(kids, fmt.Sprintf("%s=%d", k, v))
	}
	sort.Strings(kids)
	return &ksState{current: current, vars: vars, key: current + "|" + strings.Join(kids, ",")}
}

func (s *ksState) verifying() []string {
	out := make([]string, 0, len(s.vars))
	for k := range s.vars {
		if k != s.current {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

// KeystoreModel returns the porcupine model of one keystore partition whose
// initial state is initialKid current with secret variant 0 (the histories
// start after a seed). Operations are partitioned by Partition.
func KeystoreModel(initialKid string) porcupine.Model {
	return porcupine.Model{
		Partition: partitionBy(func(in any) (string, bool) {
			return fmt.Sprint(in.(KeystoreInput).Partition), true
		}),
		Init: func() any { return newKsState(initialKid, map[string]int{initialKid: 0}) },
		Step: func(state, input, output any) (bool, any) {
			return ksStep(state.(*ksState), input.(KeystoreInput), output.(KeystoreOutput))
		},
		Equal: func(a, b any) bool { return a.(*ksState).key == b.(*ksState).key },
		Hash:  func(s any) uint64 { return hashString(s.(*ksState).key) },
		DescribeOperation: func(input, output any) string {
			return fmt.Sprintf("%+v -> %+v", input, output)
		},
		DescribeState: func(s any) string { return s.(*ksState).key },
	}
}

func ksStep(s *ksState, in KeystoreInput, out KeystoreOutput) (bool, any) {
	switch in.Op {
	case KsRotate:
		return ksRotate(s, in, out)
	case KsList:
		return out.Err == "" && out.Kid == s.current && equalStrings(out.Verifying, s.verifying()), s
	case KsSign:
		return out.Err == "" && out.Kid == s.current && out.SignedWith == s.vars[s.current], s
	case KsVerify:
		v, known := s.vars[in.Kid]
		switch {
		case !known:
			return out.Err == "invalid_token/unknown_kid", s
		case v != in.Variant:
			return out.Err == "invalid_token/signature_mismatch", s
		default:
			return out.Err == "" && out.Kid == in.Kid, s
		}
	case KsSeed:
		if v, known := s.vars[in.Kid]; known {
			return out.Err == "" && out.Outcome == "already_seeded" && out.Kid == s.current && out.SameSecret == (v == in.Variant), s
		}
		return out.Err == "" && out.Outcome == "already_initialized" && out.Kid == s.current, s
	}
	return false, s
}

// ksRotate is PlanRotate with long graces: noop on the current kid with its
// secret, rotation_conflict on any other remembered kid, else rotated.
func ksRotate(s *ksState, in KeystoreInput, out KeystoreOutput) (bool, any) {
	v, known := s.vars[in.Kid]
	switch {
	case known && in.Kid == s.current && v == in.Variant:
		return out.Err == "" && out.Outcome == "noop", s
	case known:
		return out.Err == "rotation_conflict", s
	}
	if out.Err != "" || out.Outcome != "rotated" || out.Kid != s.current {
		return false, s
	}
	vars := make(map[string]int, len(s.vars)+1)
	for k, x := range s.vars {
		vars[k] = x
	}
	vars[in.Kid] = in.Variant
	return true, newKsState(in.Kid, vars)
}

// partitionBy splits a history by a key of each operation's input; an
// operation whose key function answers false is left out of every
// partition (it constrains no single key).
func partitionBy(key func(input any) (string, bool)) func([]porcupine.Operation) [][]porcupine.Operation {
	return func(history []porcupine.Operation) [][]porcupine.Operation {
		groups := map[string][]porcupine.Operation{}
		var order []string
		for _, op := range history {
			k, ok := key(op.Input)
			if !ok {
				continue
			}
			if _, seen := groups[k]; !seen {
				order = append(order, k)
			}
			groups[k] = append(groups[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(order))
		for _, k := range order {
			out = append(out, groups[k])
		}
		return out
	}
}

func hashString(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

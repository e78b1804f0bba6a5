package engine

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// recordingBackend counts driver calls. Its methods come from the embedded
// nil interface, so any call the Engine should have refused panics the test.
type recordingBackend struct {
	driver.Backend

	calls int
}

func (b *recordingBackend) Sign(context.Context, contracts.SignArgs) (contracts.SignResult, error) {
	b.calls++
	return contracts.SignResult{}, errors.New("driver failure")
}

func (b *recordingBackend) ListSuspended(_ context.Context, a contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	b.calls++
	if a.Limit != contracts.DefaultListLimit {
		return contracts.ListSuspendedResult{}, contracts.Invalid("limit", "default not applied")
	}
	return contracts.ListSuspendedResult{}, nil
}

func TestRegisterPanics(t *testing.T) {
	open := func(context.Context, *url.URL) (driver.Backend, error) { return nil, nil }
	Register("enginetest", open)
	for name, f := range map[string]func(){
		"nil opener": func() { Register("enginetest-nil", nil) },
		"duplicate":  func() { Register("enginetest", open) },
		"uppercase":  func() { Register("EngineTest", open) },
		"empty":      func() { Register("", open) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: Register did not panic", name)
				}
			}()
			f()
		}()
	}
	s := Schemes()
	for i := 1; i < len(s); i++ {
		if s[i-1] >= s[i] {
			t.Fatalf("Schemes() not sorted: %v", s)
		}
	}
}

func TestOpenUnknownSchemeListsRegisteredAndRedacts(t *testing.T) {
	Register("enginetest-known", func(context.Context, *url.URL) (driver.Backend, error) { return &recordingBackend{}, nil })
	_, err := Open(context.Background(), "nosuch://user:hunter2@host/db")
	if !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("err = %v, want invalid_input", err)
	}
	msg := err.Error()
	for _, want := range []string{"nosuch", "enginetest-known", "blank-imported", "backend_url"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "hunter2") {
		t.Fatalf("error leaks the password: %q", msg)
	}
	if _, err := Open(context.Background(), "::not a url"); !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("unparsable URL: %v", err)
	}
}

func TestEngineValidatesBeforeCallingDriver(t *testing.T) {
	b := &recordingBackend{}
	e := New(b)
	ctx := context.Background()
	if _, err := e.Sign(ctx, contracts.SignArgs{Scope: strings.Repeat("s", 257)}); !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("oversized scope: %v", err)
	}
	if _, err := e.Verify(ctx, contracts.VerifyArgs{Token: "nope"}); !errors.Is(err, contracts.ErrTokenMalformed) {
		t.Fatalf("malformed token: %v", err)
	}
	if _, err := e.Seed(ctx, contracts.SeedArgs{Kid: "k:1"}); !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("bad kid: %v", err)
	}
	if b.calls != 0 {
		t.Fatalf("driver called %d times for rejected input", b.calls)
	}
}

func TestEngineMapsDriverErrorsAndDefaults(t *testing.T) {
	b := &recordingBackend{}
	e := New(b)
	_, err := e.Sign(context.Background(), contracts.SignArgs{Scope: "s"})
	var ce *contracts.Error
	if !errors.As(err, &ce) || ce.Code != contracts.CodeInternal || ce.Err == nil {
		t.Fatalf("driver error not mapped: %v", err)
	}
	if _, err := e.ListSuspended(context.Background(), contracts.ListSuspendedArgs{}); err != nil {
		t.Fatalf("default limit: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Sign(ctx, contracts.SignArgs{}); !errors.Is(err, contracts.ErrCanceled) {
		t.Fatalf("canceled context: %v", err)
	}
	if b.calls != 2 {
		t.Fatalf("driver calls = %d, want 2", b.calls)
	}
}

func TestMigrateWithoutMigratorIsEmpty(t *testing.T) {
	Register("enginetest-nomigrate", func(context.Context, *url.URL) (driver.Backend, error) { return nil, nil })
	applied, err := Migrate(context.Background(), "enginetest-nomigrate://x")
	if err != nil || applied == nil || len(applied) != 0 {
		t.Fatalf("Migrate = %v, %v; want empty list", applied, err)
	}
	if _, err := Migrate(context.Background(), "nosuch://x"); !errors.Is(err, contracts.ErrInvalidInput) {
		t.Fatalf("unknown scheme: %v", err)
	}
}

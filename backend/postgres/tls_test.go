package postgres_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

// A certificate the client cannot verify is unavailable / tls_failed, not
// retryable, naming the problem — not a retryable backend_unreachable with
// the cause dropped. The test server has a self-signed certificate
// (scripts/test-servers.sh); on one without TLS the failure is the server's
// refusal, named as such.
func TestTLSFailureNamesTheCertificateProblem(t *testing.T) {
	base := testenv.PostgresURL(t)
	want := "x509: certificate signed by unknown authority"
	if c, err := pgx.Connect(context.Background(), withParam(t, base, "sslmode", "require")); err != nil {
		want = "the server refused TLS"
	} else {
		_ = c.Close(context.Background())
	}
	_, err := engine.OpenBackend(context.Background(), withParam(t, base, "sslmode", "verify-full"))
	var ce *contracts.Error
	if !errors.As(err, &ce) || !errors.Is(err, contracts.ErrTLSFailed) || ce.Retryable {
		t.Fatalf("open with sslmode=verify-full: %v; want unavailable/tls_failed, not retryable", err)
	}
	if !strings.Contains(ce.Detail, "postgres: TLS handshake failed: ") || !strings.Contains(ce.Detail, want) {
		t.Fatalf("detail %q does not name %q", ce.Detail, want)
	}
}

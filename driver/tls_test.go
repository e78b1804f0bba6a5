package driver_test

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/driver"
)

// Real handshakes that fail — an untrusted certificate (httptest's
// self-signed one), a name the certificate does not cover, a server that
// speaks no TLS — are tls_failed, not retryable, naming the problem and
// wrapping the handshake's error; errors that are not TLS failures are
// left to the driver.
func TestTLSFailureNamesTheCertificateProblem(t *testing.T) {
	srv := httptest.NewTLSServer(nil)
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "https://")
	trusted := x509.NewCertPool()
	trusted.AddCert(srv.Certificate())

	plain, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	go func() {
		for {
			c, err := plain.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte("-ERR not TLS\r\n"))
			_ = c.Close()
		}
	}()

	for _, c := range []struct {
		name, addr string
		cfg        *tls.Config
		want       string
	}{
		{"UnknownAuthority", addr, &tls.Config{ServerName: "127.0.0.1"}, "x509: certificate signed by unknown authority"},
		{"WrongName", addr, &tls.Config{RootCAs: trusted, ServerName: "db.internal"}, "x509: certificate is valid for"},
		{"NoTLS", plain.Addr().String(), &tls.Config{ServerName: "127.0.0.1"}, "the server did not answer in TLS"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := tls.Dial("tcp", c.addr, c.cfg)
			ce, ok := driver.TLSFailure("valkey", err)
			if !ok || !errors.Is(ce, contracts.ErrTLSFailed) || ce.Retryable || !errors.Is(ce, err) {
				t.Fatalf("%v: got %v, %v; want a tls_failed, not retryable, wrapping the error", err, ce, ok)
			}
			if !strings.HasPrefix(ce.Detail, "valkey: TLS handshake failed: ") || !strings.Contains(ce.Detail, c.want) {
				t.Fatalf("detail %q does not name %q", ce.Detail, c.want)
			}
		})
	}

	_, err = tls.Dial("tcp", addr, &tls.Config{RootCAs: trusted, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("a trusted handshake failed: %v", err)
	}
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	refused := closed.Addr().String()
	closed.Close()
	if _, err := net.Dial("tcp", refused); err != nil {
		if ce, ok := driver.TLSFailure("valkey", err); ok {
			t.Fatalf("a refused connection is not a TLS failure: %v", ce)
		}
	}
	if _, ok := driver.TLSFailure("valkey", nil); ok {
		t.Fatal("nil is not a TLS failure")
	}
}

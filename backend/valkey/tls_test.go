package valkey

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// selfSigned writes a self-signed certificate for 127.0.0.1 and localhost
// (its own CA) and its key into dir, mode 0600, and returns their paths.
func selfSigned(t *testing.T, dir string) (cert, key string) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "flowfabric test server"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	require.NoError(t, err)
	cert, key = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return cert, key
}

// requireTLSFailed asserts unavailable / tls_failed, not retryable, whose
// detail names the problem.
func requireTLSFailed(t *testing.T, err error, cause string) {
	t.Helper()
	require.ErrorIs(t, err, contracts.ErrTLSFailed)
	var ce *contracts.Error
	require.True(t, errors.As(err, &ce))
	require.False(t, ce.Retryable)
	require.Contains(t, ce.Detail, "valkey: TLS handshake failed")
	require.Contains(t, ce.Detail, cause)
}

// A TLS server whose certificate no root the client trusts signed answers
// tls_failed naming "certificate signed by unknown authority" (not a
// retryable backend_unreachable); with verification off the same server
// serves.
func TestTLSFailures(t *testing.T) {
	forEachFamily(t, func(t *testing.T, fam family) {
		cert, key := selfSigned(t, t.TempDir())
		srv := startTLS(t, fam, cert, key, cert, noPersistence...)
		open := func(raw string) (*Backend, error) {
			u, err := url.Parse(raw)
			require.NoError(t, err)
			b, err := Open(bg, u)
			if err == nil {
				t.Cleanup(func() { _ = b.Close() })
			}
			return b, err
		}

		t.Run("UnknownAuthority", func(t *testing.T) {
			_, err := open(fmt.Sprintf("valkeys://%s/0?partitions=2&dial_timeout=2s", srv.Addr()))
			requireTLSFailed(t, err, "certificate signed by unknown authority")
		})
		t.Run("VerificationOff", func(t *testing.T) {
			b, err := open(fmt.Sprintf("rediss://%s/0?partitions=2&skip_verify=true&prefix=tls:", srv.Addr()))
			require.NoError(t, err)
			require.NoError(t, b.Ping(bg))
			mustSeed(t, b, "kid-a", secret(1))
		})
	})
}

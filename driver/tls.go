package driver

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"strings"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// TLSFailure interprets err as a failed TLS handshake with the store, if it
// is one: a certificate that does not verify (unknown authority, expired or
// not yet valid, a name it does not cover), a TLS alert from the server, or
// a server that refused TLS. It returns unavailable / tls_failed, not
// retryable, whose detail names store and the certificate problem (the
// words of crypto/x509 and crypto/tls, which hold no secret), wrapping err.
// Drivers call it before they map connection errors to the retryable
// backend_unreachable: a certificate problem does not go away on retry.
func TLSFailure(store string, err error) (*contracts.Error, bool) {
	if err == nil {
		return nil, false
	}
	var (
		verify    *tls.CertificateVerificationError
		unknown   x509.UnknownAuthorityError
		invalid   x509.CertificateInvalidError
		hostname  x509.HostnameError
		alert     tls.AlertError
		recordHdr tls.RecordHeaderError
	)
	var cause string
	switch {
	case errors.As(err, &unknown):
		cause = unknown.Error()
	case errors.As(err, &invalid):
		cause = invalid.Error()
	case errors.As(err, &hostname):
		cause = hostname.Error()
	case errors.As(err, &verify):
		cause = verify.Err.Error()
	case errors.As(err, &alert):
		cause = "the server sent TLS alert: " + alert.Error()
	case errors.As(err, &recordHdr):
		cause = "the server did not answer in TLS (is TLS enabled on that port?)"
	case strings.Contains(err.Error(), "server refused TLS connection"):
		cause = "the server refused TLS (it has no TLS configured); use sslmode=disable or enable TLS on the server"
	default:
		return nil, false
	}
	return contracts.ErrTLSFailed.With("%s: TLS handshake failed: %s", store, cause).Wrapping(err), true
}

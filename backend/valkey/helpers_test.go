package valkey

import (
	"context"
	"net/url"
	"strconv"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/flowfabric/flowfabric-go/conformance"
	"github.com/flowfabric/flowfabric-go/driver"
	"github.com/flowfabric/flowfabric-go/internal/testenv"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// server names one kind of test server.
type server struct {
	name string
	url  func(t testing.TB) string
}

var servers = []server{
	{"Standalone", testenv.ValkeyURL},
	{"Cluster", testenv.ValkeyClusterURL},
}

// backendURL returns serverURL with the driver's options set.
func backendURL(t testing.TB, serverURL string, partitions int, prefix string) string {
	t.Helper()
	u, err := url.Parse(serverURL)
	if err != nil {
		t.Fatalf("test server URL does not parse")
	}
	q := u.Query()
	q.Set(OptionPartitions, strconv.Itoa(partitions))
	q.Set(OptionPrefix, prefix)
	u.RawQuery = q.Encode()
	return u.String()
}

// openURL opens a backend (closed when t ends), optionally configuring its
// client before the first command.
func openURL(t testing.TB, rawURL string, configure func(redis.UniversalClient)) *Backend {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatalf("url.Parse: %v", err)
	}
	b, err := open(context.Background(), u, configure)
	if err != nil {
		t.Fatalf("open %s: %v", u.Redacted(), err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// openFresh opens a backend with P partitions under a fresh prefix.
func openFresh(t testing.TB, s server, partitions int) (*Backend, string) {
	t.Helper()
	raw := backendURL(t, s.url(t), partitions, testenv.KeyPrefix(t))
	return openURL(t, raw, nil), raw
}

// harness makes conformance backends on server s with P partitions, each
// under its own key prefix; Reopen opens the same URL and prefix again, and
// Raw reads every key under the prefix with a client of its own.
func harness(s server, partitions int) conformance.Harness {
	var urls sync.Map // *Backend -> URL
	return conformance.Harness{
		Open: func(t testing.TB, _ *conformance.Clock) driver.Backend {
			b, raw := openFresh(t, s, partitions)
			urls.Store(b, raw)
			return b
		},
		Reopen: func(t testing.TB, b driver.Backend) driver.Backend {
			raw, ok := urls.Load(b)
			if !ok {
				t.Fatalf("Reopen: backend not opened by this harness")
			}
			nb := openURL(t, raw.(string), nil)
			urls.Store(nb, raw)
			return nb
		},
		Raw: rawStore,
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

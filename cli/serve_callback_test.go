package cli_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flowfabric/flowfabric-go/cli"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
	"github.com/stretchr/testify/require"
)

// TestServeCallbackBaseURL: --callback-base-url turns the callback routes
// on (the listening line says so); without it they answer 404; a URL that
// is not an absolute http(s) URL without credentials, query or fragment is
// a usage error that does not echo it.
func TestServeCallbackBaseURL(t *testing.T) {
	for _, bad := range []string{"hooks.example.com", "ftp://h", "https://user:hunter2@h", "https://h/?q=1", ""} {
		r := run(t, "", "--backend", "memory://", "serve", "--listen", "127.0.0.1:0", "--callback-base-url", bad)
		r.usage(t, "--callback-base-url: must be an absolute http or https URL")
		require.NotContains(t, r.stderr, "hunter2")
	}

	for _, on := range []bool{true, false} {
		ctx, cancel := context.WithCancel(context.Background())
		var out, errOut syncbuf.Buffer
		args := []string{"--backend", "memory://", "serve", "--listen", "127.0.0.1:0"}
		if on {
			args = append(args, "--callback-base-url", "https://hooks.example.com")
		}
		done := make(chan int, 1)
		go func() { done <- cli.Run(ctx, args, strings.NewReader(""), &out, &errOut) }()
		addr := waitListening(t, &errOut)
		resp, err := http.Post("http://"+addr+"/v1/callbacks/e/00000000-0000-4000-8000-000000000000/k1:"+strings.Repeat("0", 64), "application/json", nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if on {
			// The route is on: the keystore is empty, so the delivery is refused by the store.
			require.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)
			require.Contains(t, errOut.String(), `"callback_urls":true`)
		} else {
			require.Equal(t, http.StatusNotFound, resp.StatusCode, "%s", body)
			require.Contains(t, string(body), "callback URLs are off")
		}
		cancel()
		select {
		case code := <-done:
			require.Equal(t, cli.ExitOK, code, errOut.String())
		case <-time.After(15 * time.Second):
			t.Fatal("serve did not stop")
		}
	}
}

package valkey

import (
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/internal/syncbuf"
)

// captureSlog makes slog.Default a JSON logger writing to the returned
// buffer until t ends (and puts the log package's output back too, which
// slog.SetDefault redirects).
func captureSlog(t *testing.T) *syncbuf.Buffer {
	t.Helper()
	buf := &syncbuf.Buffer{}
	prev, w, flags := slog.Default(), log.Writer(), log.Flags()
	slog.SetDefault(slog.New(slog.NewJSONHandler(buf, nil)))
	t.Cleanup(func() {
		slog.SetDefault(prev)
		log.SetOutput(w)
		log.SetFlags(flags)
	})
	return buf
}

// go-redis' own log lines reach slog.Default as JSON: a pool that cannot
// dial a closed port logs one, at WARN, message "valkey client", with the
// text in "text"; the URL's password appears nowhere.
func TestClientLogsReachSlog(t *testing.T) {
	buf := captureSlog(t)
	const password = "pw-never-logged-7f3a"
	raw := fmt.Sprintf("redis://ff:%s@127.0.0.1:%d/0?dial_timeout=200ms", password, freePort(t))
	u, err := url.Parse(raw)
	require.NoError(t, err)
	_, err = Open(bg, u)
	require.ErrorIs(t, err, contracts.ErrBackendUnreachable)

	var line map[string]any
	require.Eventually(t, func() bool {
		for _, l := range strings.Split(buf.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "valkey client" &&
				strings.Contains(fmt.Sprint(m["text"]), "failed to dial") {
				line = m
				return true
			}
		}
		return false
	}, 10*time.Second, 20*time.Millisecond, "no go-redis line in %q", buf.String())
	require.Equal(t, "WARN", line["level"])
	require.Contains(t, line["text"], "connection refused")
	require.NotContains(t, buf.String(), password)
	require.NotContains(t, err.Error(), password)
}

package console

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 999 * time.Millisecond: "0s", 12 * time.Second: "12s", 4*time.Minute + 10*time.Second: "4m 10s",
		2*time.Hour + 5*time.Minute + 9*time.Second: "2h 5m", 2 * time.Hour: "2h 0m",
		(3*24+4)*time.Hour + time.Minute: "3d 4h", -90 * time.Second: "1m 30s",
	} {
		require.Equal(t, want, humanDuration(d), d.String())
	}
	require.Equal(t, "in 1m 0s", countdownText(0, 60_000))
	require.Equal(t, "5s ago", countdownText(5_000, 0))
}

func TestViewPayload(t *testing.T) {
	require.True(t, viewPayload(nil).Null)
	require.True(t, viewPayload([]byte("null")).Null)
	v := viewPayload([]byte(`{"a":[1]}`))
	require.Equal(t, "{\n  \"a\": [\n    1\n  ]\n}", v.Text)
	require.Equal(t, 9, v.Bytes)
	big := viewPayload([]byte(`"` + strings.Repeat("é", MaxPayloadView) + `"`))
	require.True(t, big.Truncated)
	require.LessOrEqual(t, len(big.Text), MaxPayloadView)
	require.True(t, strings.HasSuffix(big.Text, "é"), "cut on a rune boundary")
}

func TestRanges(t *testing.T) {
	require.Equal(t, "0", ranges([]int{0}))
	require.Equal(t, "0–255", ranges(func() []int {
		var ps []int
		for i := range 256 {
			ps = append(ps, i)
		}
		return ps
	}()))
	require.Equal(t, "0–3, 7, 9–10", ranges([]int{0, 1, 2, 3, 7, 9, 10}))
}

func TestParseExposition(t *testing.T) {
	in := "# HELP x y\n# TYPE x counter\n" +
		`ff_http_requests_total{outcome="ok",route="deliver_signal"} 12` + "\n" +
		`weird{a="q\"uo\\te,}",b="2"} 1.5e+01 1700000000` + "\n" +
		"plain 3\n" +
		"broken{a=\"x\" 1\n" +
		"nan_value NaN\n"
	got := parseExposition([]byte(in))
	require.Len(t, got, 4)
	require.Equal(t, "deliver_signal", got[0].Labels["route"])
	require.Equal(t, 12.0, got[0].Value)
	require.Equal(t, `q"uo\te,}`, got[1].Labels["a"])
	require.Equal(t, "2", got[1].Labels["b"])
	require.Equal(t, 15.0, got[1].Value)
	require.Equal(t, "plain", got[2].Name)
}

func TestParseGrace(t *testing.T) {
	ms, err := parseGrace(" 24h ")
	require.NoError(t, err)
	require.Equal(t, int64(86_400_000), ms)
	ms, err = parseGrace("0s")
	require.NoError(t, err)
	require.Zero(t, ms)
	for _, bad := range []string{"", "1 day", "-1s", "1us"} {
		_, err := parseGrace(bad)
		require.Error(t, err, bad)
	}
}

func TestSafeNext(t *testing.T) {
	c := &Console{prefix: "/console/"}
	require.True(t, c.safeNext("/console/keys?x=1"))
	for _, bad := range []string{"", "/", "//evil/console/", "/console/../x", "/console/\\evil", "https://x/console/", "/console/x\r\nSet-Cookie: a=b"} {
		require.False(t, c.safeNext(bad), bad)
	}
}

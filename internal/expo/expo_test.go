package expo_test

import (
	"bytes"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/flowfabric/flowfabric-go/internal/expo"
	"github.com/flowfabric/flowfabric-go/internal/expo/expotest"
)

func TestHistogramBucketBoundaries(t *testing.T) {
	hv := expo.NewHistogramVec("h_seconds", "h.", expo.ExponentialBuckets(0.0001, 2.5, 12), "k")
	for _, v := range []float64{0, 0.0001, math.Nextafter(0.0001, 1), 0.00025, 2.384185791015625, 3, math.Inf(1)} {
		hv.Observe(v, "x")
	}
	var b bytes.Buffer
	hv.AppendText(&b)
	x, err := expotest.Parse(b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String())
	}
	wantCum := map[string]float64{"0.0001": 2, "0.00025": 4, "0.000625": 4, "2.384185791015625": 5, "+Inf": 7}
	for le, want := range wantCum {
		if got := x.Value(t, "h_seconds_bucket", "k", "x", "le", le); got != want {
			t.Errorf("le=%s: %v, want %v", le, got, want)
		}
	}
	if got := x.Value(t, "h_seconds_count", "k", "x"); got != 7 {
		t.Errorf("_count = %v", got)
	}
	if got := x.Value(t, "h_seconds_sum", "k", "x"); !math.IsInf(got, 1) {
		t.Errorf("_sum = %v, want +Inf", got)
	}
	// The bounds are the float64 values client_golang's ExponentialBuckets
	// made, so the le labels are unchanged for existing dashboards.
	if fmt.Sprint(hv.Les()) != "[0.0001 0.00025 0.000625 0.0015625 0.00390625 0.009765625 0.0244140625 0.06103515625 0.152587890625 0.3814697265625 0.95367431640625 2.384185791015625 +Inf]" {
		t.Errorf("le = %v", hv.Les())
	}
}

func TestGauge(t *testing.T) {
	t.Run("goes up and down, and shows 0 once created", func(t *testing.T) {
		g := expo.NewGaugeVec("in_flight", "In flight.")
		r := expo.NewRegistry(g)
		require.Empty(t, r.Exposition(), "no series yet")

		g.Add(0)
		require.Equal(t, "# HELP in_flight In flight.\n# TYPE in_flight gauge\nin_flight 0\n", string(r.Exposition()))

		g.Add(3)
		g.Add(-1)
		x, err := expotest.Parse(r.Exposition())
		require.NoError(t, err)
		require.Equal(t, 2.0, x.Value(t, "in_flight"))

		g.Set(-5)
		x, err = expotest.Parse(r.Exposition())
		require.NoError(t, err)
		require.Equal(t, -5.0, x.Value(t, "in_flight"))
	})
	t.Run("labelled series are sorted by value", func(t *testing.T) {
		g := expo.NewGaugeVec("g", "G.", "k")
		g.Set(2, "b")
		g.Set(1, "a")
		require.Equal(t, "# HELP g G.\n# TYPE g gauge\ng{k=\"a\"} 1\ng{k=\"b\"} 2\n", string(expo.NewRegistry(g).Exposition()))
	})
}

func TestRegistry(t *testing.T) {
	t.Run("families are written sorted by name", func(t *testing.T) {
		b := expo.NewCounterVec("b_total", "B.")
		a := expo.NewCounterVec("a_total", "A.", "x")
		b.Add(2)
		a.Inc("1")
		require.Equal(t, "# HELP a_total A.\n# TYPE a_total counter\na_total{x=\"1\"} 1\n"+
			"# HELP b_total B.\n# TYPE b_total counter\nb_total 2\n", string(expo.NewRegistry(b, a).Exposition()))
	})
	t.Run("a name registered twice panics", func(t *testing.T) {
		require.Panics(t, func() { expo.NewRegistry(expo.NewCounterVec("a_total", "A."), expo.NewGaugeVec("a_total", "A.")) })
	})
	t.Run("unsorted label names panic", func(t *testing.T) {
		require.Panics(t, func() { expo.NewCounterVec("a_total", "A.", "b", "a") })
	})
}

func TestServeExposition(t *testing.T) {
	body := []byte("a_total 1\n")
	for _, method := range []string{http.MethodGet, http.MethodHead} {
		w := httptest.NewRecorder()
		expo.ServeExposition(w, httptest.NewRequest(method, "/metrics", nil), body)
		require.Equal(t, http.StatusOK, w.Code, method)
		require.Equal(t, expo.ContentType, w.Header().Get("Content-Type"), method)
		require.Equal(t, "10", w.Header().Get("Content-Length"), method)
		if method == http.MethodGet {
			require.Equal(t, string(body), w.Body.String())
		} else {
			require.Zero(t, w.Body.Len(), "HEAD has no body")
		}
	}
}

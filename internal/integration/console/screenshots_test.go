package console_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// ScreenshotsEnv names the directory TestConsoleScreenshots writes the
// console's screenshots to (make console-screenshots sets it to docs/).
const ScreenshotsEnv = "FF_CONSOLE_SCREENSHOTS"

// TestConsoleScreenshots fills a server with a day's worth of waits,
// signals, traffic and rotations, and saves a PNG of each console page.
// It runs only when FF_CONSOLE_SCREENSHOTS names a directory.
func TestConsoleScreenshots(t *testing.T) {
	dir := os.Getenv(ScreenshotsEnv)
	if dir == "" {
		t.Skip("set " + ScreenshotsEnv + " to a directory to write the console's screenshots (make console-screenshots)")
	}
	s := startServer(t, 300*time.Millisecond)
	base := s.srv.URL

	// Waits: orders and invoices, some with timeouts.
	for i, tags := range [][]string{
		{"orders", "eu"}, {"orders", "vip"}, {"orders"}, {"billing"}, {"orders", "eu"},
		{"returns"}, {"orders", "us"}, {"billing", "us"}, {"orders", "vip"}, {"kyc"},
	} {
		timeout := time.Duration(0)
		if i%3 != 2 {
			timeout = time.Duration(2+i*5) * time.Hour
		}
		s.suspend(fmt.Sprintf("order-%d", 7100+i*13), timeout, tags, "approve", "ship")
		time.Sleep(20 * time.Millisecond)
	}
	shown := s.suspend("order-7777", 48*time.Hour, []string{"orders", "vip"}, "approve", "ship", "invoice")
	require.Equal(t, http.StatusOK, s.signal(shown, 0, "approved", map[string]any{
		"approved_by": "ana.lima@example.com", "amount": map[string]any{"value": 1299.5, "currency": "EUR"},
		"comment": "Fine by me <b>after</b> the call", "lines": []int{3, 7},
	}, "mail-7f3a"))
	require.Equal(t, http.StatusOK, s.signal(shown, 2, "invoice_sent", map[string]any{"invoice": "INV-2291", "pdf_bytes": 48213}, ""))

	// Traffic for the rate charts: suspends, signals, claims and a few
	// rejected tokens, at a changing pace.
	for step := range 24 {
		for j := range 1 + step%6 {
			id := fmt.Sprintf("load-%d-%d", step, j)
			sus := s.adminSuspend(t, id)
			s.signalRaw(t, id, sus, "done")
			s.claimAndComplete(t)
		}
		if step%5 == 0 {
			s.signalRaw(t, "order-7100", "00000000-0000-4000-8000-000000000000", "k1:"+string(bytes.Repeat([]byte("0"), 64)))
		}
		time.Sleep(150 * time.Millisecond)
	}

	// One execution claimed for an hour, and one whose 1 s lease has run
	// out by the time the pages are shot: the overview counts both. Nothing
	// else is claimable here, so each claim takes the one just resumed.
	for _, c := range []struct {
		id      string
		leaseMs int
	}{{"order-7300", 3_600_000}, {"order-7301", 1000}} {
		sus := s.adminSuspend(t, c.id)
		s.signalRaw(t, c.id, sus, "done")
		var got struct {
			ExecutionID string `json:"execution_id"`
		}
		s.admin(t, "/v1/admin/claim", fmt.Sprintf(`{"worker_id":"w2","lease_ms":%d}`, c.leaseMs), &got)
		require.Equal(t, c.id, got.ExecutionID)
	}

	// One wait past its timeout (the claims above would have taken it).
	s.suspend("invoice-2291", time.Second, []string{"billing", "eu"}, "paid")

	// Traffic goes on while the pages are shot, so the charts end on a rate.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			s.cycle(fmt.Sprintf("bg-%d", i))
		}
	}()
	defer func() { close(stop); <-done }()
	time.Sleep(1500 * time.Millisecond)

	// Two rotations: k1 verifies for 6 more hours, k2 for a day.
	b := newBrowser(t, 1280, 860)
	shot := func(name string) {
		png := run(t, b, chromedp.FullScreenshot(100))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), png, 0o644))
		t.Logf("wrote %s (%d bytes)", filepath.Join(dir, name), len(png))
	}
	b.do(t, chromedp.Navigate(base+"/console/login"), chromedp.WaitVisible(chromedp.ID("token")))
	shot("console-login.png")
	b.login(t, base)
	for _, r := range []struct{ kid, grace string }{{"k2", "6h"}, {"k3", "24h"}} {
		b.do(t,
			chromedp.Navigate(base+"/console/keys"),
			chromedp.WaitVisible(chromedp.ID("new_kid")),
			chromedp.SetValue(chromedp.ID("new_kid"), r.kid),
			chromedp.SetValue(chromedp.ID("grace"), r.grace),
		)
		b.follow(t, chromedp.Submit(chromedp.ID("new_kid")))
		b.do(t,
			chromedp.WaitVisible(chromedp.CSS(".flash")),
		)
	}
	b.do(t, chromedp.Sleep(1500*time.Millisecond))
	shot("console-keys.png")
	b.do(t, chromedp.Navigate(base+"/console/"), chromedp.WaitVisible(chromedp.CSS(".charts")))
	shot("console-overview.png")
	b.do(t, chromedp.Navigate(base+"/console/suspended"), chromedp.WaitVisible(chromedp.CSS("table.list")))
	shot("console-suspended.png")
	b.do(t, chromedp.Navigate(base+"/console/executions/order-7777?waitpoint="+shown.Waitpoints[1].WaitpointID),
		chromedp.WaitVisible(chromedp.CSS("pre.payload")))
	shot("console-execution.png")
	b.follow(t, chromedp.Click(chromedp.CSS("button.danger")))
	b.do(t, chromedp.WaitVisible(chromedp.ID("confirm-cancel")))
	shot("console-cancel.png")
}

// adminSuspend suspends id through the admin route and returns its
// waitpoint id and token.
func (s *server) adminSuspend(t *testing.T, id string) [2]string {
	t.Helper()
	var out struct {
		Waitpoints []struct {
			WaitpointID string `json:"waitpoint_id"`
			Token       string `json:"token"`
		} `json:"waitpoints"`
	}
	s.admin(t, "/v1/admin/executions/"+id+"/suspend", `{"waitpoints":[{"key":"approve"}],"tags":["load"]}`, &out)
	return [2]string{out.Waitpoints[0].WaitpointID, out.Waitpoints[0].Token}
}

// signalRaw delivers a signal through the public route, whatever it answers.
func (s *server) signalRaw(t *testing.T, id string, wp any, token ...string) {
	t.Helper()
	var wid, tok string
	switch w := wp.(type) {
	case [2]string:
		wid, tok = w[0], w[1]
	case string:
		wid, tok = w, token[0]
	}
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/v1/executions/"+id+"/waitpoints/"+wid+"/signals", bytes.NewReader([]byte(`{"name":"done"}`)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// claimAndComplete claims one execution and completes it.
func (s *server) claimAndComplete(t *testing.T) {
	t.Helper()
	var c struct {
		ExecutionID string `json:"execution_id"`
		LeaseID     string `json:"lease_id"`
	}
	s.admin(t, "/v1/admin/claim", `{"worker_id":"w1","lease_ms":60000}`, &c)
	if c.LeaseID != "" {
		s.admin(t, "/v1/admin/executions/"+c.ExecutionID+"/complete", `{"lease_id":"`+c.LeaseID+`"}`, nil)
	}
}

// admin posts body to an admin route and decodes the answer into out.
func (s *server) admin(t *testing.T, path, body string, out any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.srv.URL+path, bytes.NewReader([]byte(body)))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := s.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	require.Less(t, resp.StatusCode, 300, string(raw))
	if out != nil {
		require.NoError(t, json.Unmarshal(raw, out))
	}
}

// cycle suspends id and signals it through the API, ignoring failures:
// background traffic for the charts, from a goroutine that may not fail
// the test. Nobody claims what it resumes, so the timed-out wait stays.
func (s *server) cycle(id string) {
	post := func(path, bearer, body string, out any) {
		req, err := http.NewRequest(http.MethodPost, s.srv.URL+path, bytes.NewReader([]byte(body)))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", "Bearer "+bearer)
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			return
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if out != nil {
			_ = json.Unmarshal(raw, out)
		}
	}
	var sus struct {
		Waitpoints []struct {
			WaitpointID string `json:"waitpoint_id"`
			Token       string `json:"token"`
		} `json:"waitpoints"`
	}
	post("/v1/admin/executions/"+id+"/suspend", adminToken, `{"waitpoints":[{"key":"a"}]}`, &sus)
	if len(sus.Waitpoints) == 1 {
		post("/v1/executions/"+id+"/waitpoints/"+sus.Waitpoints[0].WaitpointID+"/signals", sus.Waitpoints[0].Token, `{"name":"done"}`, nil)
	}

}

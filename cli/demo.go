package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
	"github.com/flowfabric/flowfabric-go/engine"
	"github.com/flowfabric/flowfabric-go/httpapi"
)

var demoCommand = command{
	name: "demo",
	summary: "run the whole story end to end and print each step: seed → suspend → signal over HTTP → resume → claim → " +
		"rotate → old token verifies in grace → grace passes → rejected → complete (a fresh temporary SQLite store unless --backend or $" + BackendEnv + " names one)",
	synopsis: "[--grace-ms N]",
	setup: func(fs *flag.FlagSet) func(*invocation) int {
		grace := fs.Int64("grace-ms", 1500, "the rotation's grace window in milliseconds `N`; the demo waits it out")
		return func(inv *invocation) int {
			if *grace < 1 || *grace > 60_000 {
				return inv.usagef("--grace-ms must be from 1 to 60000")
			}
			return inv.demo(time.Duration(*grace) * time.Millisecond)
		}
	},
}

// demo runs the story. It refuses a backend whose keystore is already
// seeded: the story rotates the signing secret.
func (inv *invocation) demo(grace time.Duration) int {
	backendURL, open := inv.backendURL, inv.open
	if !inv.backendNamed {
		dir, err := os.MkdirTemp("", "ff-demo-")
		if err != nil {
			return inv.usagef("temporary directory: %v", err)
		}
		defer os.RemoveAll(dir)
		backendURL = "sqlite://" + filepath.Join(dir, "demo.db")
		open = func(...engine.Option) (*engine.Engine, error) { return engine.Open(inv.ctx, backendURL) }
	}
	e, err := open()
	if err != nil {
		return inv.print(nil, err)
	}
	defer e.Close()
	d := &demoRun{inv: inv, e: e, grace: grace, exec: "order-" + randomHex(4)}
	fmt.Fprintf(inv.stdout, "FlowFabric-Go demo on %s\n", engine.RedactURL(backendURL))
	if err := d.run(); err != nil {
		fmt.Fprintf(inv.stdout, "\n✗ demo failed: %v\n", err)
		return ExitContract
	}
	fmt.Fprintf(inv.stdout, "\n✓ demo finished: every step answered as the contract says\n")
	return ExitOK
}

// demoRun is one run of the story.
type demoRun struct {
	inv   *invocation
	e     *engine.Engine
	grace time.Duration
	exec  string
	step  int
	base  string // the HTTP listener's base URL
}

func (d *demoRun) run() error {
	ctx := d.inv.ctx
	secret, err := randomSecret()
	if err != nil {
		return err
	}
	seeded, err := d.e.Seed(ctx, contracts.SeedArgs{Kid: "demo-k1", Secret: secret})
	d.inv.audit().Seed(ctx, d.inv.caller(), "demo-k1", seeded, err)
	d.show("seed the signing secret: kid demo-k1, 32 random bytes nobody sees", seeded, err)
	if err != nil {
		return err
	}
	if seeded.Outcome != contracts.SeedSeeded {
		return errors.New("this backend's keystore is already seeded; the demo rotates the secret, so it needs an empty backend (run it without --backend for a fresh temporary one)")
	}

	sus, err := d.e.Suspend(ctx, contracts.SuspendArgs{
		ExecutionID: d.exec, Condition: contracts.ConditionAny,
		Waitpoints: []contracts.WaitpointSpec{{Key: "approve"}, {Key: "reject"}},
	})
	d.show("suspend execution "+d.exec+" on two waitpoints, approve and reject (resume on any)", sus, err)
	if err != nil {
		return err
	}

	stop, err := d.listen()
	if err != nil {
		return err
	}
	defer stop()
	approve := sus.Waitpoints[0]
	status, body, err := d.postSignal(approve)
	d.showRaw(fmt.Sprintf("an approver delivers a signal over HTTP: POST %s/v1/executions/%s/waitpoints/%s/signals → %d", d.base, d.exec, approve.WaitpointID, status), body, err)
	if err != nil || status != http.StatusOK || !strings.Contains(string(body), `"resumed":true`) {
		return fmt.Errorf("the signal was not accepted with resumed:true")
	}

	obs, err := d.e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: d.exec})
	d.show("the execution resumed: its recorded signals", obs, err)
	if err != nil {
		return err
	}

	claim, err := d.e.ClaimResumedExecution(ctx, contracts.ClaimArgs{WorkerID: "demo-worker", LeaseMs: 60_000})
	d.show("a worker claims the resumed execution", claim, err)
	if err != nil || claim.ExecutionID != d.exec {
		return fmt.Errorf("the claim did not return %s", d.exec)
	}

	msg := []byte("receipt for " + d.exec)
	signed, err := d.e.Sign(ctx, contracts.SignArgs{Scope: d.exec, Message: msg})
	d.show("sign a message with the current kid (demo-k1)", signed, err)
	if err != nil {
		return err
	}

	next, err := randomSecret()
	if err != nil {
		return err
	}
	rot, err := d.e.RotateAll(ctx, contracts.RotateArgs{NewKid: "demo-k2", NewSecret: next, GraceMs: d.grace.Milliseconds()})
	d.inv.audit().RotateAll(ctx, d.inv.caller(), "demo-k2", d.grace.Milliseconds(), rot, err)
	d.show(fmt.Sprintf("rotate the secret to demo-k2; demo-k1 keeps verifying for a %s grace window", d.grace), rot, err)
	if err != nil || rot.Failed() {
		return errors.New("the rotation failed")
	}

	verify := contracts.VerifyArgs{Scope: d.exec, Message: msg, Token: signed.Token}
	ok, err := d.e.Verify(ctx, verify)
	d.show("the old token still verifies inside the grace window", ok, err)
	if err != nil {
		return err
	}

	fmt.Fprintf(d.inv.stdout, "\n… waiting %s for the grace window to pass\n", d.grace+250*time.Millisecond)
	select {
	case <-time.After(d.grace + 250*time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	_, err = d.e.Verify(ctx, verify)
	d.show("after the grace window the old token is rejected", nil, err)
	if !errors.Is(err, contracts.ErrTokenExpired) {
		return errors.New("the expired token was not rejected with token_expired")
	}

	done, err := d.e.CompleteExecution(ctx, contracts.CompleteArgs{ExecutionID: d.exec, LeaseID: claim.LeaseID})
	d.show("the worker completes the execution; the engine forgets it", done, err)
	return err
}

// listen serves the HTTP API on a loopback port, as ff serve does.
func (d *demoRun) listen() (stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := httpapi.NewServer(ln.Addr().String(), httpapi.New(d.e, httpapi.Options{Logger: quiet}))
	go func() { _ = srv.Serve(ln) }()
	d.base = "http://" + ln.Addr().String()
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}

func (d *demoRun) postSignal(wp contracts.WaitpointOutcome) (int, []byte, error) {
	url := fmt.Sprintf("%s/v1/executions/%s/waitpoints/%s/signals", d.base, d.exec, wp.WaitpointID)
	body := `{"name":"approved","payload":{"by":"ana@example.com"},"idempotency_key":"approval-1"}`
	req, err := http.NewRequestWithContext(d.inv.ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+wp.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// show prints one step and its envelope (or error envelope).
func (d *demoRun) show(title string, v any, err error) {
	if err != nil {
		v = contracts.ErrorEnvelope{Error: contracts.AsError(err)}
	}
	b, _ := json.Marshal(v)
	d.showRaw(title, b, nil)
}

func (d *demoRun) showRaw(title string, envelope []byte, err error) {
	d.step++
	fmt.Fprintf(d.inv.stdout, "\n[%d] %s\n", d.step, title)
	if err != nil {
		fmt.Fprintf(d.inv.stdout, "    error: %v\n", err)
		return
	}
	var buf bytes.Buffer
	if json.Indent(&buf, bytes.TrimSpace(envelope), "    ", "  ") != nil {
		buf.Write(envelope)
	}
	fmt.Fprintf(d.inv.stdout, "    %s\n", buf.String())
}

func randomSecret() (contracts.Secret, error) {
	s := make(contracts.Secret, GeneratedSecretBytes)
	_, err := rand.Read(s)
	return s, err
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

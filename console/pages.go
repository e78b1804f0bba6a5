package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowfabric/flowfabric-go/contracts"
)

// suspendedRow is one suspended execution as the pages show it.
type suspendedRow struct {
	contracts.SuspendedExecution
	TimedOut bool
	Link     string
}

func (c *Console) row(x contracts.SuspendedExecution, nowMs int64) suspendedRow {
	return suspendedRow{
		SuspendedExecution: x,
		TimedOut:           x.TimeoutAtMs != nil && nowMs > *x.TimeoutAtMs,
		Link:               c.executionLink(x.ExecutionID),
	}
}

// executionLink is the execution page's path.
func (c *Console) executionLink(id string) string {
	return c.prefix + "executions/" + url.PathEscape(id)
}

// ---- Overview ----

type tagCount struct {
	Tag   string
	Count int
	Link  string
}

// countBar is one bar of the overview's chart of the counts, in SVG units.
type countBar struct {
	Label string
	Count int64
	Class string // the bar's CSS class
	Y     int    // the bar's top
	TextY int    // the baseline of its label and number
	Width int    // at most barTrack
}

type countsView struct {
	contracts.ExecutionCounts
	Total       int64
	Bars        []countBar
	Summary     string // the chart in words
	Unsupported string // the driver lacks count_executions
	Err         string
	// The chart's geometry, in SVG units.
	ChartW, ChartH, TrackX, TrackW, BarH int
}

type overviewView struct {
	Counts      countsView
	Listed      int // list_suspended rows read for the tags and the oldest wait
	Capped      bool
	Cap         int
	Oldest      *suspendedRow
	Tags        []tagCount
	Err         string
	Partitions  int
	CurrentKids []string
	Verifying   int
	KeysErr     string
	Rates       ratesView
}

// Geometry of the counts chart, in SVG user units: a row of barRow per
// state, a label column of barLabel, a track of barTrack for the bars, then
// the number, right-aligned at barChartW.
const (
	barRow    = 26
	barH      = 16
	barLabel  = 120
	barTrack  = 300
	barChartW = barLabel + barTrack + 60
)

// countsView reads count_executions and lays its chart out.
func (c *Console) countsView(ctx context.Context) countsView {
	n, err := c.e.CountExecutions(ctx, contracts.CountExecutionsArgs{})
	switch {
	case errors.Is(err, contracts.ErrUnsupported):
		return countsView{Unsupported: unsupportedText("count_executions")}
	case err != nil:
		return countsView{Err: errorText(err)}
	}
	v := countsView{
		ExecutionCounts: n, Total: n.Suspended + n.TimedOut + n.Resumed + n.Claimed + n.LeaseExpired,
		ChartW: barChartW, TrackX: barLabel, TrackW: barTrack, BarH: barH,
	}
	bars := []countBar{
		{Label: "Suspended", Count: n.Suspended, Class: "bar-suspended"},
		{Label: "Timed out", Count: n.TimedOut, Class: "bar-timedout"},
		{Label: "Resumed", Count: n.Resumed, Class: "bar-resumed"},
		{Label: "Claimed", Count: n.Claimed, Class: "bar-claimed"},
		{Label: "Lease expired", Count: n.LeaseExpired, Class: "bar-expired"},
	}
	peak := int64(0)
	for _, b := range bars {
		peak = max(peak, b.Count)
	}
	var words []string
	for i := range bars {
		b := &bars[i]
		b.Y = i*barRow + (barRow-barH)/2
		b.TextY = b.Y + barH - 3
		if b.Count > 0 {
			b.Width = max(2, int(float64(b.Count)/float64(peak)*barTrack))
		}
		words = append(words, strings.ToLower(b.Label)+" "+strconv.FormatInt(b.Count, 10))
	}
	v.Bars, v.ChartH = bars, len(bars)*barRow
	v.Summary = "Executions by state: " + strings.Join(words, ", ") + " (" + strconv.FormatInt(v.Total, 10) + " in all)."
	return v
}

// overview shows count_executions' counts, then the tags and the oldest
// wait among the oldest suspended executions, read from list_suspended up
// to CountCap rows.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	nowMs := c.opts.Now().UnixMilli()
	v := overviewView{Cap: c.opts.CountCap, Counts: c.countsView(ctx)}
	tags := map[string]int{}
	cursor := ""
	for {
		res, err := c.e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: min(contracts.MaxListLimit, c.opts.CountCap-v.Listed), Cursor: cursor})
		if err != nil {
			v.Err = errorText(err)
			break
		}
		for _, x := range res.Executions {
			v.Listed++
			if v.Oldest == nil {
				row := c.row(x, nowMs)
				v.Oldest = &row
			}
			for _, t := range x.Tags {
				tags[t]++
			}
		}
		if res.NextCursor == nil {
			break
		}
		if v.Listed >= c.opts.CountCap {
			v.Capped = true
			break
		}
		cursor = *res.NextCursor
	}
	for t, n := range tags {
		v.Tags = append(v.Tags, tagCount{Tag: t, Count: n, Link: c.prefix + "suspended?tag=" + url.QueryEscape(t)})
	}
	slices.SortFunc(v.Tags, func(a, b tagCount) int {
		if a.Count != b.Count {
			return b.Count - a.Count
		}
		return strings.Compare(a.Tag, b.Tag)
	})
	v.Tags = v.Tags[:min(len(v.Tags), 10)]
	if kids, err := c.e.ListKids(ctx); err != nil {
		v.KeysErr = errorText(err)
	} else {
		v.Partitions = len(kids.Partitions)
		for _, p := range kids.Partitions {
			if p.CurrentKid != nil && !slices.Contains(v.CurrentKids, *p.CurrentKid) {
				v.CurrentKids = append(v.CurrentKids, *p.CurrentKid)
			}
			v.Verifying += len(p.Verifying)
		}
	}
	v.Rates = c.ratesView()
	c.render(w, r, s, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: v})
}

// ---- Suspended ----

// ageOptions are the minimum ages the suspended list filters by.
var ageOptions = []struct{ Value, Label string }{
	{"", "any age"}, {"5m", "5 minutes"}, {"1h", "1 hour"}, {"24h", "1 day"}, {"168h", "7 days"},
}

type option struct {
	Value, Label string
	Selected     bool
}

type suspendedView struct {
	Tag, Older   string
	OlderOptions []option
	Rows         []suspendedRow
	Next         string // the next page's path, empty on the last
	First        string // the first page's path, empty on the first
	Err          string
	PageSize     int
}

// suspended lists suspended executions, oldest first, a page at a time.
func (c *Console) suspended(w http.ResponseWriter, r *http.Request, s *session) {
	q := r.URL.Query()
	v := suspendedView{Tag: q.Get("tag"), Older: q.Get("older"), PageSize: c.opts.PageSize}
	cursor := q.Get("cursor")
	status := http.StatusOK
	var older time.Duration
	known := false
	for _, o := range ageOptions {
		v.OlderOptions = append(v.OlderOptions, option{Value: o.Value, Label: o.Label, Selected: o.Value == v.Older})
		known = known || o.Value == v.Older
	}
	if !known {
		v.Err, status = "older: choose one of the ages offered", http.StatusBadRequest
	} else if v.Older != "" {
		older, _ = time.ParseDuration(v.Older)
	}
	if cursor != "" {
		v.First = c.suspendedLink(v.Tag, v.Older, "")
	}
	if v.Err == "" {
		nowMs := c.opts.Now().UnixMilli()
		// One row more than the page: the next page exists when that row
		// passes the age filter too.
		res, err := c.e.ListSuspended(r.Context(), contracts.ListSuspendedArgs{Limit: c.opts.PageSize + 1, Cursor: cursor, Tag: v.Tag})
		switch {
		case err != nil:
			v.Err, status = errorText(err), statusOf(err)
		default:
			cutoff := nowMs - older.Milliseconds()
			for i, x := range res.Executions {
				if older > 0 && x.SuspendedAtMs > cutoff {
					break // oldest first: every later row is younger
				}
				if i == c.opts.PageSize {
					last := res.Executions[i-1]
					v.Next = c.suspendedLink(v.Tag, v.Older, contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: last.SuspendedAtMs, ExecutionID: last.ExecutionID}))
					break
				}
				v.Rows = append(v.Rows, c.row(x, nowMs))
			}
		}
	}
	c.render(w, r, s, status, "suspended", page{Title: "Suspended executions", Nav: "suspended", Data: v})
}

func (c *Console) suspendedLink(tag, older, cursor string) string {
	q := url.Values{}
	if tag != "" {
		q.Set("tag", tag)
	}
	if older != "" {
		q.Set("older", older)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	if len(q) == 0 {
		return c.prefix + "suspended"
	}
	return c.prefix + "suspended?" + q.Encode()
}

// findExecution sends the "find by id" form to the execution's page.
func (c *Console) findExecution(w http.ResponseWriter, r *http.Request, s *session) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	if err := contracts.ValidateIdentifier("execution_id", id); err != nil {
		c.renderStatus(w, r, s, http.StatusBadRequest, "No such execution", errorText(err))
		return
	}
	http.Redirect(w, r, c.executionLink(id), http.StatusSeeOther)
}

// ---- Execution ----

type signalView struct {
	contracts.Signal
	Payload payloadView
}

type waitpointView struct {
	contracts.WaitpointInfo
	Fingerprint string // "" when none is kept
	LookedUp    bool   // the waitpoint the operator looked up
	Extra       bool   // looked up, not among describe_execution's waitpoints
}

type executionView struct {
	ID string
	// State is the execution's state in words, Claim its claim in words
	// when it holds no lease; Reason is the claim reason it holds or would
	// be claimed with ("" for none).
	State, Claim, Reason string
	// LeaseExpiresAtMs is set while claimed; LeaseExpired: past it, nobody
	// claimed it again.
	LeaseExpiresAtMs *int64
	LeaseExpired     bool
	SuspensionID     string
	SuspendedAtMs    *int64
	TimeoutAtMs      *int64
	TimedOut         bool
	Tags             []string
	Signals          []signalView
	SignalsNote      string
	NextSignals      string
	FirstSignals     string
	Waitpoints       []waitpointView
	Lookup           string
	LookupErr        string
	CanCancel        bool
	Err              string
}

// unsupportedText says that the store's driver lacks an operation of
// docs/spec.md §8.9.
func unsupportedText(op string) string {
	return "This store's driver does not implement " + op + " (docs/spec.md §8.9): the console cannot show it. " +
		"Every driver of this repository implements it; a third-party driver needs a version that does."
}

// describeError is what the execution and cancel pages show of a
// describe_execution error, with the status they answer.
func describeError(id string, err error) (string, int) {
	switch {
	case errors.Is(err, contracts.ErrExecutionNotFound):
		return "No execution " + strconv.Quote(id) + " is remembered: it never suspended, or it completed.", http.StatusNotFound
	case errors.Is(err, contracts.ErrUnsupported):
		return unsupportedText("describe_execution"), http.StatusNotImplemented
	default:
		return errorText(err), statusOf(err)
	}
}

// execution shows one execution: its state, claim and lease, its
// waitpoints and the signals of its latest suspension.
func (c *Console) execution(w http.ResponseWriter, r *http.Request, s *session) {
	v, status := c.executionView(r)
	title := "Execution"
	if v.ID != "" {
		title = "Execution " + v.ID
	}
	c.render(w, r, s, status, "execution", page{Title: title, Nav: "suspended", Data: v})
}

func (c *Console) executionView(r *http.Request) (executionView, int) {
	ctx := r.Context()
	id := r.PathValue("id")
	if err := contracts.ValidateIdentifier("execution_id", id); err != nil {
		return executionView{Err: errorText(err)}, http.StatusBadRequest
	}
	q := r.URL.Query() // an "at" from older links is ignored
	v := executionView{ID: id}
	info, err := c.e.DescribeExecution(ctx, contracts.DescribeExecutionArgs{ExecutionID: id})
	if err != nil {
		var status int
		v.Err, status = describeError(id, err)
		return v, status
	}
	describeState(&v, info)

	// Waitpoints: describe_execution's, and the one looked up.
	lookup := strings.TrimSpace(q.Get("waitpoint"))
	if lookup != "" {
		v.Lookup = lookup
		if err := contracts.ValidateUUID("waitpoint", lookup); err != nil {
			v.LookupErr, lookup = errorText(err), ""
		}
	}
	for _, wp := range info.Waitpoints {
		v.Waitpoints = append(v.Waitpoints, viewWaitpoint(wp, wp.WaitpointID == lookup, false))
	}
	if lookup != "" && !slices.ContainsFunc(info.Waitpoints, func(w contracts.WaitpointInfo) bool { return w.WaitpointID == lookup }) {
		wp, err := c.e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: id, WaitpointID: lookup})
		if err != nil {
			v.LookupErr = errorText(err)
		} else {
			v.Waitpoints = append(v.Waitpoints, viewWaitpoint(wp, true, true))
		}
	}

	// Signals: those of its latest suspension; none before the first.
	if info.SuspensionID == nil {
		v.SignalsNote = "It never suspended: there is no signal to show. Signals on its pending waitpoints show here once a suspension uses them."
		return v, http.StatusOK
	}
	obs, err := c.e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: id, Limit: 50, Cursor: q.Get("signals")})
	switch {
	case errors.Is(err, contracts.ErrExecutionNotFound):
		v.SignalsNote = "The execution was forgotten (it completed) while this page was read: reload it."
		return v, http.StatusOK
	case err != nil:
		v.Err = errorText(err)
		return v, statusOf(err)
	}
	if obs.SuspensionID != *info.SuspensionID {
		v.SignalsNote = "A new suspension (" + obs.SuspensionID + ") started while this page was read: the signals below are its own, the state above is older. Reload the page."
	}
	if q.Get("signals") != "" {
		v.FirstSignals = c.executionLink(id)
	}
	if obs.NextCursor != nil {
		v.NextSignals = c.executionLink(id) + "?signals=" + url.QueryEscape(*obs.NextCursor)
	}
	for _, sig := range obs.Signals {
		v.Signals = append(v.Signals, signalView{Signal: sig, Payload: viewPayload(sig.Payload)})
	}
	return v, http.StatusOK
}

// Claim texts of the execution page, for an execution without a lease.
const (
	claimWaiting = "not claimed: it waits for its signals"
	claimNow     = "not claimed: a worker may claim it now"
	claimNone    = "not claimed"
)

// describeState fills the state, claim, lease and suspension facts of v
// from describe_execution's answer.
func describeState(v *executionView, info contracts.ExecutionInfo) {
	if info.Reason != nil {
		v.Reason = *info.Reason
	}
	reason := " (reason " + v.Reason + ")"
	if v.Reason == "" {
		reason = ""
	}
	if info.SuspensionID != nil {
		v.SuspensionID = *info.SuspensionID
	}
	v.SuspendedAtMs, v.TimeoutAtMs, v.Tags = info.SuspendedAtMs, info.TimeoutAtMs, info.Tags
	switch info.State {
	case contracts.StateSuspended:
		v.CanCancel = true
		v.TimedOut = info.Claimable // suspended and claimable: past its timeout
		if v.TimedOut {
			v.State, v.Claim = "suspended, past its timeout: a worker may claim it now"+reason, claimNow+reason
		} else {
			v.State, v.Claim = "suspended", claimWaiting
		}
	case contracts.StateResumed:
		v.State, v.Claim = "resumed, waiting for a worker"+reason, claimNow+reason
	case contracts.StateClaimed:
		v.LeaseExpiresAtMs = info.LeaseExpiresAtMs
		v.LeaseExpired = info.Claimable // claimed and claimable: its lease expired
		if v.LeaseExpired {
			v.State = "claimed, lease expired: a worker may claim it again now" + reason
		} else {
			v.State = "claimed" + reason
		}
		if v.LeaseExpiresAtMs == nil { // not what §8.9 answers; say what is known
			v.Claim = "claimed; the store gave no lease expiry"
		}
	case contracts.StateNone:
		v.Claim = claimNone
		if info.SuspensionID == nil {
			v.State = "none: not suspended, resumed or claimed; it holds pending waitpoints only"
		} else {
			v.State = "none: not suspended, resumed or claimed; its latest suspension was satisfied at once (already_satisfied)"
		}
	default:
		v.State = info.State + reason
		if info.Claimable {
			v.Claim = claimNow + reason
		}
	}
}

func viewWaitpoint(wp contracts.WaitpointInfo, lookedUp, extra bool) waitpointView {
	v := waitpointView{WaitpointInfo: wp, LookedUp: lookedUp, Extra: extra}
	if wp.TokenFingerprint != nil {
		v.Fingerprint = *wp.TokenFingerprint
	}
	return v
}

type cancelView struct {
	ID            string
	SuspendedAtMs int64
	Waitpoints    int // the suspension's
	TimedOut      bool
	Back          string
}

// cancel asks for confirmation, then cancels the execution's suspension.
func (c *Console) cancel(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := contracts.ValidateIdentifier("execution_id", id); err != nil {
		c.renderStatus(w, r, s, http.StatusBadRequest, "Not cancelled", errorText(err))
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		info, err := c.e.DescribeExecution(r.Context(), contracts.DescribeExecutionArgs{ExecutionID: id})
		if err != nil {
			msg, status := describeError(id, err)
			c.renderStatus(w, r, s, status, "Not cancelled", msg)
			return
		}
		if info.State != contracts.StateSuspended {
			var v executionView
			describeState(&v, info)
			c.renderStatus(w, r, s, http.StatusConflict, "Not cancelled",
				"Execution "+strconv.Quote(id)+" is not suspended (it is "+v.State+"): there is nothing to cancel.")
			return
		}
		v := cancelView{ID: id, TimedOut: info.Claimable, Back: c.executionLink(id)}
		if info.SuspendedAtMs != nil {
			v.SuspendedAtMs = *info.SuspendedAtMs
		}
		for _, wp := range info.Waitpoints {
			if wp.Status != contracts.WaitpointPending {
				v.Waitpoints++
			}
		}
		c.render(w, r, s, http.StatusOK, "cancel", page{Title: "Cancel " + id + "?", Nav: "suspended", Data: v})
		return
	}
	out, err := c.e.CancelSuspension(r.Context(), contracts.CancelArgs{ExecutionID: id})
	if err != nil {
		c.opts.Logger.Warn("console: cancel refused", "execution_id", id, "error_code", contracts.AsError(err).Code, "remote_addr", r.RemoteAddr)
		c.renderStatus(w, r, s, statusOf(err), "Not cancelled", errorText(err))
		return
	}
	c.opts.Logger.Info("console: cancelled", "execution_id", id, "suspension_id", out.SuspensionID, "remote_addr", r.RemoteAddr)
	c.sessions.setFlash(s, "Cancelled "+id+": its waitpoints are closed and a worker may claim it (reason cancelled).")
	http.Redirect(w, r, c.executionLink(id), http.StatusSeeOther)
}

// ---- Keys ----

type verifyingView struct {
	Kid         string
	ExpiresAtMs int64
	BarWidth    int // the timeline bar, in SVG units of timelineWidth
}

type kidGroup struct {
	Partitions string // "0", "0–255" or "0–3, 7"
	Count      int
	Current    string // "" when the partitions have none
	Verifying  []verifyingView
}

type keysView struct {
	Total         int
	Groups        []kidGroup
	Err           string
	FormErr       string
	FormKid       string
	FormGrace     string
	TimelineWidth int
	LatestMs      int64
}

// timelineWidth is the width of the verifying kids' timeline bars.
const timelineWidth = 320

// keys shows each partition's kids and the rotation form.
func (c *Console) keys(w http.ResponseWriter, r *http.Request, s *session) {
	v := c.keysView(r.Context())
	v.FormKid = "console-" + c.opts.Now().UTC().Format("20060102T150405Z")
	v.FormGrace = "24h"
	status := http.StatusOK
	if v.Err != "" {
		status = http.StatusServiceUnavailable
	}
	c.render(w, r, s, status, "keys", page{Title: "Keys", Nav: "keys", Data: v})
}

func (c *Console) keysView(ctx context.Context) keysView {
	v := keysView{TimelineWidth: timelineWidth}
	res, err := c.e.ListKids(ctx)
	if err != nil {
		v.Err = errorText(err)
		return v
	}
	v.Total = len(res.Partitions)
	nowMs := c.opts.Now().UnixMilli()
	type groupKey string
	index := map[groupKey]int{}
	var members [][]int
	for _, p := range res.Partitions {
		var b strings.Builder
		if p.CurrentKid != nil {
			b.WriteString(*p.CurrentKid)
		}
		for _, k := range p.Verifying {
			fmt.Fprintf(&b, "|%s@%d", k.Kid, k.ExpiresAtMs)
			v.LatestMs = max(v.LatestMs, k.ExpiresAtMs)
		}
		key := groupKey(b.String())
		i, ok := index[key]
		if !ok {
			i = len(v.Groups)
			index[key] = i
			g := kidGroup{}
			if p.CurrentKid != nil {
				g.Current = *p.CurrentKid
			}
			for _, k := range p.Verifying {
				g.Verifying = append(g.Verifying, verifyingView{Kid: k.Kid, ExpiresAtMs: k.ExpiresAtMs})
			}
			v.Groups = append(v.Groups, g)
			members = append(members, nil)
		}
		members[i] = append(members[i], p.Partition)
		v.Groups[i].Count++
	}
	span := v.LatestMs - nowMs
	for i := range v.Groups {
		v.Groups[i].Partitions = ranges(members[i])
		for j := range v.Groups[i].Verifying {
			k := &v.Groups[i].Verifying[j]
			if span > 0 {
				k.BarWidth = max(2, int(float64(k.ExpiresAtMs-nowMs)/float64(span)*timelineWidth))
			}
		}
	}
	return v
}

// ranges writes sorted partition numbers as "0–3, 7".
func ranges(ps []int) string {
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j+1 < len(ps) && ps[j+1] == ps[j]+1 {
			j++
		}
		if i == j {
			parts = append(parts, strconv.Itoa(ps[i]))
		} else {
			parts = append(parts, strconv.Itoa(ps[i])+"–"+strconv.Itoa(ps[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ", ")
}

// rotate rotates every partition to a new kid with a secret generated
// here, which is never shown, logged or kept.
func (c *Console) rotate(w http.ResponseWriter, r *http.Request, s *session) {
	kid := strings.TrimSpace(r.PostForm.Get("new_kid"))
	graceText := r.PostForm.Get("grace")
	formErr := ""
	var graceMs int64
	if err := contracts.ValidateKid("new_kid", kid); err != nil {
		formErr = errorText(err)
	} else if graceMs, err = parseGrace(graceText); err != nil {
		formErr = err.Error()
	} else if err := contracts.ValidateRange("grace_ms", graceMs, 0, contracts.MaxGraceMs); err != nil {
		formErr = errorText(err)
	}
	if formErr != "" {
		v := c.keysView(r.Context())
		v.FormErr, v.FormKid, v.FormGrace = formErr, kid, graceText
		c.render(w, r, s, http.StatusBadRequest, "keys", page{Title: "Keys", Nav: "keys", Data: v})
		return
	}
	secret := contracts.Secret(randomBytes(32))
	res, err := c.e.RotateAll(r.Context(), contracts.RotateArgs{NewKid: kid, NewSecret: secret, GraceMs: graceMs})
	clear(secret)
	if c.opts.OnRotate != nil {
		c.opts.OnRotate(r.Context(), Rotation{NewKid: kid, GraceMs: graceMs, Result: res, Err: err, RemoteAddr: r.RemoteAddr})
	}
	if err != nil {
		c.opts.Logger.Warn("console: rotation failed", "kid", kid, "error_code", contracts.AsError(err).Code, "remote_addr", r.RemoteAddr)
		v := c.keysView(r.Context())
		v.FormErr, v.FormKid, v.FormGrace = errorText(err), kid, graceText
		c.render(w, r, s, statusOf(err), "keys", page{Title: "Keys", Nav: "keys", Data: v})
		return
	}
	rotated, noop, failed, codes := 0, 0, 0, []string{}
	for _, e := range res.Entries {
		switch {
		case e.Error != nil:
			failed++
			if !slices.Contains(codes, e.Error.Code) {
				codes = append(codes, e.Error.Code)
			}
		case e.Outcome != nil && e.Outcome.Outcome == contracts.RotateRotated:
			rotated++
		default:
			noop++
		}
	}
	c.opts.Logger.Info("console: rotated", "kid", kid, "grace_ms", graceMs, "rotated", rotated, "noop", noop, "failed", failed, "remote_addr", r.RemoteAddr)
	msg := fmt.Sprintf("Rotation to %s: %d partition(s) rotated, %d already current.", kid, rotated, noop)
	if failed > 0 {
		// The secret was generated for this call: the same kid cannot be
		// sent again (rotation_conflict where it landed), a new one can.
		msg += fmt.Sprintf(" %d failed (%s): rotate again under a new kid name to bring every partition to one current kid.", failed, strings.Join(codes, ", "))
	}
	c.sessions.setFlash(s, msg)
	http.Redirect(w, r, c.prefix+"keys", http.StatusSeeOther)
}

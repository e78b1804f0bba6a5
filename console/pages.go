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
		Link:               c.executionLink(x.ExecutionID, x.SuspendedAtMs),
	}
}

// executionLink is the execution page's path; at (the suspension's
// suspended_at_ms, 0 when unknown) lets the page find the row at once.
func (c *Console) executionLink(id string, at int64) string {
	l := c.prefix + "executions/" + url.PathEscape(id)
	if at > 0 {
		l += "?at=" + strconv.FormatInt(at, 10)
	}
	return l
}

// ---- Overview ----

type tagCount struct {
	Tag   string
	Count int
	Link  string
}

type overviewView struct {
	Suspended, TimedOut int
	Counted             int
	Capped              bool
	Cap                 int
	Oldest              *suspendedRow
	Tags                []tagCount
	Err                 string
	Partitions          int
	CurrentKids         []string
	Verifying           int
	KeysErr             string
	Rates               ratesView
}

// overview counts what list_suspended shows, up to CountCap rows.
func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	ctx := r.Context()
	nowMs := c.opts.Now().UnixMilli()
	v := overviewView{Cap: c.opts.CountCap}
	tags := map[string]int{}
	cursor := ""
	for {
		res, err := c.e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: min(contracts.MaxListLimit, c.opts.CountCap-v.Counted), Cursor: cursor})
		if err != nil {
			v.Err = errorText(err)
			break
		}
		for _, x := range res.Executions {
			v.Counted++
			if v.Oldest == nil {
				row := c.row(x, nowMs)
				v.Oldest = &row
			}
			if x.TimeoutAtMs != nil && nowMs > *x.TimeoutAtMs {
				v.TimedOut++
			} else {
				v.Suspended++
			}
			for _, t := range x.Tags {
				tags[t]++
			}
		}
		if res.NextCursor == nil {
			break
		}
		if v.Counted >= c.opts.CountCap {
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
	http.Redirect(w, r, c.executionLink(id, 0), http.StatusSeeOther)
}

// ---- Execution ----

type signalView struct {
	contracts.Signal
	Payload payloadView
}

type waitpointView struct {
	contracts.WaitpointInfo
	Fingerprint string // "" when none is kept
}

type executionView struct {
	ID           string
	Row          *suspendedRow // nil: not in list_suspended
	Remembered   bool
	State        string
	Claim        string
	SuspensionID string
	Signals      []signalView
	NextSignals  string
	FirstSignals string
	Waitpoints   []waitpointView
	Lookup       string
	LookupErr    string
	CanCancel    bool
	Err          string
	ListCapped   bool
}

// Claim texts of the execution page.
const (
	claimNone    = "not claimed: it is suspended"
	claimUnknown = "resumed or claimed: the Engine has no call that says which, nor the lease's expiry"
)

// execution shows one execution: its suspension, signals and waitpoints.
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
	q := r.URL.Query()
	v := executionView{ID: id}
	nowMs := c.opts.Now().UnixMilli()
	at, _ := strconv.ParseInt(q.Get("at"), 10, 64)
	row, capped, err := c.findSuspended(ctx, id, at)
	if err != nil {
		v.Err = errorText(err)
		return v, statusOf(err)
	}
	v.ListCapped = capped
	if row != nil {
		x := c.row(*row, nowMs)
		v.Row = &x
	}
	obs, err := c.e.ObserveSignals(ctx, contracts.ObserveSignalsArgs{ExecutionID: id, Limit: 50, Cursor: q.Get("signals")})
	switch {
	case errors.Is(err, contracts.ErrExecutionNotFound) && v.Row == nil:
		v.Err = "No execution " + strconv.Quote(id) + " is remembered: it never suspended, or it completed."
		return v, http.StatusNotFound
	case err != nil:
		v.Err = errorText(err)
		return v, statusOf(err)
	}
	v.Remembered = true
	v.SuspensionID = obs.SuspensionID
	if q.Get("signals") != "" {
		v.FirstSignals = c.executionLink(id, at)
	}
	if obs.NextCursor != nil {
		v.NextSignals = c.executionLink(id, at)
		sep := "?"
		if at > 0 {
			sep = "&"
		}
		v.NextSignals += sep + "signals=" + url.QueryEscape(*obs.NextCursor)
	}
	var ids []string
	for _, sig := range obs.Signals {
		v.Signals = append(v.Signals, signalView{Signal: sig, Payload: viewPayload(sig.Payload)})
		if !slices.Contains(ids, sig.WaitpointID) {
			ids = append(ids, sig.WaitpointID)
		}
	}
	switch {
	case v.Row != nil && v.Row.TimedOut:
		v.State, v.Claim = "suspended, past its timeout: a worker may claim it now (reason timeout)", claimNone
	case v.Row != nil:
		v.State, v.Claim = "suspended", claimNone
	case obs.SuspensionID == "":
		v.State, v.Claim = "not suspended: it holds pending waitpoints only", "not claimed"
	default:
		v.State, v.Claim = "not suspended", claimUnknown
	}
	v.CanCancel = v.Row != nil
	if l := strings.TrimSpace(q.Get("waitpoint")); l != "" {
		v.Lookup = l
		if err := contracts.ValidateUUID("waitpoint", l); err != nil {
			v.LookupErr = errorText(err)
		} else if !slices.Contains(ids, l) {
			ids = append(ids, l)
		}
	}
	for _, wid := range ids[:min(len(ids), 32)] {
		info, err := c.e.GetWaitpoint(ctx, contracts.GetWaitpointArgs{ExecutionID: id, WaitpointID: wid})
		if err != nil {
			if wid == v.Lookup {
				v.LookupErr = errorText(err)
			}
			continue
		}
		wv := waitpointView{WaitpointInfo: info}
		if info.TokenFingerprint != nil {
			wv.Fingerprint = *info.TokenFingerprint
		}
		v.Waitpoints = append(v.Waitpoints, wv)
	}
	slices.SortStableFunc(v.Waitpoints, func(a, b waitpointView) int {
		if a.CreatedAtMs != b.CreatedAtMs {
			return int(a.CreatedAtMs - b.CreatedAtMs)
		}
		return strings.Compare(a.WaitpointKey, b.WaitpointKey)
	})
	return v, http.StatusOK
}

// maxID is the largest execution id in byte order: a cursor at (at-1,
// maxID) starts a page at the first row suspended at at.
var maxID = strings.Repeat("z", contracts.MaxIdentifierLen)

// findSuspended looks for id in list_suspended: from its suspended_at_ms
// when at is known, else from the start, reading at most CountCap rows
// (capped then reports that it stopped early).
func (c *Console) findSuspended(ctx context.Context, id string, at int64) (row *contracts.SuspendedExecution, capped bool, err error) {
	cursor := ""
	if at > 0 {
		cursor = contracts.EncodeCursor(contracts.Cursor{SuspendedAtMs: at - 1, ExecutionID: maxID})
	}
	read := 0
	for {
		res, err := c.e.ListSuspended(ctx, contracts.ListSuspendedArgs{Limit: contracts.MaxListLimit, Cursor: cursor})
		if err != nil {
			return nil, false, err
		}
		for _, x := range res.Executions {
			if x.ExecutionID == id {
				return &x, false, nil
			}
			if at > 0 && x.SuspendedAtMs > at {
				return nil, false, nil
			}
		}
		read += len(res.Executions)
		if res.NextCursor == nil {
			return nil, false, nil
		}
		if read >= c.opts.CountCap {
			return nil, true, nil
		}
		cursor = *res.NextCursor
	}
}

type cancelView struct {
	ID   string
	Row  suspendedRow
	Back string
}

// cancel asks for confirmation, then cancels the execution's suspension.
func (c *Console) cancel(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if err := contracts.ValidateIdentifier("execution_id", id); err != nil {
		c.renderStatus(w, r, s, http.StatusBadRequest, "Not cancelled", errorText(err))
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		at, _ := strconv.ParseInt(r.PostForm.Get("at"), 10, 64)
		row, _, err := c.findSuspended(r.Context(), id, at)
		if err != nil {
			c.renderStatus(w, r, s, statusOf(err), "Not cancelled", errorText(err))
			return
		}
		if row == nil {
			c.renderStatus(w, r, s, http.StatusConflict, "Not cancelled",
				"Execution "+strconv.Quote(id)+" is not suspended: there is nothing to cancel.")
			return
		}
		v := cancelView{ID: id, Row: c.row(*row, c.opts.Now().UnixMilli()), Back: c.executionLink(id, row.SuspendedAtMs)}
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
	http.Redirect(w, r, c.executionLink(id, 0), http.StatusSeeOther)
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

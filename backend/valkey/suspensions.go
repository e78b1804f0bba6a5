package valkey

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
)

var errNotYet = contracts.ErrInternal.With("valkey: suspensions are not implemented yet")

// Suspend is not implemented yet.
func (b *Backend) Suspend(ctx context.Context, args contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	return contracts.SuspendOutcome{}, errNotYet
}

// DeliverSignal is not implemented yet.
func (b *Backend) DeliverSignal(ctx context.Context, args contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	return contracts.DeliverSignalOutcome{}, errNotYet
}

// ObserveSignals is not implemented yet.
func (b *Backend) ObserveSignals(ctx context.Context, args contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	return contracts.ObserveSignalsResult{}, errNotYet
}

// ListSuspended is not implemented yet.
func (b *Backend) ListSuspended(ctx context.Context, args contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	return contracts.ListSuspendedResult{}, errNotYet
}

// ClaimResumedExecution is not implemented yet.
func (b *Backend) ClaimResumedExecution(ctx context.Context, args contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	return contracts.ClaimOutcome{}, errNotYet
}

// CompleteExecution is not implemented yet.
func (b *Backend) CompleteExecution(ctx context.Context, args contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	return contracts.CompleteOutcome{}, errNotYet
}

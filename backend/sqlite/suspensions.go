package sqlite

import (
	"context"

	"github.com/flowfabric/flowfabric-go/contracts"
)

func errTODO() error { return contracts.ErrInternal.With("sqlite: suspensions not implemented yet") }

// Suspend is not implemented yet.
func (b *Backend) Suspend(context.Context, contracts.SuspendArgs) (contracts.SuspendOutcome, error) {
	return contracts.SuspendOutcome{}, errTODO()
}

// DeliverSignal is not implemented yet.
func (b *Backend) DeliverSignal(context.Context, contracts.DeliverSignalArgs) (contracts.DeliverSignalOutcome, error) {
	return contracts.DeliverSignalOutcome{}, errTODO()
}

// ObserveSignals is not implemented yet.
func (b *Backend) ObserveSignals(context.Context, contracts.ObserveSignalsArgs) (contracts.ObserveSignalsResult, error) {
	return contracts.ObserveSignalsResult{}, errTODO()
}

// ListSuspended is not implemented yet.
func (b *Backend) ListSuspended(context.Context, contracts.ListSuspendedArgs) (contracts.ListSuspendedResult, error) {
	return contracts.ListSuspendedResult{}, errTODO()
}

// ClaimResumedExecution is not implemented yet.
func (b *Backend) ClaimResumedExecution(context.Context, contracts.ClaimArgs) (contracts.ClaimOutcome, error) {
	return contracts.ClaimOutcome{}, errTODO()
}

// CompleteExecution is not implemented yet.
func (b *Backend) CompleteExecution(context.Context, contracts.CompleteArgs) (contracts.CompleteOutcome, error) {
	return contracts.CompleteOutcome{}, errTODO()
}

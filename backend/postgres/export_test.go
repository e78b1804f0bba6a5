package postgres

// ClaimSQL exposes the claim statement to the plan test.
const ClaimSQL = claimSQL

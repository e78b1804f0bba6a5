package console

// SampleMetrics reads the metrics once, as the background sampler does.
func (c *Console) SampleMetrics() { c.rates.take() }

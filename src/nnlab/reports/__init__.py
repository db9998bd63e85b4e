"""Reports: pure readers of run files (summary), figures drawn from them (plots)."""

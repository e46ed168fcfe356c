"""Stream plumbing: FIFOs and width converters."""

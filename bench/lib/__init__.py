"""What the benchmark reports share (imported with `bench` on sys.path: `from lib.stats import ...`)."""

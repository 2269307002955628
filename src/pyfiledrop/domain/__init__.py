"""The bottom floor: pure domain types (ids, upload model, byte ranges, names, checksums); no I/O."""

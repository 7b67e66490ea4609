"""Dialog flows: one module per flow, declared as steps."""

"""Writes of billing, one module per subject; callers import from the module that owns a
function."""

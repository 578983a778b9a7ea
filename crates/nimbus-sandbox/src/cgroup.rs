//! Placeholder: per-environment control groups (limits, freeze/thaw, peak memory).

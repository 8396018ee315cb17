//! Loom models (written next).

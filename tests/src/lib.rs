//! Tests live in tests/tests.

#![forbid(unsafe_code)]

//! Tests of `cairn compile`.

//! Tests of `cairn build` and the store commands.

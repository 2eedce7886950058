//! Execution of a Definition: scheduler, cache keys, content hashing, op execution,
//! sources and progress.

pub mod archive;
pub mod fileop;
pub mod hash;
pub mod pattern;
pub mod progress;
pub mod scheduler;
pub mod key;

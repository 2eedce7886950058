//! Image manifests and configs built from layer chains.

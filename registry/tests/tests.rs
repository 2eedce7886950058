//! Integration tests of the registry client against Debian's `docker-registry` on
//! 127.0.0.1, one module per area.
//!
//! Needs Debian's `docker-registry`, `apache2-utils` (htpasswd), `openssl` and `skopeo`;
//! a missing one fails the test that needs it with the package name.

mod auth;
mod common;
mod faults;
mod pull_push;
mod tls;

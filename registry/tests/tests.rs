//! Integration tests of the registry client against Debian's `docker-registry` on
//! 127.0.0.1, one module per area.

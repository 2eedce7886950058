//! Layer directories (overlay format) to OCI layer tars and back.

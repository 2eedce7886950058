//! OCI layout, docker-archive and rootfs exports; archive import.

//! overlayfs mounts with RAII unmount.

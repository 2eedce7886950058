//! The on-disk store: blobs, tags, cache index, layer directories.

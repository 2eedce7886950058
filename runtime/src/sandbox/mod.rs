//! The Linux-namespace sandbox that runs Exec ops.

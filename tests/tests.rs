//! The one integration-test binary of the `cairn` CLI; each module covers one area.

/// Issue 17, `cairn bake`: bake files (HCL, JSON), several targets in one solve.
mod bake_cli;
/// `cairn build` and the store commands: real sandbox, overlayfs, OCI outputs.
mod build_cli;
/// Issue 11, `cairn build` as a drop-in for `docker buildx build`: a build-push-action
/// script, BuildKit's rawjson, `-q`, `--load`, stdin/stdout, usage errors, closed pipes.
mod buildx_cli;
/// Issue 14, a build cache shared through registries: machine-independent keys,
/// `--cache-to`/`--cache-from` (registry and local), lazy import, many writers.
mod cache_cli;
/// Issue 10, `--cgroup-parent`: step cgroups below a given cgroup, errors when it is
/// missing or not writable.
mod cgroup_cli;
/// `cairn compile`: AST and IR output, formats, errors.
mod compile_cli;
/// Issue 16: why steps missed the cache (`build --explain`, `cairn explain`), step records
/// without secret values.
mod explain_cli;
/// Issue 11, the rest of buildx's dialect: exporter options (zstd, media types,
/// annotations) read back by skopeo and umoci, `--annotation`, `--call`.
mod exporter_cli;
/// Issue 13, faults: kill -9 during store commands, concurrent rmi/tag/build, a full
/// store filesystem.
mod faults_cli;
/// Issue 17, external frontends: the Python example, `# syntax=`, hostile frontends,
/// confinement, the protocol's JSON Schemas, `--ir` JSON.
mod frontend_cli;
/// Looking inside images and builds: `history`, `inspect`, `images` filters and formats,
/// `analyze`, `build --timeline` rendered by headless Chromium.
mod inspect_cli;
/// Architecture invariants checked over `cargo metadata`.
mod invariants;
/// Issue 16: Dockerfile checks (`--check`, `--call check`, `# check=`, warnings after a
/// build, `error=true`).
mod lint_cli;
/// `RUN --mount` (secret, cache, bind, tmpfs, ssh) and `--network`/`--security` at run
/// time: secrets never stored, cache mounts persistent and prunable, bind keys.
mod mounts_cli;
/// Issue 15, multi-platform builds: emulated RUN (QEMU via binfmt_misc), the
/// cross-compilation pattern, `--platform a,b` into one image index, push, base warnings.
mod multiplatform_cli;
/// Registries: push, pull, `FROM` a registry image, lazy layers, login (a local
/// `docker-registry`).
mod registry_cli;
/// The `docker-registry` fixture of the registry and cache tests.
mod registry_fixture;
/// Issue 13: hostile and unusual inputs (deep layer chains, special tar entries, a BOM).
mod reliability_cli;
/// Reproducible images (SOURCE_DATE_EPOCH, `--verify-reproducible`), `created`, empty
/// layers, `cairn save`, COPY `--link`/`--parents`/`--exclude`.
mod repro_cli;
/// Issue 10, rootless builds: cairn run by users the test makes, with and without
/// subordinate ids; ownership in the exported layers checked with tar and skopeo.
mod rootless_cli;
/// RUN-step confinement: capabilities, seccomp, masked paths, `--allow security.insecure`.
mod sandbox_cli;
/// Issue 17, the Rust builder SDK: a Definition made with `cairn-sdk` built by
/// `cairn build --ir`, its files exported, a second build all cached.
mod sdk_cli;
/// A reader of BuildKit's `SolveStatus` stream (`--progress rawjson`), used by the
/// build tests.
mod solve_status;
/// Remote sources: `ADD` of URLs (a loopback HTTP server: checksums, ETag revalidation,
/// errors) and of git repositories (`git daemon`: branches, tags, subdirs, `.git`).
mod sources_cli;

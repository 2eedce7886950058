//! Remote sources: `SourceOp::Http` (ADD of a URL) and `SourceOp::Git` (ADD of a
//! repository). Each one is a progress step of its own whose result is one layer.
//!
//! **Http.** The file is streamed straight into a scratch layer under the store's `tmp/`
//! (dropped, so nothing is left, when anything fails) while its sha256 is computed; it
//! becomes `/<filename>` with `mode` (0o600 by default) and, as BuildKit does, the
//! `Last-Modified` time as mtime (the Unix epoch without one). No `Accept-Encoding` is sent
//! and nothing is decompressed: the bytes are the file as served, which is what a
//! `--checksum` names. The source's cache key is `(url, sha256, filename, mode)`, so with
//! `--checksum` the key is known before any request and a hit needs no network at all.
//! Without one, the store keeps a record per `(url, filename, mode)` in
//! `http/<blake3>.json` (ETag, Last-Modified, sha256, layer; temp-and-rename): the next
//! build sends `If-None-Match` / `If-Modified-Since`, and a `304` reuses the recorded layer
//! once its file has been hashed again and still matches. Any other success downloads anew;
//! a download whose bytes equal a stored layer's (a server without validators) keeps that
//! layer. The step shows CACHED when nothing was downloaded, DONE otherwise; consumers key
//! on the file's content either way, so an unchanged download keeps them cached.
//! Redirects are followed (at most 10); statuses outside 2xx and 304 are errors.
//!
//! **Git.** Everything goes through the `git` command, never interactively
//! (`GIT_TERMINAL_PROMPT=0`, ssh in batch mode, stdin closed, only the git, ssh, http and
//! https transports). The reference is resolved with `git ls-remote` (HEAD when empty; a
//! full commit id is taken as is), and the key is the commit, `subdir` and `keep_git_dir`
//! (and the remote when `.git` is kept, since it names the remote): a cached commit costs one
//! `ls-remote`, or nothing for a commit id. A miss fetches that one commit shallowly into a
//! fresh repository under `tmp/`, checks it out (with submodules), drops `.git` unless
//! asked to keep it, and renames the tree (or `subdir` of it) into the layer.

use std::cell::OnceCell;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use cairn_ir::Digest;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

use super::mounts::RemoveDir;
use super::OpCx;
use crate::solve::backend::{Backend, CacheIndex, CacheKey, Chain, LayerId, Scratch};
use crate::solve::engine::{fail, Plan, SourceKey, StepError};
use crate::solve::key;

impl<B: Backend> OpCx<'_, B> {
    // ------------------------------------------------------------------------- http

    /// `SourceOp::Http`: `/<filename>` downloaded from `url`.
    pub(super) fn http_source<'s>(
        &'s self,
        v: usize,
        url: &'s str,
        checksum: Option<&'s Digest>,
        filename: &'s str,
        mode: Option<u32>,
        cancel: &'s AtomicBool,
    ) -> Plan<'s> {
        let src = HttpSrc { url, filename, mode: mode.unwrap_or(0o600) };
        let check = move || {
            if filename.is_empty() || filename == "." || filename == ".." || filename.contains('/') {
                return Err(StepError::msg(format!("Invalid file name `{filename}` for `{url}`")));
            }
            Ok(())
        };
        match checksum {
            // With `--checksum` the key is known, so a hit needs no request.
            Some(sum) => Plan::Source {
                key: Box::new(move || {
                    check()?;
                    Ok(SourceKey::Key(src.key(sum)))
                }),
                exec: Some(Box::new(move |_| {
                    let dl = self.download_fresh(&src, cancel)?;
                    if dl.sha256 != *sum {
                        return Err(StepError::msg(format!(
                            "Checksum mismatch for `{}`: expected `{sum}`, got `{}`",
                            src.url, dl.sha256
                        )));
                    }
                    Ok(vec![self.http_commit(&src, dl)?.1])
                })),
            },
            // Without one: a conditional request against the stored record.
            None => Plan::Source {
                key: Box::new(move || {
                    check()?;
                    self.http_revalidated(v, &src, cancel)
                }),
                exec: None,
            },
        }
    }

    fn http_revalidated(&self, v: usize, src: &HttpSrc, cancel: &AtomicBool) -> Result<SourceKey, StepError> {
        let record = if self.opts.no_cache || self.graph.def.vertices[v].meta.ignore_cache {
            None
        } else {
            self.http_record(src).filter(|r| self.backend.has_layers(std::slice::from_ref(&r.layer)))
        };
        let fetched = |(key, chain): (CacheKey, Chain)| SourceKey::Fetched { key, chains: vec![chain], reused: false };
        let rec = match (self.download(src, record.as_ref(), cancel)?, record) {
            (Got::Body(dl), _) => return self.http_commit(src, dl).map(fetched),
            (Got::NotModified, Some(rec)) => rec,
            (Got::NotModified, None) => return Err(not_modified(src.url)),
        };
        let file = self.backend.layer_dir(&rec.layer).join(src.filename);
        let sum = rec.sha256.parse::<Digest>().ok();
        let Some(sum) = sum.filter(|s| sha256_file(&file).ok().as_ref() == Some(s)) else {
            // The recorded layer was damaged (or the record): fetch the content again.
            let dl = self.download_fresh(src, cancel)?;
            return self.http_commit(src, dl).map(fetched);
        };
        Ok(SourceKey::Fetched { key: src.key(&sum), chains: vec![vec![rec.layer]], reused: true })
    }

    /// Commits a downloaded layer (or reuses an equal one) and writes the record; the
    /// engine records the result under the key.
    fn http_commit(&self, src: &HttpSrc, dl: Download<B::Scratch>) -> Result<(CacheKey, Chain), StepError> {
        let key = src.key(&dl.sha256);
        let existing =
            CacheIndex::get(self.backend, &key).ok().flatten().and_then(|c| c.into_iter().next()).filter(|c| {
                c.len() == 1 && sha256_file(&self.backend.layer_dir(&c[0]).join(src.filename)).ok() == Some(dl.sha256)
            });
        let chain = match existing {
            // Same bytes as a layer we have: keep that one (the download is dropped).
            Some(c) => c,
            None => vec![self.backend.commit_layer(dl.layer).map_err(fail("Cannot commit the layer"))?],
        };
        let rec = HttpRecord {
            url: src.url.to_string(),
            filename: src.filename.to_string(),
            mode: src.mode,
            etag: dl.etag,
            last_modified: dl.last_modified,
            sha256: dl.sha256.to_string(),
            layer: chain[0].clone(),
        };
        self.write_http_record(src, &rec)?;
        Ok((key, chain))
    }

    fn http_record_path(&self, src: &HttpSrc) -> PathBuf {
        let mut h = blake3::Hasher::new();
        for part in [src.url, src.filename, &format!("{:o}", src.mode)] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        self.opts.layout.http_records_dir().join(format!("{}.json", h.finalize().to_hex()))
    }

    fn http_record(&self, src: &HttpSrc) -> Option<HttpRecord> {
        let bytes = fs::read(self.http_record_path(src)).ok()?;
        let rec: HttpRecord = serde_json::from_slice(&bytes).ok()?;
        (rec.url == src.url && rec.filename == src.filename && rec.mode == src.mode).then_some(rec)
    }

    fn write_http_record(&self, src: &HttpSrc, rec: &HttpRecord) -> Result<(), StepError> {
        let dest = self.http_record_path(src);
        let what = || format!("Cannot write the HTTP record `{}`", dest.display());
        if let Some(dir) = dest.parent() {
            fs::create_dir_all(dir).map_err(fail(what()))?;
        }
        let tmp = self.backend.tmp_path("http-record");
        let bytes = serde_json::to_vec_pretty(rec).map_err(fail(what()))?;
        let written = (|| {
            let mut f = File::create_new(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            fs::rename(&tmp, &dest)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written.map_err(fail(what()))
    }

    /// An unconditional GET of `src.url`.
    fn download_fresh(&self, src: &HttpSrc, cancel: &AtomicBool) -> Result<Download<B::Scratch>, StepError> {
        match self.download(src, None, cancel)? {
            Got::Body(dl) => Ok(dl),
            Got::NotModified => Err(not_modified(src.url)),
        }
    }

    /// One GET of `src.url`, conditional on `record` when given; a body is streamed into
    /// a scratch layer as `/<filename>`.
    fn download(
        &self,
        src: &HttpSrc,
        record: Option<&HttpRecord>,
        cancel: &AtomicBool,
    ) -> Result<Got<B::Scratch>, StepError> {
        let url = src.url;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let mut req = agent.get(url);
        if let Some(r) = record {
            if let Some(etag) = &r.etag {
                req = req.header("If-None-Match", etag);
            }
            if let Some(lm) = &r.last_modified {
                req = req.header("If-Modified-Since", lm);
            }
        }
        let resp = req.call().map_err(|e| StepError::msg(format!("Cannot download `{url}`: {e}")))?;
        let status = resp.status();
        if status.as_u16() == 304 {
            return Ok(Got::NotModified);
        }
        if !status.is_success() {
            let reason = status.canonical_reason().map(|r| format!(" {r}")).unwrap_or_default();
            return Err(StepError::msg(format!(
                "Cannot download `{url}`: the server answered {}{reason}",
                status.as_u16()
            )));
        }
        let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        let etag = header("etag");
        let last_modified = header("last-modified");
        let mtime =
            last_modified.as_deref().and_then(|s| httpdate::parse_http_date(s).ok()).unwrap_or(SystemTime::UNIX_EPOCH);
        let layer = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
        let path = layer.upper().join(src.filename);
        let mut body = resp.into_body().into_reader();
        let sha256 = (|| -> Result<Digest, StepError> {
            let mut f = File::create_new(&path).map_err(fail(format!("Cannot create `{}`", path.display())))?;
            let mut h = sha2::Sha256::new();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                if cancel.load(Ordering::SeqCst) {
                    return Err(StepError::Cancelled);
                }
                let n = body.read(&mut buf).map_err(fail(format!("Cannot download `{url}`")))?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
                f.write_all(&buf[..n]).map_err(fail(format!("Cannot write `{}`", path.display())))?;
            }
            f.set_permissions(fs::Permissions::from_mode(src.mode)).map_err(fail("Cannot set the file mode"))?;
            f.set_times(fs::FileTimes::new().set_accessed(mtime).set_modified(mtime))
                .map_err(fail("Cannot set the file time"))?;
            Ok(Digest(h.finalize().into()))
        })()?;
        Ok(Got::Body(Download { layer, sha256, etag, last_modified }))
    }

    // ------------------------------------------------------------------------- git

    /// `SourceOp::Git`: the repository `remote` at `reference`.
    pub(super) fn git_source<'s>(
        &'s self,
        remote: &'s str,
        reference: &'s str,
        subdir: &'s str,
        keep_git_dir: bool,
        cancel: &'s AtomicBool,
    ) -> Plan<'s> {
        // The key phase resolves the ref; the exec phase (on a miss) checks that commit out.
        let resolved: std::rc::Rc<OnceCell<(Resolved, String)>> = Default::default();
        let r2 = resolved.clone();
        Plan::Source {
            key: Box::new(move || {
                check_remote(remote)?;
                let subdir = clean_subdir(subdir).ok_or_else(|| {
                    StepError::msg(format!(
                        "Invalid subdirectory `{subdir}` for `{remote}`: it must stay inside the repository"
                    ))
                })?;
                let r = resolve_ref(remote, reference, cancel)?;
                let mut value = format!("{}\n{subdir}\n{keep_git_dir}", r.commit);
                if keep_git_dir {
                    value.push('\n');
                    value.push_str(remote);
                }
                let _ = resolved.set((r, subdir));
                Ok(SourceKey::Key(key::leaf_key("git", &value)))
            }),
            exec: Some(Box::new(move |_| {
                let (r, subdir) = r2.get().ok_or_else(|| StepError::msg("The git reference was not resolved"))?;
                let layer = self.git_checkout(remote, r, subdir, keep_git_dir, cancel)?;
                Ok(vec![vec![self.backend.commit_layer(layer).map_err(fail("Cannot commit the layer"))?]])
            })),
        }
    }

    /// Fetches one commit into a fresh repository and turns its tree into a scratch layer.
    fn git_checkout(
        &self,
        remote: &str,
        r: &Resolved,
        subdir: &str,
        keep_git_dir: bool,
        cancel: &AtomicBool,
    ) -> Result<B::Scratch, StepError> {
        let work = self.backend.tmp_path("git");
        let _cleanup = RemoveDir(work.clone());
        let tree = checkout(remote, r, subdir, keep_git_dir, &work, cancel)?;
        let layer = self.backend.new_layer().map_err(fail("Cannot create a layer"))?;
        fs::remove_dir(layer.upper())
            .and_then(|()| fs::rename(&tree, layer.upper()))
            .map_err(fail("Cannot move the checkout into a layer"))?;
        Ok(layer)
    }
}

/// Checks out commit `r` of `remote` in `work` (created here) and returns the tree: the
/// repository, or its `subdir`; `.git` dropped unless `keep_git_dir`.
fn checkout(
    remote: &str,
    r: &Resolved,
    subdir: &str,
    keep_git_dir: bool,
    work: &Path,
    cancel: &AtomicBool,
) -> Result<PathBuf, StepError> {
    let repo = work.join("repo");
    fs::create_dir_all(&repo).map_err(fail(format!("Cannot create `{}`", repo.display())))?;
    let git = |args: &[&str]| run_git(remote, Some(&repo), args, cancel);
    git(&["-c", "init.defaultBranch=cairn", "init", "-q"])?;
    git(&["remote", "add", "origin", remote])?;
    let mut fetched = false;
    if let Some(refspec) = &r.refspec {
        git(&["fetch", "-q", "--depth", "1", "--no-tags", "origin", refspec])?;
        // The ref may have moved since `ls-remote`: then fetch the commit itself.
        fetched = git(&["rev-parse", "-q", "--verify", &format!("{}^{{commit}}", r.commit)]).is_ok();
    }
    if !fetched && git(&["fetch", "-q", "--depth", "1", "--no-tags", "origin", &r.commit]).is_err() {
        // Servers that refuse fetching a commit by id: fetch every branch and tag.
        git(&["fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"])?;
    }
    git(&["rev-parse", "-q", "--verify", &format!("{}^{{commit}}", r.commit)])
        .map_err(|_| StepError::msg(format!("Commit `{}` was not found in `{remote}`", r.commit)))?;
    git(&["-c", "advice.detachedHead=false", "checkout", "-q", &r.commit])?;
    let submodules = repo.join(".gitmodules").is_file();
    if submodules {
        let update = ["submodule", "update", "-q", "--init", "--recursive"];
        if git(&[&update[..], &["--depth", "1"]].concat()).is_err() {
            // A server that refuses a shallow fetch of the recorded commit.
            git(&update)?;
        }
    }
    if !keep_git_dir {
        fs::remove_dir_all(repo.join(".git")).map_err(fail("Cannot remove `.git`"))?;
        if submodules {
            // Each submodule has a `.git` file pointing into the removed directory.
            remove_git_files(&repo).map_err(fail("Cannot remove the submodules' `.git` files"))?;
        }
    }
    let tree = if subdir.is_empty() {
        repo.clone()
    } else {
        // Resolved, so a symlinked subdirectory is taken as the directory it names.
        let found = match (repo.join(subdir).canonicalize(), repo.canonicalize()) {
            (Ok(p), Ok(root)) if p.starts_with(&root) && p != root && p.is_dir() => Some(p),
            _ => None,
        };
        found.ok_or_else(|| StepError::msg(format!("`{subdir}` is not a directory of `{remote}` at `{}`", r.commit)))?
    };
    Ok(tree)
}

/// A build context given as a git URL (`https://host/repo.git#REF:SUBDIR`, `git@host:repo`,
/// `git://…`): the commit `REF` names (HEAD when empty) checked out in `work`, as `ADD`
/// does; returns the tree's directory.
pub fn checkout_context(url: &str, work: &Path, cancel: &AtomicBool) -> Result<PathBuf, String> {
    let (remote, frag) = url.split_once('#').unwrap_or((url, ""));
    let (reference, subdir) = frag.split_once(':').unwrap_or((frag, ""));
    let err = |e: StepError| match e {
        StepError::Cancelled => "Cancelled".to_string(),
        StepError::Failed { message, .. } => message,
    };
    check_remote(remote).map_err(err)?;
    let subdir = clean_subdir(subdir).ok_or_else(|| format!("Invalid subdirectory `{subdir}` for `{remote}`"))?;
    let r = resolve_ref(remote, reference, cancel).map_err(err)?;
    checkout(remote, &r, &subdir, false, work, cancel).map_err(err)
}

/// A build context given as the URL of a tarball (plain, gzip or zstd), unpacked into
/// `dest` (an empty directory).
pub fn fetch_context_tarball(url: &str, dest: &Path) -> Result<(), String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .max_redirects(10)
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_per_read(Some(Duration::from_secs(60)))
        .user_agent(concat!("cairn/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let resp = agent.get(url).call().map_err(|e| format!("Cannot download the build context `{url}`: {e}"))?;
    let body = std::io::BufReader::new(resp.into_body().into_reader());
    let (reader, _) = crate::compress::decoder(body).map_err(|e| format!("Cannot read `{url}`: {e}"))?;
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.unpack(dest).map_err(|e| format!("Cannot unpack the build context `{url}` (a tar, plain or compressed): {e}"))
}

/// What identifies an Http source's file.
#[derive(Clone, Copy)]
struct HttpSrc<'a> {
    url: &'a str,
    filename: &'a str,
    mode: u32,
}

impl HttpSrc<'_> {
    fn key(&self, sha256: &Digest) -> CacheKey {
        let value = format!("{}\n{sha256}\n{}\n{:o}", self.url, self.filename, self.mode);
        key::leaf_key("http", &value)
    }
}

/// What the store remembers about the last download of one URL (`http/<blake3>.json`).
#[derive(Debug, Serialize, Deserialize)]
struct HttpRecord {
    url: String,
    filename: String,
    mode: u32,
    etag: Option<String>,
    last_modified: Option<String>,
    /// `sha256:<hex>` of the file.
    sha256: String,
    layer: LayerId,
}

/// A downloaded file in its scratch layer.
struct Download<L> {
    layer: L,
    sha256: Digest,
    etag: Option<String>,
    last_modified: Option<String>,
}

enum Got<L> {
    Body(Download<L>),
    NotModified,
}

/// Removes every `.git` entry below `dir` (git never tracks one, so each is git's own).
fn remove_git_files(dir: &Path) -> std::io::Result<()> {
    for e in fs::read_dir(dir)? {
        let e = e?;
        let ft = e.file_type()?;
        if e.file_name() == ".git" {
            if ft.is_dir() {
                fs::remove_dir_all(e.path())?;
            } else {
                fs::remove_file(e.path())?;
            }
        } else if ft.is_dir() {
            remove_git_files(&e.path())?;
        }
    }
    Ok(())
}

fn not_modified(url: &str) -> StepError {
    StepError::msg(format!(
        "Cannot download `{url}`: the server answered 304 Not Modified to a request that was not conditional"
    ))
}

fn sha256_file(path: &Path) -> std::io::Result<Digest> {
    let mut f = File::open(path)?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(Digest(h.finalize().into()))
}

/// A reference resolved to a commit; `refspec` is what to fetch for it, when it is a ref.
#[derive(Debug, PartialEq, Eq)]
struct Resolved {
    commit: String,
    refspec: Option<String>,
}

fn is_commit_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Only the transports the Dockerfile frontend produces, and nothing git would read as
/// an option.
fn check_remote(remote: &str) -> Result<(), StepError> {
    let scheme_ok = ["git://", "ssh://", "http://", "https://"].iter().any(|s| remote.starts_with(s));
    let scp_like = remote.split_once(':').is_some_and(|(host, _)| host.contains('@') && !host.contains('/'));
    if (scheme_ok || scp_like) && !remote.starts_with('-') && !remote.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(StepError::msg(format!(
            "Unsupported git remote `{remote}`: expected `git://`, `ssh://`, `http(s)://` or `user@host:path`"
        )))
    }
}

/// `subdir` relative and without `..`; empty for the whole repository.
fn clean_subdir(subdir: &str) -> Option<String> {
    let parts: Vec<&str> = subdir.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    (!parts.contains(&"..")).then(|| parts.join("/"))
}

/// Resolves `reference` with `git ls-remote` (a full commit id as is).
fn resolve_ref(remote: &str, reference: &str, cancel: &AtomicBool) -> Result<Resolved, StepError> {
    if is_commit_id(reference) {
        return Ok(Resolved { commit: reference.to_ascii_lowercase(), refspec: None });
    }
    let want = if reference.is_empty() { "HEAD" } else { reference };
    let out = run_git(remote, None, &["ls-remote", remote, want], cancel)?;
    pick_ref(&out, want).ok_or_else(|| StepError::msg(format!("Reference `{want}` was not found in `{remote}`")))
}

/// Picks `want` from `ls-remote` output as git would: an exact ref name first, then a
/// tag (peeled to its commit), then a branch.
fn pick_ref(ls_remote: &str, want: &str) -> Option<Resolved> {
    let refs: Vec<(&str, &str)> = ls_remote.lines().filter_map(|l| l.split_once('\t')).collect();
    let find = |name: &str| refs.iter().find(|(_, n)| *n == name).map(|(c, _)| c.to_string());
    if let Some(c) = find(want) {
        return Some(Resolved { commit: c, refspec: Some(want.to_string()) });
    }
    let tag = format!("refs/tags/{want}");
    if let Some(c) = find(&format!("{tag}^{{}}")).or_else(|| find(&tag)) {
        return Some(Resolved { commit: c, refspec: Some(format!("+{tag}:{tag}")) });
    }
    let branch = format!("refs/heads/{want}");
    find(&branch).map(|c| Resolved { commit: c, refspec: Some(format!("+{branch}:refs/remotes/origin/{want}")) })
}

/// Runs `git args` (in `dir`) without prompts; on failure the error names the remote and
/// carries the last lines git printed. Killed when `cancel` becomes true.
fn run_git(remote: &str, dir: Option<&Path>, args: &[&str], cancel: &AtomicBool) -> Result<String, StepError> {
    let mut cmd = Command::new("git");
    if let Some(d) = dir {
        cmd.arg("-C").arg(d);
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_ALLOW_PROTOCOL", "git:ssh:http:https")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if std::env::var_os("GIT_SSH_COMMAND").is_none() {
        cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
    }
    let what = format!("git {}", args.iter().find(|a| !a.starts_with('-') && !a.contains('=')).unwrap_or(&""));
    let mut child = cmd.spawn().map_err(|e| StepError::msg(format!("Cannot run `git` for `{remote}`: {e}")))?;
    let (mut out, mut err) = (child.stdout.take(), child.stderr.take());
    let (stdout, stderr, status) = std::thread::scope(|s| {
        let o = s.spawn(move || {
            let mut b = Vec::new();
            if let Some(r) = out.as_mut() {
                let _ = r.read_to_end(&mut b);
            }
            b
        });
        let e = s.spawn(move || {
            let mut b = Vec::new();
            if let Some(r) = err.as_mut() {
                let _ = r.read_to_end(&mut b);
            }
            b
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break Ok(st),
                Ok(None) if cancel.load(Ordering::SeqCst) => {
                    // SAFETY: signalling the process group we created for this child.
                    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
                    let _ = child.wait();
                    break Err(StepError::Cancelled);
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(StepError::msg(format!("Cannot wait for `{what}`: {e}"))),
            }
        };
        (o.join().unwrap_or_default(), e.join().unwrap_or_default(), status)
    });
    let status = status?;
    if status.success() {
        return Ok(String::from_utf8_lossy(&stdout).into_owned());
    }
    let text = String::from_utf8_lossy(&stderr);
    let lines: Vec<String> = text.lines().filter(|l| !l.trim().is_empty()).map(str::to_string).collect();
    let tail = lines[lines.len().saturating_sub(12)..].to_vec();
    let last = tail.last().cloned().unwrap_or_else(|| format!("{status}"));
    Err(StepError::Failed { message: format!("`{what}` failed for `{remote}`: {last}"), tail })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: &str = "1111111111111111111111111111111111111111\tHEAD\n\
2222222222222222222222222222222222222222\trefs/heads/v1\n\
3333333333333333333333333333333333333333\trefs/tags/v1\n\
4444444444444444444444444444444444444444\trefs/tags/v1^{}\n\
5555555555555555555555555555555555555555\trefs/heads/main\n";

    #[test]
    fn refs_resolve_like_git() {
        let r = pick_ref(LS, "HEAD").unwrap();
        assert_eq!(r.commit, "1".repeat(40));
        // A tag wins over a branch of the same name, peeled to its commit.
        let r = pick_ref(LS, "v1").unwrap();
        assert_eq!(r, Resolved { commit: "4".repeat(40), refspec: Some("+refs/tags/v1:refs/tags/v1".into()) });
        let r = pick_ref(LS, "main").unwrap();
        assert_eq!(r.refspec.as_deref(), Some("+refs/heads/main:refs/remotes/origin/main"));
        assert_eq!(pick_ref(LS, "refs/heads/v1").unwrap().commit, "2".repeat(40));
        assert!(pick_ref(LS, "nope").is_none());
        assert!(is_commit_id(&"a".repeat(40)));
        assert!(!is_commit_id("abc1234"));
    }

    #[test]
    fn remotes_and_subdirs_are_checked() {
        for ok in ["git://h/r.git", "https://h/r.git", "ssh://git@h/r", "git@github.com:o/r.git"] {
            assert!(check_remote(ok).is_ok(), "{ok}");
        }
        for bad in ["ext::sh -c id", "--upload-pack=x", "/srv/repo", "file:///srv/repo"] {
            assert!(check_remote(bad).is_err(), "{bad}");
        }
        assert_eq!(clean_subdir("/docs/./api/").as_deref(), Some("docs/api"));
        assert_eq!(clean_subdir("").as_deref(), Some(""));
        assert_eq!(clean_subdir("a/../../x"), None);
    }
}

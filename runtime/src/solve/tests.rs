//! Solves on a plain directory backend with real overlay mounts. Processes run on the
//! host (no isolation) with `$ROOT` naming the mounted root filesystem, which is enough
//! to test the solver's side of Exec; the real sandbox is covered by the CLI's tests.

use super::*;
use cairn_ir::*;
use std::sync::Mutex;

struct Events(Mutex<Vec<progress::Event>>);
impl Progress for Events {
    fn event(&self, ev: progress::Event) {
        self.0.lock().unwrap().push(ev);
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("cairn-solve-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).unwrap();
    d
}

struct G {
    def: Definition,
}

impl G {
    fn new() -> G {
        G { def: Definition { version: FORMAT_VERSION, vertices: vec![], outputs: vec![], sources: vec![] } }
    }
    fn add(&mut self, inputs: Vec<Input>, op: Op, desc: &str) -> Input {
        let vertex = Vertex { inputs, op };
        let digest = vertex_digest(&vertex);
        if !self.def.vertices.iter().any(|v| v.digest == digest) {
            let meta = VertexMeta { description: desc.into(), ..Default::default() };
            self.def.vertices.push(VertexEntry { digest, vertex, meta });
        }
        Input { digest, index: 0 }
    }
    fn copy(&mut self, base: Option<Input>, src: Input, paths: &[&str], dest: &str) -> Input {
        let c = CopyAction {
            allow_wildcard: true,
            ..CopyAction::new(
                FileRef::Input(if base.is_some() { 1 } else { 0 }),
                paths.iter().map(|s| s.to_string()).collect(),
                dest,
            )
        };
        let base_ref = if base.is_some() { FileRef::Input(0) } else { FileRef::Scratch };
        let inputs: Vec<Input> = base.into_iter().chain([src]).collect();
        let op = Op::File(FileOp { actions: vec![FileAction { base: base_ref, kind: FileActionKind::Copy(c) }] });
        self.add(inputs, op, &format!("COPY {} {dest}", paths.join(" ")))
    }
    fn mkfile(&mut self, base: Input, path: &str, data: &str) -> Input {
        let op = Op::File(FileOp {
            actions: vec![FileAction {
                base: FileRef::Input(0),
                kind: FileActionKind::Mkfile {
                    path: path.into(),
                    mode: 0o644,
                    data: data.as_bytes().to_vec(),
                    owner: None,
                    timestamp: None,
                },
            }],
        });
        self.add(vec![base], op, &format!("mkfile {path}"))
    }
    fn rm(&mut self, base: Input, path: &str) -> Input {
        let op = Op::File(FileOp {
            actions: vec![FileAction {
                base: FileRef::Input(0),
                kind: FileActionKind::Rm { path: path.into(), allow_not_found: false, allow_wildcard: false },
            }],
        });
        self.add(vec![base], op, &format!("rm {path}"))
    }
    fn run(&mut self, root: Input, script: &str) -> Input {
        let op = Op::Exec(ExecOp {
            meta: ExecMeta {
                args: vec!["/bin/sh".into(), "-c".into(), script.into()],
                env: vec!["PATH=/usr/bin:/bin".to_string()].into(),
                cwd: "/".into(),
                user: String::new(),
                hostname: String::new(),
            },
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
            mounts: vec![Mount {
                input: Some(0),
                selector: String::new(),
                target: "/".into(),
                readonly: false,
                output: Some(0),
                kind: MountKind::Bind,
            }],
            secret_env: vec![],
            platform: None,
        });
        self.add(vec![root], op, &format!("RUN {script}"))
    }
    fn out(&mut self, root: Input) {
        let config = ImageConfig { architecture: "amd64".into(), os: "linux".into(), ..Default::default() };
        self.def.outputs = vec![Output { platform: Platform::host(), root, config }];
    }
}

/// A plain directory store with real overlay mounts and no sandbox.
struct DirBackend {
    root: PathBuf,
    seq: AtomicUsize,
}

/// A scratch layer: (dir, upper, work); the dir is removed on drop.
struct RemoveOnDrop(PathBuf, PathBuf, PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

struct Unmount(std::ffi::CString);
impl Drop for Unmount {
    fn drop(&mut self) {
        // SAFETY: a valid C string naming our own mount point.
        unsafe { libc::umount2(self.0.as_ptr(), libc::MNT_DETACH) };
    }
}

impl backend::Scratch for RemoveOnDrop {
    fn upper(&self) -> &std::path::Path {
        &self.1
    }
    fn work(&self) -> &std::path::Path {
        &self.2
    }
}

fn berr(e: impl std::fmt::Display) -> backend::BackendError {
    backend::BackendError::Process(e.to_string())
}

impl backend::Snapshots for DirBackend {
    type Scratch = RemoveOnDrop;
    type Mount = Unmount;
    fn layer_dir(&self, id: &str) -> PathBuf {
        self.root.join("layers").join(id)
    }
    fn has_layers(&self, chain: &[LayerId]) -> bool {
        chain.iter().all(|l| self.layer_dir(l).is_dir())
    }
    fn new_layer(&self) -> Result<RemoveOnDrop, backend::BackendError> {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = self.root.join("tmp").join(n.to_string());
        fs::create_dir_all(dir.join("u")).map_err(berr)?;
        fs::create_dir_all(dir.join("w")).map_err(berr)?;
        Ok(RemoveOnDrop(dir.clone(), dir.join("u"), dir.join("w")))
    }
    fn tmp_path(&self, what: &str) -> PathBuf {
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.root.join("tmp").join(format!("{n}-{what}"))
    }
    fn commit_layer(&self, layer: RemoveOnDrop) -> Result<LayerId, backend::BackendError> {
        let id = format!("l{}", self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst));
        fs::create_dir_all(self.root.join("layers")).map_err(berr)?;
        fs::rename(&layer.1, self.layer_dir(&id)).map_err(berr)?;
        Ok(id)
    }
    fn mount_overlay(
        &self,
        lowers: &[PathBuf],
        upper_work: Option<(&std::path::Path, &std::path::Path)>,
        target: &std::path::Path,
    ) -> Result<Unmount, backend::BackendError> {
        use std::os::unix::ffi::OsStrExt;
        let l: Vec<String> = lowers.iter().rev().map(|p| p.display().to_string()).collect();
        let mut opts = format!("lowerdir={}", l.join(":"));
        if let Some((u, w)) = upper_work {
            opts.push_str(&format!(",upperdir={},workdir={}", u.display(), w.display()));
        }
        let c = |s: &[u8]| std::ffi::CString::new(s).unwrap();
        let (src, tgt, ty, data) = (c(b"overlay"), c(target.as_os_str().as_bytes()), c(b"overlay"), c(opts.as_bytes()));
        // SAFETY: valid C strings; plain mount(2).
        let r = unsafe { libc::mount(src.as_ptr(), tgt.as_ptr(), ty.as_ptr(), 0, data.as_ptr().cast()) };
        if r != 0 {
            return Err(berr(format!("mount {opts}: {}", std::io::Error::last_os_error())));
        }
        Ok(Unmount(tgt))
    }
}

impl backend::CacheIndex for DirBackend {
    fn get(&self, key: &backend::CacheKey) -> Result<Option<Vec<backend::Chain>>, backend::BackendError> {
        Ok(fs::read(self.root.join("cache").join(key.hex())).ok().and_then(|b| serde_json::from_slice(&b).ok()))
    }
    fn put(&self, key: &backend::CacheKey, chains: &[backend::Chain]) -> Result<(), backend::BackendError> {
        fs::create_dir_all(self.root.join("cache")).map_err(berr)?;
        fs::write(self.root.join("cache").join(key.hex()), serde_json::to_vec(chains).unwrap()).map_err(berr)
    }
}

impl backend::Images for DirBackend {
    fn image(
        &self,
        _reference: &str,
        _platform: &Platform,
    ) -> Result<Option<backend::ImageInfo>, backend::BackendError> {
        Ok(None)
    }
}

impl backend::Executor for DirBackend {
    fn run(
        &self,
        spec: &backend::ProcessSpec,
        cancel: &AtomicBool,
        output: &mut dyn FnMut(&[u8]),
    ) -> Result<backend::Exit, backend::BackendError> {
        use std::io::Read;
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let n = self.seq.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let mp = self.root.join(format!("run-{n}"));
        fs::create_dir_all(&mp).map_err(berr)?;
        let empty = self.root.join("run-empty");
        fs::create_dir_all(&empty).map_err(berr)?;
        let mut lowers = vec![empty];
        lowers.extend(spec.root_lowers.iter().cloned());
        let guard = backend::Snapshots::mount_overlay(self, &lowers, Some((&spec.root_upper, &spec.root_work)), &mp)?;
        let (mut reader, writer) = std::io::pipe().map_err(berr)?;
        let mut child = std::process::Command::new(&spec.args[0])
            .args(&spec.args[1..])
            .env_clear()
            .envs(spec.env.iter().filter_map(|kv| kv.split_once('=')))
            .env("ROOT", &mp)
            .current_dir(&mp)
            .stdin(std::process::Stdio::null())
            .process_group(0)
            .stdout(writer.try_clone().map_err(berr)?)
            .stderr(writer)
            .spawn()
            .map_err(berr)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                    break;
                }
            }
        });
        loop {
            match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                Ok(chunk) => output(&chunk),
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            }
            if cancel.load(std::sync::atomic::Ordering::SeqCst) {
                // SAFETY: kill(2) on the process group of our own child.
                unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            }
        }
        let status = child.wait().map_err(berr)?;
        drop(guard);
        let _ = fs::remove_dir(&mp);
        Ok(backend::Exit { code: status.code(), signal: status.signal() })
    }
}

struct Env {
    dir: PathBuf,
    store: DirBackend,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = tmp(name);
        fs::create_dir_all(dir.join("ctx")).unwrap();
        let store = DirBackend { root: dir.join("store"), seq: AtomicUsize::new(0) };
        Env { dir, store }
    }
    fn solve(&self, def: &Definition, no_cache: bool) -> Result<(Solved, Vec<progress::Event>), SolveError> {
        self.solve_with(def, no_cache, 4, Platform::host(), &AtomicBool::new(false))
    }
    fn solve_with(
        &self,
        def: &Definition,
        no_cache: bool,
        jobs: usize,
        platform: Platform,
        cancel: &AtomicBool,
    ) -> Result<(Solved, Vec<progress::Event>), SolveError> {
        let opts = SolveOptions {
            platforms: vec![platform],
            no_cache,
            jobs,
            contexts: [("context".to_string(), self.dir.join("ctx"))].into_iter().collect(),
            layout: crate::store::StoreLayout::new(&self.dir.join("store")),
            secrets: Default::default(),
            allow_insecure: false,
            allow_network_host: true,
            resources: Default::default(),
            records: None,
            ssh: Default::default(),
        };
        let ev = Events(Mutex::new(vec![]));
        let s = solve(def, &self.store, &opts, &ev, cancel)?;
        Ok((s, ev.0.into_inner().unwrap()))
    }
    /// Reads `path` in the merged view of `layers` (top layer wins, whiteouts hide).
    fn read(&self, layers: &[LayerId], path: &str) -> Option<String> {
        for l in layers.iter().rev() {
            let p = backend::Snapshots::layer_dir(&self.store, l).join(path.trim_start_matches('/'));
            if let Ok(md) = fs::symlink_metadata(&p) {
                if hash::is_whiteout(&md) {
                    return None;
                }
                return fs::read_to_string(&p).ok();
            }
        }
        None
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn cached_count(ev: &[progress::Event]) -> usize {
    ev.iter().filter(|e| matches!(e, progress::Event::Cached { .. })).count()
}

#[test]
fn copies_from_context_layer_per_step_and_cache() {
    let env = Env::new("ctx");
    fs::write(env.dir.join("ctx/a.txt"), "A").unwrap();
    fs::write(env.dir.join("ctx/b.txt"), "B").unwrap();
    let mut g = G::new();
    let ctx =
        g.add(vec![], Op::Source(SourceOp::Local { name: "context".into(), include: vec![], exclude: vec![] }), "");
    let c1 = g.copy(None, ctx, &["/a.txt"], "/a.txt");
    let c2 = g.copy(Some(c1), ctx, &["/b.txt"], "/dir/");
    let m = g.mkfile(c2, "/made", "m");
    let r = g.rm(m, "/a.txt");
    g.out(r);
    let (s, ev) = env.solve(&g.def, false).unwrap();
    assert_eq!(s.layers.len(), 4, "one layer per file op");
    assert_eq!((s.executed, s.cached), (4, 0));
    assert!(ev.iter().any(|e| matches!(e, progress::Event::Done { .. })));
    assert_eq!(env.read(&s.layers, "/dir/b.txt").as_deref(), Some("B"));
    assert_eq!(env.read(&s.layers, "/made").as_deref(), Some("m"));
    assert_eq!(env.read(&s.layers, "/a.txt"), None, "a whiteout hides the removed file");
    let (again, ev) = env.solve(&g.def, false).unwrap();
    assert_eq!((again.executed, again.cached), (0, 4));
    assert_eq!(cached_count(&ev), 4);
    assert_eq!(again.layers, s.layers);
    // Changing b.txt re-runs the second copy and what follows, not the first.
    fs::write(env.dir.join("ctx/b.txt"), "B2").unwrap();
    let (third, _) = env.solve(&g.def, false).unwrap();
    assert_eq!((third.executed, third.cached), (3, 1));
    assert_eq!(third.layers[0], s.layers[0]);
    assert_eq!(env.read(&third.layers, "/dir/b.txt").as_deref(), Some("B2"));
    let (fourth, _) = env.solve(&g.def, true).unwrap();
    assert_eq!(fourth.executed, 4, "no-cache re-runs everything");
    assert!(env.dir.join("store/statcache").exists());
}

#[test]
fn early_cutoff_through_copy_from_and_merge_concatenates() {
    let env = Env::new("cutoff");
    let mk = |content: &str, extra: &str| {
        let mut g = G::new();
        let s = g.add(vec![], Op::Source(SourceOp::Scratch), "");
        let base = g.mkfile(s, "/base", extra);
        let produced = g.mkfile(base, "/out", content);
        let s2 = g.add(vec![], Op::Source(SourceOp::Scratch), "");
        let consumer = g.copy(None, produced, &["/out"], "/copied");
        let merged = g.add(vec![consumer, s2], Op::Merge(MergeOp {}), "merge");
        let _ = s2;
        g.out(merged);
        g
    };
    let (first, _) = env.solve(&mk("same", "x").def, false).unwrap();
    assert_eq!(first.executed, 3);
    // The producer's base changes: producer steps re-run, output `/out` is the same,
    // so the consumer stays cached.
    let (second, ev) = env.solve(&mk("same", "y").def, false).unwrap();
    assert_eq!((second.executed, second.cached), (2, 1), "{ev:?}");
    assert_eq!(second.layers, first.layers, "the consumer's layer is reused");
    let (third, _) = env.solve(&mk("different", "y").def, false).unwrap();
    assert_eq!(third.executed, 2, "the producer's last step and the consumer");
    assert_eq!(env.read(&third.layers, "/copied").as_deref(), Some("different"));
}

#[test]
fn failures_name_the_step_and_unknown_contexts_are_clear() {
    let env = Env::new("fail");
    let mut g = G::new();
    let ctx =
        g.add(vec![], Op::Source(SourceOp::Local { name: "context".into(), include: vec![], exclude: vec![] }), "");
    let c = g.copy(None, ctx, &["/missing.txt"], "/x");
    g.out(c);
    let err = env.solve(&g.def, false).unwrap_err().to_string();
    assert!(err.contains("`COPY /missing.txt /x` failed"), "{err}");
    assert!(err.contains("`/missing.txt` not found"), "{err}");
    let mut g = G::new();
    let other =
        g.add(vec![], Op::Source(SourceOp::Local { name: "assets".into(), include: vec![], exclude: vec![] }), "");
    let c = g.copy(None, other, &["/a"], "/a");
    g.out(c);
    let err = env.solve(&g.def, false).unwrap_err().to_string();
    assert!(err.contains("Build context `assets` was not given (use `--build-context assets=DIR`)"), "{err}");
    let mut g = G::new();
    let img = g.add(
        vec![],
        Op::Source(SourceOp::Image { reference: "docker.io/library/nothere:1".into(), platform: Platform::host() }),
        "FROM nothere:1",
    );
    g.out(img);
    let err = env.solve(&g.def, false).unwrap_err().to_string();
    assert!(err.contains("Image `docker.io/library/nothere:1` is not in the local store"), "{err}");
}

#[test]
fn exclude_and_include_patterns_limit_what_is_visible() {
    let env = Env::new("ignore");
    fs::create_dir_all(env.dir.join("ctx/src")).unwrap();
    fs::write(env.dir.join("ctx/src/keep.rs"), "k").unwrap();
    fs::write(env.dir.join("ctx/src/skip.log"), "s").unwrap();
    fs::write(env.dir.join("ctx/src/other.tmp"), "t").unwrap();
    // Issue 8: the runtime never reads `.dockerignore` itself, even for a source named
    // `context`; only the IR's patterns count (SPEC.md §7.1).
    fs::write(env.dir.join("ctx/.dockerignore"), "**/*.tmp\n").unwrap();
    let mut g = G::new();
    let ctx = g.add(
        vec![],
        Op::Source(SourceOp::Local { name: "context".into(), include: vec![], exclude: vec!["**/*.log".into()] }),
        "",
    );
    let c = g.copy(None, ctx, &["/src"], "/app");
    g.out(c);
    let (s, _) = env.solve(&g.def, false).unwrap();
    assert_eq!(env.read(&s.layers, "/app/keep.rs").as_deref(), Some("k"));
    assert_eq!(env.read(&s.layers, "/app/skip.log"), None);
    assert_eq!(env.read(&s.layers, "/app/other.tmp").as_deref(), Some("t"), "the file's .dockerignore is not the IR's");
    // Changing an ignored file changes nothing.
    fs::write(env.dir.join("ctx/src/skip.log"), "changed").unwrap();
    let (again, _) = env.solve(&g.def, false).unwrap();
    assert_eq!(again.executed, 0);
}

fn scratch_with_file(g: &mut G) -> Input {
    let s = g.add(vec![], Op::Source(SourceOp::Scratch), "");
    g.mkfile(s, "/base.txt", "base")
}

#[test]
fn exec_layers_are_cached_and_see_the_root() {
    let env = Env::new("exec");
    let mut g = G::new();
    let b = scratch_with_file(&mut g);
    let r = g.run(b, "cat $ROOT/base.txt > $ROOT/copy.txt && echo ran && rm $ROOT/base.txt");
    g.out(r);
    let (s, ev) = env.solve(&g.def, false).unwrap();
    assert_eq!(s.executed, 2);
    assert_eq!(s.layers.len(), 2);
    assert_eq!(env.read(&s.layers, "/copy.txt").as_deref(), Some("base"));
    assert_eq!(env.read(&s.layers, "/base.txt"), None, "deleted through a whiteout");
    assert!(ev.iter().any(|e| matches!(e, progress::Event::Log { line, .. } if line == "ran")), "{ev:?}");
    let (again, _) = env.solve(&g.def, false).unwrap();
    assert_eq!((again.executed, again.cached), (0, 2));
}

#[test]
fn failing_exec_reports_exit_code_and_last_output_lines() {
    let env = Env::new("execfail");
    let mut g = G::new();
    let b = scratch_with_file(&mut g);
    let r = g.run(b, "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo line$i; done; exit 7");
    g.def.sources.push(SourceFile { path: "Dockerfile".into(), text: "FROM scratch\nRUN failing\n".into() });
    let last = g.def.vertices.len() - 1;
    g.def.vertices[last].meta.locations = vec![SourceLocation { source: 0, start_line: 2, end_line: 2 }];
    g.out(r);
    let err = env.solve(&g.def, false).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("failed at Dockerfile:2"), "{text}");
    assert!(text.contains("did not complete successfully: exit code: 7"), "{text}");
    assert!(text.contains("   2 | RUN failing"), "{text}");
    assert!(text.contains("line15") && !text.contains("line1\n"), "the last lines only: {text}");
    // Nothing was recorded for the failed step: the next solve runs it again.
    let err2 = env.solve(&g.def, false).unwrap_err().to_string();
    assert!(err2.contains("exit code: 7"));
}

#[test]
fn independent_execs_overlap_and_jobs_bound_them() {
    let env = Env::new("parallel");
    let mk = |tag: &str| {
        let mut g = G::new();
        let b = scratch_with_file(&mut g);
        let a = g.run(b, &format!("sleep 0.5; echo a{tag} > $ROOT/a"));
        let c = g.run(b, &format!("sleep 0.5; echo c{tag} > $ROOT/c"));
        let m = g.add(vec![a, c], Op::Merge(MergeOp {}), "merge");
        g.out(m);
        g
    };
    let spans = |ev: &[progress::Event]| -> Vec<(f64, f64)> {
        let mut starts = std::collections::HashMap::new();
        let mut out = vec![];
        for e in ev {
            match e {
                progress::Event::Start { id, name, time, .. } if name.starts_with("RUN") => {
                    starts.insert(*id, *time);
                }
                progress::Event::Done { id, time, .. } if starts.contains_key(id) => out.push((starts[id], *time)),
                _ => {}
            }
        }
        out
    };
    let (s, ev) = env.solve(&mk("1").def, false).unwrap();
    assert_eq!(s.layers.len(), 4, "merge concatenates both chains (each with the base)");
    let sp = spans(&ev);
    assert_eq!(sp.len(), 2);
    assert!(sp[0].0 < sp[1].1 && sp[1].0 < sp[0].1, "the two RUNs overlap: {sp:?}");
    let (_, ev) = env.solve_with(&mk("2").def, false, 1, Platform::host(), &AtomicBool::new(false)).unwrap();
    let sp = spans(&ev);
    assert!(sp[0].1 <= sp[1].0 || sp[1].1 <= sp[0].0, "--jobs 1 serialises them: {sp:?}");
}

#[test]
fn cancellation_stops_a_running_process() {
    let env = Env::new("cancel");
    let mut g = G::new();
    let b = scratch_with_file(&mut g);
    let r = g.run(b, "sleep 30");
    g.out(r);
    let cancel = AtomicBool::new(false);
    let start = std::time::Instant::now();
    let err = std::thread::scope(|s| {
        s.spawn(|| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        env.solve_with(&g.def, false, 2, Platform::host(), &cancel).unwrap_err()
    });
    assert!(matches!(err, SolveError::Cancelled), "{err}");
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(env.dir.to_str().unwrap()), "no mounts left");
}

#[test]
fn run_for_a_platform_without_an_emulator_fails_clearly() {
    let env = Env::new("platform");
    let mut g = G::new();
    let b = scratch_with_file(&mut g);
    let r = g.run(b, "true");
    g.out(r);
    // An Exec without a platform (an older Definition) runs for the output's platform.
    let other = Platform::new("linux", "sparc64", "");
    g.def.outputs[0].platform = other.clone();
    let err = env.solve_with(&g.def, false, 1, other, &AtomicBool::new(false)).unwrap_err().to_string();
    assert!(err.contains("cannot run processes for platform `linux/sparc64`"), "{err}");
}

#[test]
fn stale_mountpoints_of_dead_processes_are_removed() {
    let dir = tmp("stale");
    // pid 0 never names a live process in /proc; our own pid is alive.
    fs::create_dir_all(dir.join("0-1")).unwrap();
    let mine = format!("{}-1", std::process::id());
    fs::create_dir_all(dir.join(&mine)).unwrap();
    clean_stale_mountpoints(&dir);
    assert!(!dir.join("0-1").exists());
    assert!(dir.join(&mine).exists());
    fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn add_unpacks_local_archives_and_wildcards_select_by_name() {
    let env = Env::new("add");
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(2);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_cksum();
    b.append_data(&mut h, "pkg/file", &b"hi"[..]).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &b.into_inner().unwrap()).unwrap();
    fs::write(env.dir.join("ctx/pkg.tgz"), gz.finish().unwrap()).unwrap();
    fs::write(env.dir.join("ctx/one.txt"), "1").unwrap();
    fs::write(env.dir.join("ctx/two.txt"), "2").unwrap();
    let mut g = G::new();
    let ctx =
        g.add(vec![], Op::Source(SourceOp::Local { name: "context".into(), include: vec![], exclude: vec![] }), "");
    let added = g.copy(None, ctx, &["/pkg.tgz"], "/opt/");
    if let Op::File(f) = &mut g.def.vertices.last_mut().unwrap().vertex.op {
        if let FileActionKind::Copy(c) = &mut f.actions[0].kind {
            c.unpack_archive = true;
        }
    }
    let last = g.def.vertices.len() - 1;
    g.def.vertices[last].digest = vertex_digest(&g.def.vertices[last].vertex);
    let added = Input { digest: g.def.vertices[last].digest, index: added.index };
    let txt = g.copy(Some(added), ctx, &["/*.txt"], "/txt/");
    g.out(txt);
    let (s, _) = env.solve(&g.def, false).unwrap();
    assert_eq!(env.read(&s.layers, "/opt/pkg/file").as_deref(), Some("hi"));
    assert_eq!(env.read(&s.layers, "/txt/one.txt").as_deref(), Some("1"));
    assert_eq!(env.read(&s.layers, "/txt/two.txt").as_deref(), Some("2"));
    // A new file matching the wildcard changes the selection: the second step re-runs.
    fs::write(env.dir.join("ctx/three.txt"), "3").unwrap();
    let (again, _) = env.solve(&g.def, false).unwrap();
    assert_eq!((again.executed, again.cached), (1, 1));
    assert_eq!(env.read(&again.layers, "/txt/three.txt").as_deref(), Some("3"));
}

#[test]
fn locked_cache_mounts_serialise_their_users() {
    let env = Env::new("locked");
    let mut g = G::new();
    let b = scratch_with_file(&mut g);
    let mut users = vec![];
    for name in ["x", "y"] {
        let r = g.run(b, &format!("sleep 0.4; echo {name} > $ROOT/{name}"));
        let last = g.def.vertices.len() - 1;
        if let Op::Exec(e) = &mut g.def.vertices[last].vertex.op {
            e.mounts.push(Mount {
                input: None,
                selector: String::new(),
                target: "/cache".into(),
                readonly: false,
                output: None,
                kind: MountKind::Cache {
                    id: "shared-id".into(),
                    sharing: CacheSharing::Locked,
                    mode: 0o755,
                    uid: 0,
                    gid: 0,
                },
            });
        }
        g.def.vertices[last].digest = vertex_digest(&g.def.vertices[last].vertex);
        users.push(Input { digest: g.def.vertices[last].digest, index: r.index });
    }
    let m = g.add(users, Op::Merge(MergeOp {}), "merge");
    g.out(m);
    let (_, ev) = env.solve(&g.def, false).unwrap();
    let mut starts = std::collections::HashMap::new();
    let mut spans = vec![];
    for e in &ev {
        match e {
            progress::Event::Start { id, time, .. } => {
                starts.insert(*id, *time);
            }
            progress::Event::Done { id, time, seconds } if *seconds > 0.3 => spans.push((starts[id], *time)),
            _ => {}
        }
    }
    assert_eq!(spans.len(), 2, "{ev:?}");
    // The second user's process ran after the first released the cache (its step may
    // have started earlier, waiting for the lock: compare ends against durations).
    spans.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap());
    assert!(spans[1].1 - spans[0].1 >= 0.35, "the second finished a full run after the first: {spans:?}");
    assert!(env.dir.join("store/cachemounts").is_dir());
}

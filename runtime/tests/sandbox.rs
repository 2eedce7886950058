//! The real sandbox over real overlayfs, on a busybox root built from Debian's
//! `busybox-static`. `harness = false`: `main` first lets the re-executed helper take
//! over (the sandbox re-runs this binary), then runs each test and reports.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use cairn_ir::NetworkMode;
use cairn_runtime::sandbox;
use cairn_runtime::solve::backend::{Exit, ProcessMount, ProcessMountSource, ProcessSpec};

struct Env {
    dir: PathBuf,
    base: PathBuf,
}

fn busybox() -> Option<PathBuf> {
    ["/bin/busybox", "/usr/bin/busybox"].iter().map(PathBuf::from).find(|p| p.exists())
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("cairn-sbx-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let base = dir.join("base");
        fs::create_dir_all(base.join("bin")).unwrap();
        fs::copy(busybox().expect("busybox-static is installed (.ci/run installs it)"), base.join("bin/busybox"))
            .unwrap();
        for tool in [
            "sh", "true", "echo", "cat", "ls", "id", "sleep", "touch", "rm", "mkdir", "hostname", "pwd", "env", "ip",
            "wc", "grep", "kill", "sort", "test", "stat",
        ] {
            std::os::unix::fs::symlink("busybox", base.join("bin").join(tool)).unwrap();
        }
        fs::create_dir_all(base.join("etc")).unwrap();
        fs::write(base.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n")
            .unwrap();
        fs::write(base.join("etc/group"), "root:x:0:\napp:x:1000:\nstaff:x:50:app\n").unwrap();
        fs::write(base.join("etc/gone.txt"), "delete me").unwrap();
        Env { dir, base }
    }

    fn spec(&self, run: &str, args: &[&str]) -> ProcessSpec {
        let upper = self.dir.join(run).join("upper");
        let work = self.dir.join(run).join("work");
        fs::create_dir_all(&upper).unwrap();
        fs::create_dir_all(&work).unwrap();
        ProcessSpec {
            root_lowers: vec![self.base.clone()],
            root_upper: upper,
            root_work: work,
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into(), "HOME=/root".into()],
            cwd: "/".into(),
            user: String::new(),
            hostname: String::new(),
            network: NetworkMode::Default,
            insecure: false,
            resources: Default::default(),
            mounts: Vec::new(),
            secret_env: Vec::new(),
        }
    }

    fn scratch(&self, spec: &ProcessSpec) -> PathBuf {
        let run = spec.root_upper.parent().unwrap().file_name().unwrap().to_string_lossy().into_owned();
        let s = self.dir.join(format!("scratch-{run}"));
        fs::create_dir_all(&s).unwrap();
        s
    }

    fn try_run(&self, spec: &ProcessSpec) -> std::io::Result<(Exit, String)> {
        let mut out = Vec::new();
        let exit = sandbox::run(spec, &self.scratch(spec), &AtomicBool::new(false), &mut |b| out.extend_from_slice(b))?;
        Ok((exit, String::from_utf8_lossy(&out).into_owned()))
    }

    fn run(&self, spec: &ProcessSpec) -> (Exit, String) {
        self.try_run(spec).unwrap()
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn ok(code: i32) -> Exit {
    Exit { code: Some(code), signal: None }
}

fn sh(cmd: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", cmd]
}

fn output_exit_codes_and_env() {
    let e = Env::new("basic");
    let s = e.spec("a", &sh("echo out; echo err >&2; exit 3"));
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(3));
    assert_eq!(out, "out\nerr\n", "stdout and stderr in one stream, in order");
    // `env` run directly (no shell adding PWD or SHLVL): exactly the spec's environment,
    // plus `HOSTNAME` (and `HOME`, had the spec none) appended as runc does.
    let mut s = e.spec("env", &["env"]);
    s.env.push("EMPTY=".into());
    s.env.push("WITH_EQ=a=b".into());
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0));
    assert_eq!(out, "PATH=/bin\nHOME=/root\nEMPTY=\nWITH_EQ=a=b\nHOSTNAME=cairn\n");
    let s = e.spec("stdin", &sh("cat; echo done"));
    assert_eq!(e.run(&s).1, "done\n", "stdin is /dev/null");
    let s = e.spec("b", &sh("kill -9 $$"));
    assert_eq!(e.run(&s).0, Exit { code: None, signal: Some(9) });
    let s = e.spec("c", &["no-such-tool"]);
    let err = e.try_run(&s).unwrap_err();
    assert!(err.to_string().contains("executable `no-such-tool` not found in the image (PATH=/bin)"), "{err}");
    let s = e.spec("d", &["/bin/nope"]);
    let err = e.try_run(&s).unwrap_err();
    assert!(err.to_string().contains("executable `/bin/nope` not found"), "{err}");
    let mut s = e.spec("e", &["sh", "-c", "exit 0"]);
    s.env = vec!["PATH=/usr/bin:/bin".into()];
    assert_eq!(e.run(&s).0, ok(0), "PATH from the spec's env is searched in order");
}

fn namespaces_hostname_and_pid1() {
    let e = Env::new("ns");
    let mut s = e.spec("a", &sh("echo pid=$$; hostname; ls /dev; ls /proc | grep -c '^[0-9]'"));
    s.hostname = "buildhost".into();
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    // PID 1 is cairn's init, the command is PID 2; nothing else of the host is visible.
    assert!(out.contains("pid=2\n"), "{out}");
    assert!(out.trim_end().ends_with("\n3") || out.trim_end().ends_with("\n4"), "few processes: {out}");
    assert!(out.contains("buildhost\n"), "{out}");
    assert!(out.contains("null") && out.contains("urandom"), "{out}");
    let mut s = e.spec("b", &sh("ip link show | grep -c '^[0-9]'; ip link show lo | grep -c UP"));
    s.network = NetworkMode::None;
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["1", "1"], "only lo, and it is up: {out}");
}

fn writes_land_in_upper_mountpoints_do_not() {
    let e = Env::new("upper");
    let s = e.spec("a", &sh("echo hi > /new.txt; rm /etc/gone.txt; cat /etc/hosts > /dev/null && test -e /etc/resolv.conf && ls /proc/self >/dev/null"));
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    let up = &s.root_upper;
    assert_eq!(fs::read_to_string(up.join("new.txt")).unwrap(), "hi\n");
    let wh = fs::symlink_metadata(up.join("etc/gone.txt")).unwrap();
    assert!(wh.file_type().is_char_device() && wh.rdev() == 0, "deletion is a whiteout");
    for leaked in ["etc/hosts", "etc/resolv.conf", "proc", "dev"] {
        assert!(!up.join(leaked).exists(), "{leaked} leaked into the upper");
    }
    // A root without /etc: the /etc created for the mount points must vanish again.
    let e2 = Env::new("noetc");
    fs::remove_dir_all(e2.base.join("etc")).unwrap();
    let s = e2.spec("a", &sh("test -e /etc/hosts && echo yes > /marker"));
    let (exit, out) = e2.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    let names: Vec<String> =
        fs::read_dir(&s.root_upper).unwrap().map(|d| d.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, vec!["marker"], "only the command's own file");
}

/// Secrets: the file is on a tmpfs only the step sees, read-only, with its mode and owner;
/// the env secret replaces a same-named variable; nothing reaches the upper or the scratch
/// directory on disk.
fn secrets_stay_in_memory() {
    let e = Env::new("secrets");
    let value = "s3cret-bytes-for-the-sandbox";
    let mut s = e.spec(
        "a",
        &sh("cat /run/secrets/tok; echo; stat -f -c %T /run/secrets/tok; stat -c '%a %u %g' /run/secrets/tok; (echo x >> /run/secrets/tok) 2>/dev/null || echo read-only; echo \"[$TOKEN]\""),
    );
    s.env.push("TOKEN=shadowed".into());
    let data = cairn_runtime::solve::secrets::SecretBytes(value.as_bytes().to_vec());
    s.mounts.push(ProcessMount {
        target: "/run/secrets/tok".into(),
        readonly: true,
        source: ProcessMountSource::Secret { data: data.clone(), mode: 0o440, uid: 1000, gid: 50 },
    });
    s.secret_env.push(("TOKEN".into(), data));
    let scratch = e.scratch(&s);
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], value, "{out}");
    assert_eq!(lines[1], "tmpfs", "{out}");
    assert_eq!(lines[2], "440 1000 50", "{out}");
    assert_eq!(lines[3], "read-only", "{out}");
    assert_eq!(lines[4], format!("[{value}]"), "{out}");
    assert!(!s.root_upper.join("run").exists(), "the secret's mount point leaked into the upper");
    let mut stack = vec![scratch, s.root_upper.clone()];
    while let Some(d) = stack.pop() {
        for ent in fs::read_dir(&d).unwrap().flatten() {
            let p = ent.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = fs::read(&p) {
                assert!(!b.windows(value.len()).any(|w| w == value.as_bytes()), "secret on disk at {}", p.display());
            }
        }
    }
}

fn user_cwd_and_mounts() {
    let e = Env::new("user");
    let mut s = e.spec("a", &sh("id -u; id -g; id -G; pwd"));
    s.user = "app".into();
    s.cwd = "/work/dir".into();
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    assert_eq!(out.lines().collect::<Vec<_>>(), vec!["1000", "1000", "1000 50", "/work/dir"]);
    let cwd = fs::metadata(s.root_upper.join("work/dir")).unwrap();
    assert_eq!(cwd.uid(), 0, "the working directory is created by root");
    let mut s = e.spec("b", &sh("id -u; id -g"));
    s.user = "4242:4343".into();
    assert_eq!(e.run(&s).1, "4242\n4343\n");
    let mut s = e.spec("c", &["id"]);
    s.user = "ghost".into();
    let err = e.try_run(&s).unwrap_err();
    assert!(err.to_string().contains("unable to find user `ghost`"), "{err}");
    // Read-only bind, tmpfs, and a writable overlay whose writes go to its own upper.
    let data = e.dir.join("data");
    fs::create_dir_all(&data).unwrap();
    fs::write(data.join("f"), "bound").unwrap();
    let (mu, mw) = (e.dir.join("mu"), e.dir.join("mw"));
    fs::create_dir_all(&mu).unwrap();
    fs::create_dir_all(&mw).unwrap();
    let mut s = e.spec("d", &sh("cat /mnt/data/f; echo; touch /mnt/data/x 2>/dev/null && echo writable || echo readonly; touch /tmp/t && echo tmp-ok; echo c > /cache/c"));
    s.mounts = vec![
        ProcessMount { target: "/mnt/data".into(), readonly: true, source: ProcessMountSource::Bind(data.clone()) },
        ProcessMount { target: "/tmp".into(), readonly: false, source: ProcessMountSource::Tmpfs { size: 1 << 20 } },
        ProcessMount {
            target: "/cache".into(),
            readonly: false,
            source: ProcessMountSource::Overlay { lowers: vec![], upper: Some((mu.clone(), mw.clone())) },
        },
    ];
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    assert_eq!(out, "bound\nreadonly\ntmp-ok\n");
    assert_eq!(fs::read_to_string(mu.join("c")).unwrap(), "c\n");
    for p in ["mnt", "tmp", "cache"] {
        assert!(!s.root_upper.join(p).exists(), "mount point /{p} leaked");
    }
    // A read-only tmpfs; a target escaping the root is refused before anything runs.
    let mut s = e.spec("e", &sh("touch /ro/x 2>/dev/null && echo writable || echo readonly"));
    s.mounts =
        vec![ProcessMount { target: "/ro".into(), readonly: true, source: ProcessMountSource::Tmpfs { size: 0 } }];
    assert_eq!(e.run(&s).1, "readonly\n");
    let mut s = e.spec("f", &["true"]);
    s.mounts = vec![ProcessMount {
        target: "/../../escape".into(),
        readonly: false,
        source: ProcessMountSource::Tmpfs { size: 0 },
    }];
    let err = e.try_run(&s).unwrap_err();
    assert!(err.to_string().contains("without `..`"), "{err}");
    let mut s = e.spec("g", &["true"]);
    let missing = e.dir.join("missing-src");
    s.mounts =
        vec![ProcessMount { target: "/m".into(), readonly: false, source: ProcessMountSource::Bind(missing.clone()) }];
    let err = e.try_run(&s).unwrap_err();
    assert!(err.to_string().contains(&missing.display().to_string()), "a failed mount names its source: {err}");
    assert!(!s.root_upper.join("m").exists(), "no mount point left after a setup failure");
}

fn cancellation_kills_everything() {
    let e = Env::new("cancel");
    let s = e.spec("a", &sh("sleep 100 & sleep 100; echo never"));
    let scratch = e.scratch(&s);
    let cancel = AtomicBool::new(false);
    let start = Instant::now();
    let exit = std::thread::scope(|sc| {
        sc.spawn(|| {
            std::thread::sleep(Duration::from_millis(300));
            cancel.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        sandbox::run(&s, &scratch, &cancel, &mut |_| {}).unwrap()
    });
    assert_eq!(exit.signal, Some(9));
    assert!(start.elapsed() < Duration::from_secs(20), "cancellation is prompt");
    std::thread::sleep(Duration::from_millis(300));
    let sleeping = fs::read_dir("/proc")
        .unwrap()
        .filter_map(|d| fs::read(d.unwrap().path().join("cmdline")).ok())
        .filter(|c| c.starts_with(b"sleep\x00100"))
        .count();
    assert_eq!(sleeping, 0, "no sleep survives");
    let mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!mounts.contains(&scratch.display().to_string()), "no mount survives");
    // The helper cleaned up after the kill: no mount point reached the upper.
    for leaked in ["etc/hosts", "etc/resolv.conf", "proc", "dev"] {
        assert!(!s.root_upper.join(leaked).exists(), "{leaked} leaked into the upper after cancellation");
    }
}

fn many_lowers() {
    let e = Env::new("lowers");
    let mut s = e.spec("a", &sh("cat /l/*.txt | wc -l"));
    // Long names: the plain lowerdir list (~9 KiB) exceeds the kernel's one page.
    for i in 0..100 {
        let l = e.dir.join(format!("layer-{i:03}-{}", "y".repeat(60)));
        fs::create_dir_all(l.join("l")).unwrap();
        fs::write(l.join(format!("l/{i}.txt")), format!("{i}\n")).unwrap();
        fs::set_permissions(&l, fs::Permissions::from_mode(0o755)).unwrap();
        s.root_lowers.push(l);
    }
    let (exit, out) = e.run(&s);
    assert_eq!(exit, ok(0), "{out}");
    assert_eq!(out.trim(), "100");
}

fn main() {
    sandbox::maybe_run_helper();
    if let Err(e) = sandbox::check_support() {
        eprintln!("sandbox tests need root and overlayfs: {e}");
        std::process::exit(1);
    }
    if busybox().is_none() {
        eprintln!(
            "sandbox tests need Debian's busybox-static (`apt-get install -y busybox-static`; .ci/run installs it)"
        );
        std::process::exit(1);
    }
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let tests: Vec<(&str, fn())> = vec![
        ("output_exit_codes_and_env", output_exit_codes_and_env),
        ("namespaces_hostname_and_pid1", namespaces_hostname_and_pid1),
        ("writes_land_in_upper_mountpoints_do_not", writes_land_in_upper_mountpoints_do_not),
        ("user_cwd_and_mounts", user_cwd_and_mounts),
        ("secrets_stay_in_memory", secrets_stay_in_memory),
        ("cancellation_kills_everything", cancellation_kills_everything),
        ("many_lowers", many_lowers),
    ];
    let mut failed = 0;
    for (name, f) in tests {
        if filter.as_deref().is_some_and(|flt| !name.contains(flt)) {
            continue;
        }
        let r = std::panic::catch_unwind(f);
        println!("test {name} ... {}", if r.is_ok() { "ok" } else { "FAILED" });
        if r.is_err() {
            failed += 1;
        }
    }
    if failed > 0 {
        eprintln!("{failed} sandbox test(s) failed");
        std::process::exit(1);
    }
}

//! `RUN --mount` and RUN's `--network`/`--security` end to end through `cairn build`:
//! secrets (never in the store, an output or the logs), cache mounts (persistent, kept out
//! of images, shown by `du`, removed by `prune --all`), bind mounts from stages, images and
//! the context (read-only, or read-write with writes discarded; keyed on what they select),
//! tmpfs sizes, SSH refusal and network isolation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::build_cli::{build, cairn, counts, executed_steps, setup, stderr, summary, Tmp, BIN};

/// `cairn build` with extra environment variables (for `--secret env=`) and a progress mode.
fn build_with_env(t: &Tmp, progress: &str, extra: &[&str], envs: &[(&str, &str)]) -> (Output, Value) {
    let mut args = vec!["build", "--progress", progress];
    args.extend_from_slice(extra);
    let ctx = t.path("ctx");
    args.push(ctx.to_str().unwrap());
    let mut cmd = Command::new(BIN);
    cmd.args(&args).env("CAIRN_ROOT", t.path("store")).stdin(Stdio::null());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let o = cmd.output().expect("run cairn");
    let s = summary(&o);
    (o, s)
}

fn read(p: PathBuf) -> String {
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", p.display()))
}

fn sha256_hex(data: &str) -> String {
    let p = std::env::temp_dir().join(format!("cairn-it-sha-{}-{}", std::process::id(), data.len()));
    std::fs::write(&p, data).unwrap();
    let o = Command::new("sha256sum").arg(&p).output().unwrap();
    let _ = std::fs::remove_file(&p);
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_string()
}

/// Every place under `dir` (recursively; gzip files also decompressed) where `needle`
/// occurs.
fn find_bytes(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    let mut files = 0;
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else { continue };
        if md.is_dir() {
            for e in std::fs::read_dir(&p).unwrap().flatten() {
                stack.push(e.path());
            }
            continue;
        }
        if !md.is_file() {
            continue;
        }
        files += 1;
        let Ok(bytes) = std::fs::read(&p) else { continue };
        let contains = |b: &[u8]| b.windows(needle.len()).any(|w| w == needle);
        if contains(&bytes) {
            hits.push(p.clone());
        }
        if bytes.starts_with(&[0x1f, 0x8b]) {
            let o = Command::new("gzip").arg("-dc").arg(&p).output().unwrap();
            assert!(o.status.success() || !o.stdout.is_empty(), "gzip -dc {}", p.display());
            if contains(&o.stdout) {
                hits.push(p.clone());
            }
        }
    }
    assert!(files > 0, "nothing to search in `{}`", dir.display());
    hits
}

/// Unpacks a tar file into `dest` with the system tar.
fn untar(tar: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let o = Command::new("tar").arg("-xf").arg(tar).arg("-C").arg(dest).output().unwrap();
    assert!(o.status.success(), "tar -xf {}: {}", tar.display(), String::from_utf8_lossy(&o.stderr));
}

#[test]
fn secrets_reach_the_step_but_never_the_store_outputs_keys_or_logs() {
    let t = setup("secrets");
    let file_secret = format!("file-secret-{}-QX7", std::process::id());
    let env_secret = format!("env-secret-{}-ZW9", std::process::id());
    t.write("secret.txt", &file_secret);
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\n\
RUN --mount=type=secret,id=filesec sha256sum /run/secrets/filesec | cut -d' ' -f1 > /file.sha && stat -c '%a %u %g' /run/secrets/filesec > /file.stat && stat -f -c %T /run/secrets/filesec > /file.fs\n\
RUN --mount=type=secret,id=envsec,env=TOKEN,required=true printf %s \"$TOKEN\" | sha256sum | cut -d' ' -f1 > /env.sha && if test -e /run/secrets/envsec; then echo mounted; else echo env-only; fi > /env.where\n\
RUN --mount=type=secret,id=filesec,target=/etc/app/key,mode=0440,uid=1000,gid=1000 stat -c '%a %u %g' /etc/app/key > /custom.stat && sha256sum /etc/app/key | cut -d' ' -f1 > /custom.sha && (echo x >> /etc/app/key 2>/dev/null && echo writable || echo read-only) > /custom.ro\n\
RUN --mount=type=secret,id=absent (ls /run/secrets 2>/dev/null || echo nothing) > /absent.txt\n\
RUN echo \"TOKEN=[$TOKEN]\" > /later.env\n",
    );
    let secret_path = t.path("secret.txt");
    let file_flag = format!("id=filesec,src={}", secret_path.display());
    let outs = t.path("out");
    std::fs::create_dir_all(&outs).unwrap();
    let oci_tar = outs.join("image.oci.tar");
    let docker_tar = outs.join("image.docker.tar");
    let rootfs_tar = outs.join("rootfs.tar");
    let rootfs = outs.join("rootfs");
    let envs = [("CAIRN_IT_TOKEN", env_secret.as_str())];
    let (o, s) = build_with_env(
        &t,
        "rawjson",
        &[
            "--secret",
            &file_flag,
            "--secret",
            "id=envsec,env=CAIRN_IT_TOKEN",
            "-t",
            "secrets:1",
            "-o",
            &format!("type=oci,dest={}", oci_tar.display()),
            "-o",
            &format!("type=oci,dest={},tar=false", outs.join("layout").display()),
            "-o",
            &format!("type=docker,dest={}", docker_tar.display()),
            "-o",
            &format!("type=tar,dest={}", rootfs_tar.display()),
            "-o",
            &format!("type=local,dest={}", rootfs.display()),
        ],
        &envs,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s), (5, 0), "{s}");
    // The steps saw the right bytes, with the mount's mode and owner.
    assert_eq!(read(rootfs.join("file.sha")).trim(), sha256_hex(&file_secret));
    assert_eq!(read(rootfs.join("file.stat")).trim(), "400 0 0");
    assert_eq!(read(rootfs.join("file.fs")).trim(), "tmpfs", "the secret file lives in memory");
    assert_eq!(read(rootfs.join("env.sha")).trim(), sha256_hex(&env_secret));
    assert_eq!(read(rootfs.join("env.where")).trim(), "env-only");
    assert_eq!(read(rootfs.join("custom.sha")).trim(), sha256_hex(&file_secret));
    assert_eq!(read(rootfs.join("custom.stat")).trim(), "440 1000 1000");
    assert_eq!(read(rootfs.join("custom.ro")).trim(), "read-only");
    assert_eq!(read(rootfs.join("absent.txt")).trim(), "nothing", "a missing optional secret mounts nothing");
    assert_eq!(read(rootfs.join("later.env")).trim(), "TOKEN=[]", "an env secret is for its own step only");
    // Mount points are gone from the image.
    for p in ["run/secrets", "run", "etc/app"] {
        assert!(!rootfs.join(p).exists(), "`/{p}` reached the image");
    }
    // The same build with plain progress (re-run, so every step logs again).
    let (plain, _) = build_with_env(
        &t,
        "plain",
        &["--no-cache", "--secret", &file_flag, "--secret", "id=envsec,env=CAIRN_IT_TOKEN"],
        &envs,
    );
    assert!(plain.status.success(), "{}", stderr(&plain));
    // Never anywhere: the whole store, every output (tars unpacked, gzip decompressed), logs.
    untar(&oci_tar, &outs.join("oci-unpacked"));
    untar(&docker_tar, &outs.join("docker-unpacked"));
    untar(&rootfs_tar, &outs.join("rootfs-unpacked"));
    for value in [&file_secret, &env_secret] {
        let hits = find_bytes(&t.path("store"), value.as_bytes());
        assert!(hits.is_empty(), "secret found in the store: {hits:?}");
        let hits = find_bytes(&outs, value.as_bytes());
        assert!(hits.is_empty(), "secret found in an output: {hits:?}");
        for out in [&o, &plain] {
            let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
            assert!(!String::from_utf8_lossy(&all).contains(value.as_str()), "secret in the progress output");
        }
    }
    // Not part of the cache key: a new value alone keeps every step cached (as BuildKit).
    t.write("secret.txt", "another value");
    let (o, s) =
        build_with_env(&t, "rawjson", &["--secret", &file_flag, "--secret", "id=envsec,env=CAIRN_IT_TOKEN"], &envs);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s), (0, 5), "{s}");
    // A cache hit needs no secret (as in BuildKit): only a step that runs asks for it.
    let (o, s) = build_with_env(&t, "rawjson", &[], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s), (0, 5), "{s}");
    // `type=env` with `src=` naming the variable, and `id` defaulting to the file name.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN --mount=type=secret,id=envsec,required=true --mount=type=secret,id=secret.txt,required=true cat /run/secrets/envsec /run/secrets/secret.txt | sha256sum | cut -d' ' -f1 > /both.sha\n");
    let both = outs.join("both");
    let (o, _) = build_with_env(
        &t,
        "rawjson",
        &[
            "--secret",
            "type=env,id=envsec,src=CAIRN_IT_TOKEN",
            "--secret",
            &format!("src={}", secret_path.display()),
            "-o",
            &format!("type=local,dest={}", both.display()),
        ],
        &envs,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(both.join("both.sha")).trim(), sha256_hex(&format!("{env_secret}another value")));
}

#[test]
fn secret_and_security_errors_name_the_flag_or_the_line() {
    let t = setup("secret-errors");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN true\n");
    let (o, _) = build(&t, &["--secret", "id=x,src=/definitely/not/here"]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("`--secret id=x,src=/definitely/not/here`: cannot read secret file `/definitely/not/here`"),
        "{e}"
    );
    let (o, _) = build(&t, &["--secret", "id=x,colour=red"]);
    assert!(stderr(&o).contains("Unknown field `colour` in `--secret id=x,colour=red`"), "{}", stderr(&o));
    let (o, _) = build(&t, &["--secret", "type=ssh,id=x"]);
    assert!(stderr(&o).contains("Unsupported secret type `ssh`"), "{}", stderr(&o));
    let (o, _) = build_with_env(&t, "rawjson", &["--secret", "id=x,env=CAIRN_IT_UNSET_VAR"], &[]);
    assert!(stderr(&o).contains("environment variable `CAIRN_IT_UNSET_VAR` is not set"), "{}", stderr(&o));

    let cases = [
        ("RUN --mount=type=secret,id=tok,required=true true", "Secret `tok` is required but was not given"),
        ("RUN --mount=type=secret,id=tok,env=TOK,required=true true", "Secret `tok` is required but was not given"),
        (
            "RUN --mount=type=ssh,required=true true",
            "SSH mount `default` is required but no agent was given for it (use `--ssh default`",
        ),
        ("RUN --security=insecure true", "needs the `security.insecure` entitlement: pass `--allow security.insecure`"),
    ];
    for (line, want) in cases {
        t.write("ctx/Dockerfile", &format!("FROM busybox\nRUN echo before > /b\n{line}\n"));
        let (o, _) = build(&t, &[]);
        assert!(!o.status.success(), "{line}");
        let e = stderr(&o);
        assert!(e.contains(want), "{line}: {e}");
        assert!(e.contains("Dockerfile:3"), "{line}: {e}");
    }
    // Not required: an SSH mount is skipped (BuildKit's default is required=false).
    t.write("ctx/Dockerfile", "FROM busybox\nRUN --mount=type=ssh (test -e /run/buildkit/ssh_agent.0 && echo there || echo skipped) > /ssh.txt\nRUN --security=sandbox echo ok > /sec.txt\n");
    let out = t.path("out");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(out.join("ssh.txt")).trim(), "skipped");
    assert_eq!(read(out.join("sec.txt")).trim(), "ok");
}

#[test]
fn cache_mounts_persist_stay_out_of_images_and_prune_all_clears_them() {
    let t = setup("cachemounts");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS seed\nRUN mkdir -p /seed/sub && echo seeded > /seed/sub/s.txt && chmod 0711 /seed\n\
FROM busybox\nARG RUNID\n\
RUN --mount=type=cache,target=/cache,id=c1 echo \"$RUNID\" >> /cache/log && cat /cache/log > /seen && head -c 100000 /dev/zero > /cache/bulk\n\
RUN --mount=type=cache,target=/owned,mode=0750,uid=1000,gid=1000 stat -c '%a %u %g' /owned > /owned.stat && echo $RUNID > /owned/x\n\
RUN --mount=type=cache,target=/fromseed,from=seed,source=/seed,id=seeded cat /fromseed/sub/s.txt > /fromseed.txt && stat -c '%a' /fromseed > /fromseed.mode && echo $RUNID >> /fromseed/sub/s.txt\n\
RUN --mount=type=cache,target=/l,id=c1,sharing=locked --mount=type=cache,target=/p,id=c1,sharing=private cat /l/log > /shared.txt && (cat /p/log 2>/dev/null || echo fresh) >> /shared.txt\n\
RUN --mount=type=cache,target=/x1,id=lk,sharing=locked --mount=type=cache,target=/x2,id=lk,sharing=locked touch /x1/a && test -e /x2/a\n\
RUN --mount=type=cache,target=/cache,id=c1,ro (touch /cache/ro 2>/dev/null && echo writable || echo read-only) > /ro.txt\n",
    );
    let out = |n: &str| t.path(&format!("out{n}"));
    let b = |runid: &str| {
        let (o, _) = build(
            &t,
            &["--build-arg", &format!("RUNID={runid}"), "-o", &format!("type=local,dest={}", out(runid).display())],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    };
    b("1");
    let r1 = out("1");
    assert_eq!(read(r1.join("seen")), "1\n");
    assert_eq!(read(r1.join("owned.stat")).trim(), "750 1000 1000");
    assert_eq!(read(r1.join("fromseed.txt")).trim(), "seeded", "from= initialises the cache");
    assert_eq!(read(r1.join("fromseed.mode")).trim(), "711", "the cache root is the source directory");
    assert_eq!(read(r1.join("shared.txt")), "1\nfresh\n", "a private mount whose id is busy gets a fresh one");
    assert_eq!(read(r1.join("ro.txt")).trim(), "read-only");
    for p in ["cache", "owned", "fromseed", "l", "p"] {
        assert!(!r1.join(p).exists(), "cache mount `/{p}` reached the image");
    }
    b("2");
    let r2 = out("2");
    assert_eq!(read(r2.join("seen")), "1\n2\n", "a cache mount persists across builds");
    assert_eq!(read(r2.join("fromseed.txt")).trim(), "seeded\n1".trim(), "from= only seeds a new cache");
    // `du` shows the cache mounts; `prune --all` removes them.
    let du = cairn(&t, &["du"]);
    let text = String::from_utf8_lossy(&du.stdout).into_owned();
    let line = text.lines().find(|l| l.starts_with("Cache mounts")).unwrap_or_else(|| panic!("{text}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[2], "4", "{text}");
    assert!(fields[3].ends_with("kB") && fields[3] != "0B", "{text}");
    let pr = cairn(&t, &["prune", "--all"]);
    assert!(pr.status.success(), "{}", stderr(&pr));
    assert!(String::from_utf8_lossy(&pr.stdout).contains("4 cache mounts"), "{}", String::from_utf8_lossy(&pr.stdout));
    let du = cairn(&t, &["du"]);
    let text = String::from_utf8_lossy(&du.stdout).into_owned();
    assert!(text.lines().any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Cache", "mounts", "0", "0B"]), "{text}");
    // What a killed build leaves (a half-made cache, a private copy) goes with the next build.
    let cm = t.path("store/cachemounts");
    for stale in [".tmp-abc-4194999-1", "abc-4194999-2"] {
        std::fs::create_dir_all(cm.join(stale).join("sub")).unwrap();
    }
    b("3");
    assert_eq!(read(out("3").join("seen")), "3\n", "pruned caches start empty");
    for stale in [".tmp-abc-4194999-1", "abc-4194999-2"] {
        assert!(!cm.join(stale).exists(), "`{stale}` was left behind");
    }
}

#[test]
fn bind_mounts_from_stage_image_and_context_are_read_only_or_discard_writes() {
    let t = setup("binds");
    t.write("ctx/data/bound.txt", "bound v1\n");
    t.write("ctx/other.txt", "unrelated v1\n");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS stage\nRUN mkdir /out && echo from-stage > /out/s.txt\n\
FROM busybox\n\
RUN --mount=type=bind,from=stage,source=/out,target=/m cat /m/s.txt > /stage.txt\n\
RUN --mount=type=bind,from=stage,source=/out/s.txt,target=/one.txt cat /one.txt > /stagefile.txt\n\
RUN --mount=type=bind,from=busybox,source=/bin,target=/bb test -x /bb/busybox && echo image-ok > /image.txt\n\
RUN --mount=type=bind,source=data/bound.txt,target=/b.txt cat /b.txt > /ctx.txt\n\
RUN --mount=type=bind,source=data,target=/d (touch /d/new 2>/dev/null && echo writable || echo read-only) > /ro.txt\n\
RUN --mount=type=bind,source=data,target=/d,rw echo scribble > /d/bound.txt && echo new > /d/new && cat /d/bound.txt > /rw.txt\n\
RUN --mount=type=bind,source=data/bound.txt,target=/f.txt,rw echo over > /f.txt && cat /f.txt > /rwfile.txt\n\
RUN --mount=type=bind,from=stage,source=/out,target=/m,rw echo changed > /m/s.txt && cat /m/s.txt > /rwstage.txt\n\
RUN --mount=type=bind,from=stage,source=/out,target=/m cat /m/s.txt /d/bound.txt > /after.txt 2>&1 || true\n",
    );
    let out = t.path("out");
    let (o, s) = build(&t, &["-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s).0, 10, "{s}");
    assert_eq!(read(out.join("stage.txt")).trim(), "from-stage");
    assert_eq!(read(out.join("stagefile.txt")).trim(), "from-stage");
    assert_eq!(read(out.join("image.txt")).trim(), "image-ok");
    assert_eq!(read(out.join("ctx.txt")).trim(), "bound v1");
    assert_eq!(read(out.join("ro.txt")).trim(), "read-only");
    assert_eq!(read(out.join("rw.txt")).trim(), "scribble");
    assert_eq!(read(out.join("rwfile.txt")).trim(), "over");
    assert_eq!(read(out.join("rwstage.txt")).trim(), "changed");
    let after = read(out.join("after.txt"));
    assert!(after.starts_with("from-stage\n"), "writes to a rw bind are not seen by the next step: {after}");
    assert!(after.contains("No such file"), "the previous mount point is gone: {after}");
    for p in ["m", "d", "b.txt", "f.txt", "one.txt", "bb"] {
        assert!(!out.join(p).exists(), "mount point `/{p}` reached the image");
    }
    // Writes never reach the context.
    assert_eq!(read(t.path("ctx/data/bound.txt")), "bound v1\n");
    assert!(!t.path("ctx/data/new").exists());
    // Keys: an unrelated context file keeps everything cached; the bound file re-runs
    // exactly the steps that bind it.
    t.write("ctx/other.txt", "unrelated v2\n");
    let (o, s) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s).0, 0, "{s}");
    t.write("ctx/data/bound.txt", "bound v2\n");
    let (o, _) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ran = executed_steps(&o);
    assert!(ran.iter().any(|r| r.contains("target=/b.txt")), "the step binding the file re-runs: {ran:?}");
    for earlier in ["> /stage.txt", "> /stagefile.txt", "> /image.txt"] {
        assert!(!ran.iter().any(|r| r.contains(earlier)), "`{earlier}` stays cached: {ran:?}");
    }
    // `.dockerignore` applies to binds of the context as to COPY: hidden files are not
    // seen, a hidden selection does not exist.
    t.write("ctx/data/private.key", "hidden\n");
    t.write("ctx/data/sub/keep.txt", "kept\n");
    t.write("ctx/data/sub/x.log", "hidden\n");
    std::fs::set_permissions(t.path("ctx/data/sub"), std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    t.write("ctx/.dockerignore", "data/*.key\n**/*.log\n");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN --mount=type=bind,source=data,target=/d find /d | sort > /visible.txt && stat -c %a /d/sub > /sub.mode\n\
RUN --mount=type=bind,source=data,target=/d,rw rm /d/bound.txt && find /d | sort > /rw-visible.txt\n",
    );
    let out2 = t.path("out2");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", out2.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(out2.join("visible.txt")), "/d\n/d/bound.txt\n/d/sub\n/d/sub/keep.txt\n");
    assert_eq!(read(out2.join("sub.mode")).trim(), "700", "directories keep the context's mode");
    assert_eq!(read(out2.join("rw-visible.txt")), "/d\n/d/sub\n/d/sub/keep.txt\n");
    assert!(t.path("ctx/data/bound.txt").exists(), "a rw bind of a filtered context never writes it");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN --mount=type=bind,source=data/private.key,target=/k cat /k\n");
    let (o, _) = build(&t, &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(e.contains("Cannot mount `/data/private.key` at `/k`") && e.contains("Dockerfile:2"), "{e}");
}

#[test]
fn tmpfs_size_is_enforced_and_network_modes_are_honoured() {
    let t = setup("tmpfs-net");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\n\
RUN --mount=type=tmpfs,target=/t,size=1m (dd if=/dev/zero of=/t/big bs=1024 count=2048 2>/dev/null && echo fit || echo full) > /tmpfs.txt && df -k /t | tail -n 1 | awk '{print $2}' > /tmpfs.size && ls -l /t/big | awk '{print $5}' > /tmpfs.bytes\n\
RUN --mount=type=tmpfs,target=/t2 head -c 3000000 /dev/zero > /t2/big && echo unlimited-ok > /tmpfs2.txt\n\
RUN --network=none tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /none.txt\n\
RUN --network=host tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /host.txt\n\
RUN tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort > /default.txt\n",
    );
    let out = t.path("out");
    // Host networking is an entitlement (issue 10), as in buildx.
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", out.display())]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--allow network.host"), "{}", stderr(&o));
    let (o, _) = build(&t, &["--allow", "network.host", "-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(out.join("tmpfs.txt")).trim(), "full", "writing 2 MiB into a 1 MiB tmpfs fails");
    assert_eq!(read(out.join("tmpfs.size")).trim(), "1024");
    assert!(read(out.join("tmpfs.bytes")).trim().parse::<u64>().unwrap() <= 1 << 20);
    assert_eq!(read(out.join("tmpfs2.txt")).trim(), "unlimited-ok");
    assert!(!out.join("t").exists() && !out.join("t2").exists());
    assert_eq!(read(out.join("none.txt")), "lo\n", "--network=none has only loopback");
    let mut host: Vec<String> = read(PathBuf::from("/proc/net/dev"))
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next().map(|n| n.trim().to_string()))
        .collect();
    host.sort();
    let host = host.join("\n") + "\n";
    assert!(host.lines().count() > 1, "this machine has only loopback: cannot tell host networking apart\n{host}");
    assert_eq!(read(out.join("host.txt")), host, "--network=host sees the host's interfaces");
    // The default network is the step's own: loopback and slirp4netns's tap0 (issue 10).
    assert_eq!(read(out.join("default.txt")), "lo\ntap0\n", "the default network is private");
}

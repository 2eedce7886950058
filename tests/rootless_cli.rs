//! Issue 10, rootless builds: the test (root) makes users, one with subordinate ids and one
//! without, and runs the cairn binary as them (`setpriv`). The images are read back with
//! real `tar` and `skopeo`: ownership stays exact although the store's files belong to the
//! user's subordinate ids on disk.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::build_cli::{busybox_archive, stderr, Tmp, BIN};

/// The user with subordinate ids, and the one without.
pub(crate) const SUB_USER: &str = "cairn-rootless";
const SINGLE_USER: &str = "cairn-single";

/// useradd and /etc/sub[ug]id edits, one at a time in this process; `useradd` itself
/// locks /etc/passwd against other processes.
static USERS: Mutex<()> = Mutex::new(());

fn run(cmd: &mut Command) -> Output {
    let o = cmd.output().expect("run a command");
    assert!(o.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&o.stderr));
    o
}

fn id_of(user: &str, flag: &str) -> u32 {
    let o = run(Command::new("id").args([flag, user]));
    String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
}

/// `(first subordinate id, count)` of `user` in `file`.
fn subordinate(file: &str, user: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(file).unwrap_or_default();
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() == 3 && f[0] == user).then(|| (f[1].parse().unwrap(), f[2].parse().unwrap()))
    })
}

/// Makes `user` if missing (idempotent); with 65,536 subordinate ids when `sub`, with none
/// otherwise. Returns its uid.
pub(crate) fn ensure_user(user: &str, sub: bool) -> u32 {
    let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
    let exists = Command::new("id").arg(user).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap().success();
    if !exists {
        // A system account gets no subordinate ids from useradd; homes are per test.
        let mut c = Command::new("useradd");
        c.args(["--system", "--no-create-home", "--shell", "/bin/sh", user]);
        let o = c.output().unwrap();
        // Another test process may have made it meanwhile.
        let now = Command::new("id").arg(user).stdout(Stdio::null()).status().unwrap().success();
        assert!(now, "useradd {user}: {}", String::from_utf8_lossy(&o.stderr));
    }
    let has = subordinate("/etc/subuid", user).is_some() && subordinate("/etc/subgid", user).is_some();
    if sub && !has {
        run(Command::new("usermod").args(["--add-subuids", "400000-465535", "--add-subgids", "400000-465535", user]));
    }
    if !sub && has {
        run(Command::new("usermod").args(["--del-subuids", "1-4294967294", "--del-subgids", "1-4294967294", user]));
    }
    id_of(user, "-u")
}

/// slirp4netns opens /dev/net/tun as the user. Debian's udev makes it 0666; a machine
/// without udev (this VM) leaves the kernel's 0600, which only root can use: give it the
/// mode a standard Debian system has (cairn's error says the same otherwise).
pub(crate) fn tun_for_users() {
    let tun = Path::new("/dev/net/tun");
    if tun.exists() && std::fs::metadata(tun).unwrap().mode() & 0o006 != 0o006 {
        run(Command::new("chmod").args(["0666", "/dev/net/tun"]));
    }
}

/// A test directory owned by `user`, with `home/` as its HOME and busybox's archive in it.
pub(crate) fn user_dir(name: &str, user: &str) -> Tmp {
    let t = Tmp::new(name);
    std::fs::create_dir_all(t.path("home")).unwrap();
    std::fs::copy(busybox_archive(), t.path("busybox.tar")).unwrap();
    run(Command::new("chown").args(["-R", &format!("{user}:"), t.0.to_str().unwrap()]));
    t
}

/// Runs cairn as `user` with a clean environment whose HOME is the test's.
pub(crate) fn cairn_as(user: &str, t: &Tmp, args: &[&str]) -> Output {
    Command::new("setpriv")
        .args(["--reuid", user, "--regid", user, "--init-groups", "--"])
        .arg("env")
        .arg("-i")
        .arg(format!("HOME={}", t.path("home").display()))
        .arg("PATH=/usr/sbin:/usr/bin:/sbin:/bin")
        .arg(BIN)
        .args(args)
        .current_dir(&t.0)
        .stdin(Stdio::null())
        .output()
        .expect("run cairn through setpriv")
}

/// The layer blobs of the (unpacked) OCI layout at `dir`, bottom first.
fn layer_blobs(dir: &Path) -> Vec<std::path::PathBuf> {
    let json =
        |p: std::path::PathBuf| -> serde_json::Value { serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap() };
    let blob = |d: &serde_json::Value| dir.join("blobs/sha256").join(d.as_str().unwrap().trim_start_matches("sha256:"));
    let index = json(dir.join("index.json"));
    let manifest = json(blob(&index["manifests"][0]["digest"]));
    manifest["layers"].as_array().unwrap().iter().map(|l| blob(&l["digest"])).collect()
}

/// Unpacks the OCI archive `oci` into `dir`; returns every layer's `tar tv` listing.
fn layer_listings(oci: &Path, dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    run(Command::new("tar").arg("xf").arg(oci).arg("-C").arg(dir));
    layer_blobs(dir)
        .iter()
        .map(|b| {
            String::from_utf8_lossy(&run(Command::new("tar").arg("tvzf").arg(b).arg("--numeric-owner")).stdout)
                .into_owned()
        })
        .collect()
}

/// The owner column (`uid/gid`) of `path` in a `tar tv` listing.
fn owner<'a>(listing: &'a str, path: &str) -> Option<&'a str> {
    listing.lines().find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (f.len() >= 6 && f[5] == path).then_some(f[1])
    })
}

/// The content of `path` in layer `n` of the layout at `dir`.
fn read_in_layer(dir: &Path, n: usize, path: &str) -> String {
    let o = run(Command::new("tar").arg("xzf").arg(&layer_blobs(dir)[n]).arg("-O").arg(path));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

const DOCKERFILE: &str = r#"FROM busybox
RUN mkdir -p /data/gone /keep /home/app && echo x > /data/gone/a && echo y > /keep/k \
 && echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd && echo "app:x:1000:" >> /etc/group \
 && chown 1000:1000 /home/app
COPY --chown=1000:1000 f.txt /home/app/f.txt
USER app
RUN id > /home/app/id.txt && cat /proc/self/uid_map > /home/app/map.txt && touch /home/app/made-by-app
USER root
ARG N
RUN --mount=type=cache,target=/cache,uid=1000,gid=1000 echo "$N" >> /cache/c && cp /cache/c /cached \
 && stat -c %u:%g /cache > /cache-owner && rm -rf /data/gone && rm -rf /keep && mkdir /keep && echo z > /keep/new
"#;

#[test]
fn issue10_rootless_build_with_subordinate_ids_keeps_exact_ownership() {
    let uid = ensure_user(SUB_USER, true);
    let (sub_start, _) = subordinate("/etc/subuid", SUB_USER).unwrap();
    tun_for_users();
    let t = user_dir("rootless-sub", SUB_USER);
    let o = cairn_as(SUB_USER, &t, &["load", "-i", "busybox.tar"]);
    assert!(o.status.success(), "{}", stderr(&o));
    t.write("ctx/f.txt", "hi\n");
    t.write("ctx/Dockerfile", DOCKERFILE);
    run(Command::new("chown").args(["-R", &format!("{SUB_USER}:"), t.path("ctx").to_str().unwrap()]));
    let mut outs = Vec::new();
    for n in ["1", "2"] {
        let oci = format!("out{n}.tar");
        let o = cairn_as(
            SUB_USER,
            &t,
            &[
                "build",
                "--progress",
                "plain",
                "--build-arg",
                &format!("N={n}"),
                "-o",
                &format!("type=oci,dest={oci}"),
                "ctx",
            ],
        );
        assert!(o.status.success(), "rootless build {n}: {}", stderr(&o));
        outs.push(t.path(&oci));
    }
    // The store is the user's default one, under HOME, owned by the user.
    let store = t.path("home/.local/share/cairn");
    assert_eq!(std::fs::metadata(&store).expect("store under HOME").uid(), uid);
    // skopeo reads the archive the user wrote.
    let si = run(Command::new("skopeo").arg("inspect").arg(format!("oci-archive:{}", outs[1].display())));
    let v: serde_json::Value = serde_json::from_slice(&si.stdout).unwrap();
    assert_eq!(v["Layers"].as_array().unwrap().len(), 6, "busybox 2 + RUN, COPY, RUN, RUN: {v}");
    let dir = t.path("unpacked");
    let layers = layer_listings(&outs[1], &dir);
    let all = layers.join("\n");
    // Exact ownership in the tars: root stays 0, --chown and USER give 1000.
    assert_eq!(owner(&layers[2], "etc/passwd"), Some("0/0"), "{}", layers[2]);
    assert_eq!(owner(&layers[2], "home/app/"), Some("1000/1000"), "{}", layers[2]);
    assert_eq!(owner(&layers[3], "home/app/f.txt"), Some("1000/1000"), "{}", layers[3]);
    assert_eq!(owner(&layers[4], "home/app/made-by-app"), Some("1000/1000"), "{}", layers[4]);
    assert_eq!(owner(&layers[5], "cached"), Some("0/0"), "{}", layers[5]);
    // The whiteout and the opaque directory of the last RUN.
    assert!(layers[5].contains("data/.wh.gone"), "{}", layers[5]);
    assert!(layers[5].contains("keep/.wh..wh..opq") && layers[5].contains("keep/new"), "{}", layers[5]);
    assert!(!all.contains(&format!(" {sub_start}/")), "no subordinate id leaks into a tar:\n{all}");
    // Inside the step: USER app is uid 1000, and the namespace is not the identity map.
    assert_eq!(read_in_layer(&dir, 4, "home/app/id.txt").trim(), "uid=1000(app) gid=1000(app) groups=1000(app)");
    let map: Vec<Vec<u32>> = read_in_layer(&dir, 4, "home/app/map.txt")
        .lines()
        .map(|l| l.split_whitespace().map(|f| f.parse().unwrap()).collect())
        .collect();
    assert_eq!(map, vec![vec![0, uid, 1], vec![1, sub_start, 65536]]);
    // The cache mount persisted across the two builds and has the owner it asked for.
    assert_eq!(read_in_layer(&dir, 5, "cached"), "1\n2\n");
    assert_eq!(read_in_layer(&dir, 5, "cache-owner").trim(), "1000:1000");
    // On disk the layer file belongs to the 1000th subordinate id.
    let found = Command::new("find").arg(&store).args(["-path", "*/home/app/f.txt"]).output().unwrap();
    let on_disk = String::from_utf8_lossy(&found.stdout).lines().next().map(str::to_string).expect("f.txt in a layer");
    let md = std::fs::symlink_metadata(on_disk).unwrap();
    assert_eq!((md.uid(), md.gid()), (sub_start + 999, subordinate("/etc/subgid", SUB_USER).unwrap().0 + 999));
}

#[test]
fn issue10_rootless_without_subordinate_ids_maps_one_id_and_says_what_fails() {
    let uid = ensure_user(SINGLE_USER, false);
    tun_for_users();
    let t = user_dir("rootless-single", SINGLE_USER);
    let o = cairn_as(SINGLE_USER, &t, &["load", "-i", "busybox.tar"]);
    assert!(o.status.success(), "{}", stderr(&o));
    t.write("ctx/f.txt", "hi\n");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN cat /proc/self/uid_map > /map && rm /bin/vi\nCOPY f.txt /f.txt\n");
    t.write("bad/f.txt", "hi\n");
    t.write("bad/Dockerfile", "FROM busybox\nCOPY --chown=1000:1000 f.txt /f.txt\n");
    run(Command::new("chown").args(["-R", &format!("{SINGLE_USER}:"), t.0.to_str().unwrap()]));
    // What only needs root works, and the one warning says what does not.
    let o = cairn_as(SINGLE_USER, &t, &["build", "--progress", "plain", "-o", "type=oci,dest=out.tar", "ctx"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(err.matches("without subordinate ids").count(), 1, "{err}");
    assert!(err.contains("/etc/subuid") && err.contains("COPY --chown"), "{err}");
    let layers = layer_listings(&t.path("out.tar"), &t.path("unpacked"));
    assert_eq!(owner(&layers[3], "f.txt"), Some("0/0"), "{}", layers[3]);
    assert!(layers[2].contains("bin/.wh.vi"), "{}", layers[2]);
    let map = read_in_layer(&t.path("unpacked"), 2, "map");
    assert_eq!(map.split_whitespace().collect::<Vec<_>>(), ["0", &uid.to_string(), "1"]);
    // COPY --chown to another id fails at its step, saying why.
    let o = cairn_as(SINGLE_USER, &t, &["build", "--progress", "plain", "bad"]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(err.contains("Dockerfile:2"), "the failing step is named: {err}");
    assert!(err.contains("cannot chown to 1000:1000") && err.contains("without subordinate ids"), "{err}");
}

/// Gives root a subordinate range if it has none (idempotent), returns its first uid.
fn ensure_root_range() -> u32 {
    let _g = USERS.lock().unwrap_or_else(|e| e.into_inner());
    if subordinate("/etc/subuid", "root").is_none() || subordinate("/etc/subgid", "root").is_none() {
        run(Command::new("usermod").args([
            "--add-subuids",
            "1000000-1065535",
            "--add-subgids",
            "1000000-1065535",
            "root",
        ]));
    }
    subordinate("/etc/subuid", "root").unwrap().0
}

#[test]
fn issue10_userns_auto_as_root_maps_steps_and_keeps_layer_ownership() {
    let base = ensure_root_range();
    let t = crate::build_cli::setup("userns-auto");
    t.write("ctx/f.txt", "hi\n");
    t.write(
        "ctx/Dockerfile",
        r#"FROM busybox
RUN mkdir -p /data/gone /home/app && echo x > /data/gone/a && echo "app:x:1000:1000::/home/app:/bin/sh" >> /etc/passwd \
 && chown 1000:1000 /home/app
COPY --chown=1000:1000 f.txt /home/app/f.txt
USER app
RUN id -u > /home/app/id.txt && echo more >> /home/app/f.txt
USER root
RUN --mount=type=cache,target=/cache,uid=1000 echo c >> /cache/c && stat -c %u /cache > /cache-owner \
 && cat /proc/self/uid_map > /map && echo again >> /etc/passwd && rm -rf /data/gone
"#,
    );
    let o = crate::build_cli::cairn(
        &t,
        &[
            "build",
            "--progress",
            "plain",
            "--userns",
            "auto",
            "-o",
            &format!("type=oci,dest={}", t.path("out.tar").display()),
            t.path("ctx").to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = t.path("unpacked");
    let layers = layer_listings(&t.path("out.tar"), &dir);
    // The step's namespace is not the identity: its root is root's first subordinate id.
    let map: Vec<String> = read_in_layer(&dir, 5, "map").split_whitespace().map(str::to_string).collect();
    assert_eq!(map, ["0", &base.to_string(), "65536"]);
    assert_eq!(read_in_layer(&dir, 4, "home/app/id.txt").trim(), "1000");
    assert_eq!(read_in_layer(&dir, 5, "cache-owner").trim(), "1000");
    // Ownership in the layers is the image's own, also for files copied up and changed.
    assert_eq!(owner(&layers[2], "home/app/"), Some("1000/1000"), "{}", layers[2]);
    assert_eq!(owner(&layers[4], "home/app/f.txt"), Some("1000/1000"), "{}", layers[4]);
    assert_eq!(read_in_layer(&dir, 4, "home/app/f.txt"), "hi\nmore\n");
    assert_eq!(owner(&layers[5], "etc/passwd"), Some("0/0"), "{}", layers[5]);
    assert!(layers[5].contains("data/.wh.gone"), "{}", layers[5]);
    // And on disk: nothing in the store belongs to a subordinate id.
    let found = run(Command::new("find").arg(t.path("store")).arg("-uid").arg(format!("+{}", base - 1)));
    assert!(found.stdout.is_empty(), "files owned by mapped ids: {}", String::from_utf8_lossy(&found.stdout));
}

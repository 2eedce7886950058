//! RUN-step confinement seen from inside a step (issue 10): capabilities, seccomp,
//! no_new_privs, masked and read-only paths, and the probes that must fail; the same
//! probes succeed with `--security=insecure --allow security.insecure`.

use crate::build_cli::{build, setup, stderr};

/// A shell script that records each probe as `name=ok|fail` (or the value read).
const PROBES: &str = r#"set +e
mkdir -p /mnt /tmp
{
grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -d '\t '
p() { n=$1; shift; if "$@" >/dev/null 2>&1; then echo "$n=ok"; else echo "$n=fail"; fi; }
p mount-tmpfs mount -t tmpfs none /mnt
p unshare-mount unshare -m true
p unshare-net unshare -n true
p devtmpfs mount -t devtmpfs none /mnt
p cgroup2 mount -t cgroup2 none /mnt
p sysfs mount -t sysfs none /mnt
p blockdev sh -c 'mknod /tmp/blk b 7 0 && head -c 1 /tmp/blk'
p sysctl-write sh -c 'cat /proc/sys/vm/swappiness > /proc/sys/vm/swappiness'
p sys-write sh -c 'echo x > /sys/kernel/profiling'
echo timer_list=$(wc -l < /proc/timer_list)
echo keys=$(cat /proc/keys | wc -l)
echo firmware=$(ls /sys/firmware | wc -l)
p chown chown 1:1 /tmp
} > /probe.txt 2>&1
"#;

fn probe(name: &str, extra: &[&str], security: &str) -> (std::process::Output, String) {
    let t = setup(name);
    std::fs::create_dir_all(t.path("ctx")).unwrap();
    t.write("ctx/probe.sh", PROBES);
    t.write("ctx/Dockerfile", &format!("FROM busybox\nCOPY probe.sh /probe.sh\nRUN {security} sh /probe.sh\n"));
    let mut args = vec!["-o".to_string(), format!("type=local,dest={}", t.path("rootfs").display())];
    args.extend(extra.iter().map(|s| s.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (o, _) = build(&t, &args);
    let text = std::fs::read_to_string(t.path("rootfs/probe.txt")).unwrap_or_default();
    (o, text)
}

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines().find_map(|l| l.strip_prefix(key)).unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
}

#[test]
fn issue10_default_confinement_from_inside_a_step() {
    let (o, text) = probe("confine-default", &[], "");
    assert!(o.status.success(), "{}", stderr(&o));
    // The 14 default capabilities (Docker's and BuildKit's 0xa80425fb), in every set.
    assert_eq!(line(&text, "CapEff:"), "00000000a80425fb", "{text}");
    assert_eq!(line(&text, "CapPrm:"), "00000000a80425fb", "{text}");
    assert_eq!(line(&text, "CapBnd:"), "00000000a80425fb", "{text}");
    assert_eq!(line(&text, "CapInh:"), "0000000000000000", "{text}");
    assert_eq!(line(&text, "CapAmb:"), "0000000000000000", "{text}");
    assert_eq!(line(&text, "NoNewPrivs:"), "1", "{text}");
    assert_eq!(line(&text, "Seccomp:"), "2", "{text}");
    for p in [
        "mount-tmpfs",
        "unshare-mount",
        "unshare-net",
        "devtmpfs",
        "cgroup2",
        "sysfs",
        "blockdev",
        "sysctl-write",
        "sys-write",
    ] {
        assert_eq!(line(&text, &format!("{p}=")), "fail", "{p} must fail:\n{text}");
    }
    // Masked paths read as empty (the host has 200+ lines in /proc/timer_list).
    assert_eq!(line(&text, "timer_list="), "0", "/proc/timer_list is masked:\n{text}");
    assert_eq!(line(&text, "keys="), "0", "/proc/keys is masked:\n{text}");
    assert_eq!(line(&text, "firmware="), "0", "/sys/firmware is masked:\n{text}");
    assert_eq!(line(&text, "chown="), "ok", "root keeps CAP_CHOWN:\n{text}");
}

#[test]
fn issue10_insecure_needs_the_entitlement_and_then_runs_unconfined() {
    let (o, _) = probe("confine-refused", &[], "--security=insecure");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--allow security.insecure"), "{}", stderr(&o));
    let (o, text) = probe("confine-insecure", &["--allow", "security.insecure"], "--security=insecure");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(line(&text, "Seccomp:"), "0", "{text}");
    assert_eq!(line(&text, "NoNewPrivs:"), "0", "{text}");
    assert_ne!(line(&text, "CapEff:"), "00000000a80425fb", "{text}");
    assert_eq!(line(&text, "mount-tmpfs="), "ok", "{text}");
    assert_eq!(line(&text, "unshare-mount="), "ok", "{text}");
    assert_ne!(line(&text, "timer_list="), "0", "nothing is masked:\n{text}");
}

/// Issue 10: `--ulimit`, `--shm-size`, `--add-host` reach the step; `--pids-limit` bounds
/// its processes (a fork bomb ends with its step and the next step runs); `--memory`
/// bounds its memory (an allocation above it is killed and fails the step).
#[test]
fn issue10_limits_and_host_details_reach_the_step() {
    let t = setup("limits");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nRUN mkdir -p /tmp && (ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1; grep db.local /etc/hosts) > /r 2>&1\n\
RUN (for i in $(seq 1 100); do sleep 20 & done) 2>/tmp/err; grep -ci fork /tmp/err > /forkfail || true\n",
    );
    let out = t.path("rootfs");
    let (o, _) = build(
        &t,
        &[
            "--ulimit",
            "nofile=512:1024",
            "--shm-size",
            "16m",
            "--add-host",
            "db.local:10.1.2.3",
            "--pids-limit",
            "60",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let r = std::fs::read_to_string(out.join("r")).unwrap();
    let lines: Vec<&str> = r.lines().collect();
    assert_eq!(&lines[..2], &["512", "1024"], "{r}");
    assert!(lines[2].split_whitespace().nth(1) == Some("16384"), "/dev/shm is 16 MiB: {r}");
    assert!(lines[3].starts_with("10.1.2.3") && lines[3].contains("db.local"), "{r}");
    let fails: u32 = std::fs::read_to_string(out.join("forkfail")).unwrap().trim().parse().unwrap();
    assert!(fails > 0, "100 processes under a limit of 60 failed to fork some");

    // A fork bomb: its step ends (succeeding or not, as the shell's own forks fare under
    // the limit) and the next build runs normally.
    t.write("ctx/Dockerfile", "FROM busybox\nRUN b() { b | b & }; b; sleep 1\n");
    let (o, _) = build(&t, &["--pids-limit", "60"]);
    assert!(matches!(o.status.code(), Some(0 | 1)), "{}", stderr(&o));
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo after > /after\n");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", t.path("after").display())]);
    assert!(o.status.success(), "{}", stderr(&o));

    t.write("ctx/Dockerfile", "FROM busybox\nRUN dd if=/dev/zero of=/dev/null bs=256M count=1\n");
    let (o, _) = build(&t, &["--memory", "64m"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("killed by signal 9"), "{}", stderr(&o));
}

/// Issue 10: the default network is the step's own (slirp4netns): a service on the host's
/// loopback is out of reach, from 127.0.0.1 and from slirp's gateway alike; with
/// `--network=host` and `--allow network.host` it answers.
#[test]
fn issue10_default_network_cannot_reach_host_loopback_services() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // Answers every connection until the test ends (the listener drops with the process).
        for s in listener.incoming().flatten() {
            let mut s = s;
            let _ = s.write_all(b"host-secret\n");
        }
    });
    drop(server);
    let t = setup("netns");
    t.write(
        "ctx/Dockerfile",
        &format!(
            "FROM busybox\nRUN (nc -w 2 127.0.0.1 {port} </dev/null || echo refused) > /lo.txt; (nc -w 2 10.0.2.2 {port} </dev/null || echo refused) > /gw.txt\n\
RUN --network=host nc -w 2 127.0.0.1 {port} </dev/null > /host.txt\n"
        ),
    );
    let out = t.path("out");
    let (o, _) = build(&t, &["--allow", "network.host", "-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert_eq!(read("lo.txt"), "refused\n");
    assert_eq!(read("gw.txt"), "refused\n");
    assert_eq!(read("host.txt"), "host-secret\n");
}

/// Issue 10: `--ssh ID=KEYFILE` loads the key into an agent cairn starts for the build, and
/// `RUN --mount=type=ssh,id=ID` reaches it through `SSH_AUTH_SOCK` (a static client built
/// from `tests/data/agent-list.c` asks for the identities); a required mount without an
/// agent fails naming the flag; the agent never enters the cache key.
#[test]
fn issue10_ssh_mount_reaches_an_agent() {
    use std::process::Command;
    let t = setup("ssh");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/agent-list.c");
    std::fs::create_dir_all(t.path("ctx")).unwrap();
    let gcc = Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(t.path("ctx/agent-list"))
        .arg(&src)
        .status()
        .expect("gcc (and libc6-dev) build the test's agent client");
    assert!(gcc.success());
    let key = t.path("id_test");
    let kg = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("install Debian's openssh-client");
    assert!(kg.success());
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nCOPY agent-list /agent-list\nRUN --mount=type=ssh,id=deploy,required=true /agent-list > /out.txt\n",
    );
    let out = t.path("rootfs");
    let ssh = format!("deploy={}", key.display());
    let (o, _) = build(&t, &["--ssh", &ssh, "-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("out.txt")).unwrap(), "identities: 1\n");
    assert!(!out.join("run/buildkit").exists(), "the socket's mount point left no trace");
    let (o, _) = build(&t, &["--no-cache"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--ssh deploy"), "{}", stderr(&o));
}

/// Issue 10: the step's agent socket has the mount's `mode`, `uid` and `gid` (default 0600
/// and root, as BuildKit), forwarded to the agent: a `USER` step reaches the agent when the
/// socket is its own and is refused when it is root's.
#[test]
fn issue10_ssh_mount_socket_has_the_mounts_mode_and_owner() {
    use std::process::Command;
    let t = setup("ssh-owner");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/agent-list.c");
    std::fs::create_dir_all(t.path("ctx")).unwrap();
    let gcc = Command::new("gcc").args(["-static", "-O2", "-o"]).arg(t.path("ctx/agent-list")).arg(&src).status();
    assert!(gcc.expect("gcc (and libc6-dev) build the test's agent client").success());
    let key = t.path("id_test");
    let kg = Command::new("ssh-keygen").args(["-q", "-t", "ed25519", "-N", "", "-f"]).arg(&key).status();
    assert!(kg.expect("install Debian's openssh-client").success());
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nCOPY agent-list /agent-list\n\
RUN mkdir -m 777 /out && echo 'app:x:1000:1000::/:/bin/sh' >> /etc/passwd\n\
RUN --mount=type=ssh,id=deploy stat -c '%a %u %g' /run/buildkit/ssh_agent.0 > /out/root-st && /agent-list > /out/root\n\
USER app\n\
RUN --mount=type=ssh,id=deploy,uid=1000,gid=1000,mode=0660 stat -c '%a %u %g' /run/buildkit/ssh_agent.0 > /out/app-st && /agent-list > /out/app\n\
RUN --mount=type=ssh,id=deploy (/agent-list || echo refused) > /out/refused 2>&1\n",
    );
    let out = t.path("rootfs");
    let ssh = format!("deploy={}", key.display());
    let (o, _) = build(&t, &["--ssh", &ssh, "-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |f: &str| std::fs::read_to_string(out.join("out").join(f)).unwrap();
    assert_eq!(read("root-st"), "600 0 0\n");
    assert_eq!(read("root"), "identities: 1\n");
    assert_eq!(read("app-st"), "660 1000 1000\n");
    assert_eq!(read("app"), "identities: 1\n");
    assert!(read("refused").contains("refused"), "{}", read("refused"));
}

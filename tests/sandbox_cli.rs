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

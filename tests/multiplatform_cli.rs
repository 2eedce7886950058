//! Issue 15, multi-platform builds: RUN steps of another platform under QEMU through
//! `binfmt_misc`, the cross-compilation pattern (`FROM --platform=$BUILDPLATFORM`),
//! `--platform a,b` into one OCI image index (checked with skopeo and umoci, and by the
//! ELF machine of the binaries in each platform's layers), push of the index to a real
//! registry, and the warning for a base image of another platform.
//!
//! The arm64 busybox is Debian's `busybox-static:arm64`, downloaded once (`apt-get
//! download` after `dpkg --add-architecture arm64`) and kept under the target directory;
//! QEMU is Debian's `qemu-user-static` (scripts/test.sh installs it). The images are built
//! with cairn itself: the arm64 one's `busybox --install` step is already emulated.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::build_cli::{cairn, executed_steps, setup, stderr, Tmp};
use crate::registry_fixture::Registry;

/// ELF `e_machine` values: x86-64 and AArch64.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// Debian's arm64 busybox binary, downloaded and unpacked once under the target dir.
fn arm64_busybox() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("busybox-static-arm64");
        let bin = dir.join("bin/busybox");
        if !bin.is_file() {
            let script = format!(
                "set -e; dpkg --print-foreign-architectures | grep -qx arm64 || {{ dpkg --add-architecture arm64; apt-get update -qq; }}; \
                 d=$(mktemp -d); cd $d; apt-get download -qq busybox-static:arm64 || {{ apt-get update -qq; apt-get download -qq busybox-static:arm64; }}; \
                 rm -rf {0}; dpkg-deb -x busybox-static_*_arm64.deb {0}; rm -rf $d",
                dir.display()
            );
            let o = Command::new("sh").args(["-c", &script]).output().expect("run sh");
            assert!(
                o.status.success() && bin.is_file(),
                "cannot fetch Debian's busybox-static:arm64 (needs root and the Debian mirror): {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        bin
    })
}

/// The ELF machine of the file at `p`.
fn elf_machine(p: &Path) -> u16 {
    let b = std::fs::read(p).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{} is an ELF file", p.display());
    u16::from_le_bytes([b[18], b[19]])
}

/// `cairn build --progress PROGRESS --platform PLATFORMS EXTRA… t/DIR`.
fn build_for(t: &Tmp, dir: &str, progress: &str, platforms: &str, extra: &[&str]) -> std::process::Output {
    let ctx = t.path(dir);
    let args =
        [&["build", "--progress", progress, "--platform", platforms][..], extra, &[ctx.to_str().unwrap()]].concat();
    cairn(t, &args)
}

fn ok(o: &std::process::Output) -> String {
    assert!(o.status.success(), "{}", stderr(o));
    stderr(o)
}

/// A test store holding `busybox:latest` (amd64, the suite's base) and `busybox:multi`,
/// an index of amd64 and arm64 busybox images, built by cairn from the two binaries.
fn setup_multi(name: &str) -> Tmp {
    let t = setup(name);
    let host_bb = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|p| Path::new(p).exists()).unwrap();
    std::fs::create_dir_all(t.path("bb")).unwrap();
    std::fs::copy(host_bb, t.path("bb/busybox-amd64")).unwrap();
    std::fs::copy(arm64_busybox(), t.path("bb/busybox-arm64")).unwrap();
    t.write(
        "bb/Dockerfile",
        "FROM scratch\nARG TARGETARCH\nCOPY busybox-$TARGETARCH /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCMD [\"sh\"]\n",
    );
    ok(&build_for(&t, "bb", "plain", "linux/amd64,linux/arm64", &["-t", "busybox:multi"]));
    t
}

/// Unpacks the `platform` image of the OCI layout `layout:tag` with skopeo (one platform
/// out of the index) and umoci; returns the bundle's root filesystem.
fn unpack_platform(t: &Tmp, layout: &Path, tag: &str, arch: &str) -> PathBuf {
    let single = t.path(&format!("single-{arch}"));
    let o = Command::new("skopeo")
        .args(["copy", "--override-arch", arch, "--override-os", "linux"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("oci:{}:{tag}", single.display()))
        .output()
        .expect("install skopeo");
    assert!(o.status.success(), "skopeo copy {arch}: {}", String::from_utf8_lossy(&o.stderr));
    let bundle = t.path(&format!("bundle-{arch}"));
    let o = Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:{tag}", single.display()))
        .arg(&bundle)
        .output()
        .expect("install umoci");
    assert!(o.status.success(), "umoci unpack {arch}: {}", String::from_utf8_lossy(&o.stderr));
    bundle.join("rootfs")
}

#[test]
fn issue15_an_arm64_run_step_runs_under_qemu_and_sees_aarch64() {
    let t = setup_multi("mp-arm64-run");
    t.write("ctx/Dockerfile", "FROM busybox:multi\nRUN uname -m > /arch\n");
    let out = t.path("out");
    let o = build_for(&t, "ctx", "plain", "linux/arm64", &["-o", &format!("type=local,dest={}", out.display())]);
    ok(&o);
    assert_eq!(std::fs::read_to_string(out.join("arch")).unwrap(), "aarch64\n");
    assert_eq!(elf_machine(&out.join("bin/busybox")), EM_AARCH64, "the base's arm64 manifest was picked");
    let handler = std::fs::read_to_string("/proc/sys/fs/binfmt_misc/qemu-aarch64").unwrap();
    assert!(handler.starts_with("enabled"), "{handler}");
    assert!(!out.join("usr/libexec/qemu-binfmt").exists(), "nothing of the emulator reaches the output");
}

#[test]
fn issue15_the_cross_compilation_stage_runs_natively_once_for_both_platforms() {
    let t = setup_multi("mp-cross");
    t.write(
        "ctx/Dockerfile",
        "FROM --platform=$BUILDPLATFORM busybox AS build\nRUN uname -m > /built-on\n\
         FROM busybox:multi\nARG TARGETARCH\nCOPY --from=build /built-on /built-on\nRUN echo $TARGETARCH $(uname -m) > /runs-on\n",
    );
    let out = t.path("out");
    let o = build_for(
        &t,
        "ctx",
        "rawjson",
        "linux/amd64,linux/arm64",
        &["-o", &format!("type=local,dest={}", out.display())],
    );
    ok(&o);
    let ran = executed_steps(&o);
    let build_runs = ran.iter().filter(|n| n.contains("uname -m > /built-on")).count();
    assert_eq!(build_runs, 1, "the $BUILDPLATFORM stage is shared by both platforms: {ran:?}");
    assert!(ran.iter().any(|n| n.starts_with("[linux/amd64 build 2/2] RUN uname -m")), "named as BuildKit: {ran:?}");
    for p in ["linux/amd64", "linux/arm64"] {
        let step = format!("[{p} stage-1 3/3] RUN echo $TARGETARCH");
        assert_eq!(ran.iter().filter(|n| n.starts_with(&step)).count(), 1, "{step}: {ran:?}");
    }
    for (dir, runs_on) in [("linux_amd64", "amd64 x86_64\n"), ("linux_arm64", "arm64 aarch64\n")] {
        assert_eq!(std::fs::read_to_string(out.join(dir).join("built-on")).unwrap(), "x86_64\n", "{dir}");
        assert_eq!(std::fs::read_to_string(out.join(dir).join("runs-on")).unwrap(), runs_on, "{dir}");
    }
    // The pattern for one foreign platform: the build stage still runs natively.
    let one = t.path("one");
    let o = build_for(
        &t,
        "ctx",
        "plain",
        "linux/arm64",
        &["--no-cache", "-o", &format!("type=local,dest={}", one.display())],
    );
    ok(&o);
    assert_eq!(std::fs::read_to_string(one.join("built-on")).unwrap(), "x86_64\n");
    assert_eq!(std::fs::read_to_string(one.join("runs-on")).unwrap(), "arm64 aarch64\n");
}

#[test]
fn issue15_two_platforms_give_one_index_that_skopeo_and_umoci_read() {
    let t = setup_multi("mp-index");
    t.write("ctx/Dockerfile", "FROM busybox:multi\nRUN echo hi > /hi\n");
    let layout = t.path("layout");
    let o = build_for(
        &t,
        "ctx",
        "plain",
        "linux/amd64,linux/arm64",
        &["-t", "app:1", "-o", &format!("type=oci,dest={},tar=false", layout.display())],
    );
    ok(&o);
    let raw =
        Command::new("skopeo").arg("inspect").arg("--raw").arg(format!("oci:{}:1", layout.display())).output().unwrap();
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(index["mediaType"], "application/vnd.oci.image.index.v1+json");
    let platforms: Vec<String> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!("{}/{}", m["platform"]["os"].as_str().unwrap(), m["platform"]["architecture"].as_str().unwrap())
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    let ls = Command::new("umoci").args(["ls", "--layout"]).arg(&layout).output().unwrap();
    assert!(ls.status.success() && String::from_utf8_lossy(&ls.stdout).contains('1'), "umoci ls");
    for (arch, machine) in [("amd64", EM_X86_64), ("arm64", EM_AARCH64)] {
        let rootfs = unpack_platform(&t, &layout, "1", arch);
        assert_eq!(elf_machine(&rootfs.join("bin/busybox")), machine, "{arch}'s layers hold {arch} binaries");
        assert_eq!(std::fs::read_to_string(rootfs.join("hi")).unwrap(), "hi\n");
    }
    // The store keeps one tag for the index; `--platform` picks on use.
    let images = String::from_utf8_lossy(&cairn(&t, &["images"]).stdout).to_string();
    assert_eq!(images.lines().filter(|l| l.starts_with("app:1") || l.contains("/app:1")).count(), 1, "{images}");
    t.write("use/Dockerfile", "FROM app:1\nRUN uname -m > /arch\n");
    let used = t.path("used");
    let o = build_for(&t, "use", "plain", "linux/arm64", &["-o", &format!("type=local,dest={}", used.display())]);
    ok(&o);
    assert_eq!(elf_machine(&used.join("bin/busybox")), EM_AARCH64);
    assert_eq!(std::fs::read_to_string(used.join("hi")).unwrap(), "hi\n");
    // So does a base taken from the OCI layout.
    t.write("fromlayout/Dockerfile", "FROM base\nRUN uname -m > /arch\n");
    let from_layout = t.path("from-layout");
    let o = build_for(
        &t,
        "fromlayout",
        "plain",
        "linux/arm64",
        &[
            "--build-context",
            &format!("base=oci-layout://{}:1", layout.display()),
            "-o",
            &format!("type=local,dest={}", from_layout.display()),
        ],
    );
    ok(&o);
    assert_eq!(elf_machine(&from_layout.join("bin/busybox")), EM_AARCH64);
    assert_eq!(std::fs::read_to_string(from_layout.join("arch")).unwrap(), "aarch64\n");
    // `cairn save --platform` picks one platform's image of the index.
    let saved = t.path("arm.tar");
    ok(&cairn(&t, &["save", "--platform", "linux/arm64", "app:1", "-o", saved.to_str().unwrap()]));
    let inspect =
        Command::new("skopeo").arg("inspect").arg(format!("docker-archive:{}", saved.display())).output().unwrap();
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let inspect: serde_json::Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(inspect["Architecture"], "arm64");
    // A docker-archive cannot hold it: a clear error, no file.
    let tar = t.path("app.tar");
    let o = build_for(
        &t,
        "ctx",
        "plain",
        "linux/amd64,linux/arm64",
        &["-o", &format!("type=docker,dest={}", tar.display())],
    );
    assert!(!o.status.success());
    assert!(stderr(&o).contains("multi-platform"), "{}", stderr(&o));
    assert!(!tar.exists());
}

#[test]
fn issue15_push_of_two_platforms_sends_the_index_and_both_manifests() {
    let t = setup_multi("mp-push");
    let reg = Registry::start(&t, "reg", None);
    let h = reg.host.clone();
    t.write("ctx/Dockerfile", "FROM busybox:multi\nRUN echo pushed > /p\n");
    let dest = format!("{h}/team/multi:1");
    let o =
        build_for(&t, "ctx", "plain", "linux/amd64,linux/arm64", &["--insecure-registry", &h, "-t", &dest, "--push"]);
    ok(&o);
    let raw = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(raw.status.success(), "{}", String::from_utf8_lossy(&raw.stderr));
    let index: serde_json::Value = serde_json::from_slice(&raw.stdout).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index}");
    let arm = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--override-arch", "arm64", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(arm.status.success(), "{}", String::from_utf8_lossy(&arm.stderr));
    let arm: serde_json::Value = serde_json::from_slice(&arm.stdout).unwrap();
    assert_eq!(arm["Architecture"], "arm64");
}

#[test]
fn issue15_a_single_platform_base_of_another_platform_warns_and_keeps_its_architecture() {
    let t = setup("mp-mismatch");
    t.write("ctx/Dockerfile", "FROM busybox\nENV A=1\n");
    let layout = t.path("layout");
    let o =
        build_for(&t, "ctx", "plain", "linux/arm64", &["-o", &format!("type=oci,dest={},tar=false", layout.display())]);
    let err = ok(&o);
    let warning = "InvalidBaseImagePlatform: Base image busybox:latest was pulled with platform \"linux/amd64\", expected \"linux/arm64\" for current build";
    assert_eq!(err.matches(warning).count(), 1, "warned once:\n{err}");
    let cfg = Command::new("skopeo")
        .arg("inspect")
        .arg("--config")
        .arg(format!("oci:{}", layout.display()))
        .output()
        .unwrap();
    assert!(cfg.status.success(), "{}", String::from_utf8_lossy(&cfg.stderr));
    let cfg: serde_json::Value = serde_json::from_slice(&cfg.stdout).unwrap();
    assert_eq!(cfg["architecture"], "amd64", "the config says what the binaries are");
}

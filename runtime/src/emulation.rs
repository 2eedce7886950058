//! RUN steps for another platform: QEMU user emulation through the kernel's `binfmt_misc`.
//!
//! cairn runs no emulator itself. The kernel does: a `binfmt_misc` handler named
//! `qemu-<arch>` matches the ELF header of a foreign binary and starts its interpreter
//! (`qemu-<arch>-static`) in its place, inside the step's namespaces, so every process of
//! the step (the shell, what it starts) is emulated without the sandbox knowing. What this
//! module decides is only whether such a handler exists and what the sandbox must show:
//!
//! - A registered handler with the **fix-binary** flag (`F`) had its interpreter opened
//!   when it was registered; it works in any mount namespace, so nothing is mounted.
//! - Without `F` the kernel opens the interpreter by path at every exec, in the step's
//!   root: the interpreter is bind-mounted read-only at that path ([`Emulation::bind`]).
//! - No handler, but Debian's `qemu-user-static` installed (its description in
//!   `/usr/share/binfmts/qemu-<arch>`): as root, cairn registers it itself, with `F`,
//!   from that description (magic and mask come from the package, never from this
//!   file). `binfmt_misc` is mounted first when it is not.
//! - Otherwise a clear error naming the packages to install.
//!
//! Why register rather than always bind-mount: a handler without `F` also needs the
//! interpreter's own dependencies in the step's root (none for the static build, but the
//! path must exist), and a registration with `F` is what `update-binfmts` and
//! `tonistiigi/binfmt` do for containers. Registering changes the machine for every
//! process, which is why only an unregistered handler of an installed package is touched.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use cairn_ir::Platform;

/// Where the kernel's `binfmt_misc` file system lives.
const BINFMT_DIR: &str = "/proc/sys/fs/binfmt_misc";
/// binfmt-support's handler descriptions (Debian's `qemu-user-static` installs them).
const BINFMTS_DESCRIPTIONS: &str = "/usr/share/binfmts";

/// What a step of a foreign platform needs from the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Emulation {
    /// The handler's name (`qemu-aarch64`).
    pub handler: String,
    /// The interpreter path to bind-mount read-only at the same path inside the step's
    /// root, when the handler lacks the fix-binary flag.
    pub bind: Option<PathBuf>,
}

/// Whether this machine runs binaries of `platform` natively (the same platform, or
/// 32-bit x86 on amd64).
pub fn runs_natively(platform: &Platform) -> bool {
    let host = Platform::host();
    if platform.os != host.os {
        return false;
    }
    platform.same_as(&host) || (host.architecture == "amd64" && platform.architecture == "386")
}

/// QEMU's name for the architecture of `platform` (`arm64` → `aarch64`).
pub fn qemu_arch(platform: &Platform) -> Option<&'static str> {
    Some(match platform.architecture.as_str() {
        "amd64" => "x86_64",
        "arm64" => "aarch64",
        "arm" => "arm",
        "386" => "i386",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64le" => "mips64el",
        "mips64" => "mips64",
        "loong64" => "loongarch64",
        _ => return None,
    })
}

/// Makes sure processes of `platform` can run here and says what the sandbox must add.
pub fn prepare(platform: &Platform) -> Result<Emulation, String> {
    let Some(arch) = qemu_arch(platform).filter(|_| platform.os == "linux") else {
        return Err(format!("cairn cannot run processes for platform `{platform}`: no QEMU emulator is known for it"));
    };
    prepare_in(Path::new(BINFMT_DIR), Path::new(BINFMTS_DESCRIPTIONS), platform, arch)
}

/// [`prepare`] with `binfmt_misc` at `dir` and binfmt-support's descriptions in
/// `descriptions`.
fn prepare_in(dir: &Path, descriptions: &Path, platform: &Platform, arch: &str) -> Result<Emulation, String> {
    let handler = format!("qemu-{arch}");
    ensure_mounted(dir, platform)?;
    if let Some(e) = registered(dir, &handler)? {
        return Ok(e);
    }
    let description = descriptions.join(&handler);
    if !description.exists() {
        return Err(missing(platform, &format!("no `binfmt_misc` handler `{handler}` is registered")));
    }
    register(dir, &handler, &description)?;
    registered(dir, &handler)?
        .ok_or_else(|| format!("Registered the `binfmt_misc` handler `{handler}`, but the kernel does not list it"))
}

/// The error for a machine without an emulator, naming the packages to install.
fn missing(platform: &Platform, why: &str) -> String {
    format!(
        "A RUN step for platform `{platform}` needs QEMU user emulation, and {why}: install Debian's \
         `qemu-user-static` and `binfmt-support` (`apt-get install qemu-user-static binfmt-support`)"
    )
}

/// Mounts `binfmt_misc` when it is not (root only).
fn ensure_mounted(dir: &Path, platform: &Platform) -> Result<(), String> {
    if dir.join("register").exists() {
        return Ok(());
    }
    let r = crate::mount::mount("binfmt_misc", dir, "binfmt_misc", 0, None);
    match r {
        Ok(()) if dir.join("register").exists() => Ok(()),
        Ok(()) => Err(missing(platform, &format!("`{}` has no `register` file after mounting it", dir.display()))),
        Err(e) => {
            Err(missing(platform, &format!("`binfmt_misc` is not mounted at `{}` and cannot be: {e}", dir.display())))
        }
    }
}

/// The registered handler `name`, when there is one and it is enabled.
fn registered(dir: &Path, name: &str) -> Result<Option<Emulation>, String> {
    let path = dir.join(name);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("Cannot read `{}`: {e}", path.display())),
    };
    let status = parse_status(&text);
    if !status.enabled {
        return Err(format!(
            "The `binfmt_misc` handler `{name}` is registered but disabled: enable it (`update-binfmts --enable {name}`, or `echo 1 > {}`)",
            path.display()
        ));
    }
    let interpreter = status.interpreter.ok_or_else(|| format!("`{}` names no interpreter", path.display()))?;
    if status.fix_binary {
        return Ok(Some(Emulation { handler: name.to_string(), bind: None }));
    }
    // The kernel opens the interpreter in the step's mount namespace: show it there.
    if !Path::new(&interpreter).exists() {
        return Err(format!(
            "The interpreter `{interpreter}` of the `binfmt_misc` handler `{name}` (registered without the fix-binary flag) is not on this machine"
        ));
    }
    Ok(Some(Emulation { handler: name.to_string(), bind: Some(PathBuf::from(interpreter)) }))
}

/// A handler's state as `/proc/sys/fs/binfmt_misc/<name>` lists it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Status {
    enabled: bool,
    interpreter: Option<String>,
    fix_binary: bool,
}

fn parse_status(text: &str) -> Status {
    let mut s = Status::default();
    for line in text.lines() {
        let line = line.trim();
        if line == "enabled" {
            s.enabled = true;
        } else if let Some(i) = line.strip_prefix("interpreter ") {
            s.interpreter = Some(i.trim().to_string());
        } else if let Some(f) = line.strip_prefix("flags:") {
            s.fix_binary = f.trim().contains('F');
        }
    }
    s
}

/// Registers handler `name` from binfmt-support's description file, with the fix-binary
/// flag. A handler registered meanwhile by someone else (`EEXIST`) is fine.
fn register(dir: &Path, name: &str, description: &Path) -> Result<(), String> {
    let text = fs::read_to_string(description).map_err(|e| format!("Cannot read `{}`: {e}", description.display()))?;
    let line = register_line(name, &text).map_err(|e| format!("`{}`: {e}", description.display()))?;
    let reg = dir.join("register");
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(&reg)
        .map_err(|e| format!("Cannot register the `binfmt_misc` handler `{name}` (open `{}`: {e}); run as root, or run `update-binfmts --enable {name}`", reg.display()))?;
    match f.write_all(line.as_bytes()) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
        Err(e) => Err(format!("Cannot register the `binfmt_misc` handler `{name}`: {e}")),
    }
}

/// The `:name:type:offset:magic:mask:interpreter:flags` line of a binfmt-support
/// description (`package`, `interpreter`, `magic`, `mask`, `offset`, `credentials`,
/// `preserve` lines), with `F` added.
fn register_line(name: &str, description: &str) -> Result<String, String> {
    let field = |key: &str| {
        description.lines().find_map(|l| {
            let (k, v) = l.trim().split_once(char::is_whitespace)?;
            (k == key).then(|| v.trim().to_string())
        })
    };
    let interpreter = field("interpreter").ok_or("no `interpreter` line")?;
    let magic = field("magic").ok_or("no `magic` line (only magic-number handlers are supported)")?;
    let mask = field("mask").unwrap_or_default();
    let offset = field("offset").unwrap_or_else(|| "0".into());
    if !Path::new(&interpreter).exists() {
        return Err(format!("its interpreter `{interpreter}` is not installed"));
    }
    let mut flags = String::from("F");
    if field("preserve").as_deref() == Some("yes") {
        flags.push('P');
    }
    if field("credentials").as_deref() == Some("yes") {
        flags.push('C');
    }
    // The kernel reads `\xNN` escapes in magic and mask itself; `:` may not appear raw.
    if [&magic, &mask, &interpreter].iter().any(|s| s.contains(':')) {
        return Err("a field contains `:`".into());
    }
    Ok(format!(":{name}:M:{offset}:{magic}:{mask}:{interpreter}:{flags}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_are_normalised_and_names_follow_qemu() {
        let p = |s: &str| Platform::parse(s).unwrap();
        assert!(p("linux/arm64").same_as(&p("linux/arm64/v8")));
        assert!(p("linux/arm").same_as(&p("linux/arm/v7")));
        assert!(!p("linux/arm/v6").same_as(&p("linux/arm/v7")));
        assert_eq!(qemu_arch(&p("linux/arm64/v8")), Some("aarch64"));
        assert_eq!(qemu_arch(&p("linux/amd64")), Some("x86_64"));
        assert_eq!(qemu_arch(&p("linux/sparc")), None);
    }

    #[test]
    fn status_files_are_read_as_the_kernel_writes_them() {
        let s = parse_status("enabled\ninterpreter /usr/bin/qemu-aarch64-static\nflags: PF\noffset 0\nmagic 7f45\n");
        assert_eq!(
            s,
            Status { enabled: true, interpreter: Some("/usr/bin/qemu-aarch64-static".into()), fix_binary: true }
        );
        let s = parse_status("disabled\ninterpreter /x\nflags: P\n");
        assert!(!s.enabled && !s.fix_binary);
    }

    /// A directory standing for `binfmt_misc` (its `register` file present, so nothing
    /// is mounted) and one for binfmt-support's descriptions.
    fn dirs(name: &str) -> (PathBuf, PathBuf) {
        let root = std::env::temp_dir().join(format!("cairn-binfmt-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        let (b, d) = (root.join("binfmt"), root.join("binfmts"));
        fs::create_dir_all(&b).unwrap();
        fs::create_dir_all(&d).unwrap();
        fs::write(b.join("register"), "").unwrap();
        (b, d)
    }

    #[test]
    fn a_handler_without_fix_binary_has_its_interpreter_bound_and_with_it_nothing() {
        let arm = Platform::parse("linux/arm64").unwrap();
        let (b, d) = dirs("flags");
        fs::write(b.join("qemu-aarch64"), "enabled\ninterpreter /bin/sh\nflags: P\n").unwrap();
        let e = prepare_in(&b, &d, &arm, "aarch64").unwrap();
        assert_eq!(e.bind, Some(PathBuf::from("/bin/sh")));
        fs::write(b.join("qemu-aarch64"), "enabled\ninterpreter /nonexistent/qemu\nflags: PF\n").unwrap();
        assert_eq!(prepare_in(&b, &d, &arm, "aarch64").unwrap().bind, None, "F: already open, nothing to show");
        fs::write(b.join("qemu-aarch64"), "disabled\ninterpreter /bin/sh\nflags: F\n").unwrap();
        let err = prepare_in(&b, &d, &arm, "aarch64").unwrap_err();
        assert!(
            err.contains("registered but disabled") && err.contains("update-binfmts --enable qemu-aarch64"),
            "{err}"
        );
        let _ = fs::remove_dir_all(b.parent().unwrap());
    }

    #[test]
    fn no_handler_and_no_package_is_an_error_naming_the_packages() {
        let (b, d) = dirs("none");
        let err = prepare_in(&b, &d, &Platform::parse("linux/arm64").unwrap(), "aarch64").unwrap_err();
        assert!(err.contains("platform `linux/arm64` needs QEMU user emulation"), "{err}");
        assert!(err.contains("`qemu-user-static` and `binfmt-support`"), "{err}");
        assert!(err.contains("no `binfmt_misc` handler `qemu-aarch64` is registered"), "{err}");
        let _ = fs::remove_dir_all(b.parent().unwrap());
    }

    #[test]
    fn a_debian_description_becomes_a_register_line_with_fix_binary() {
        let d = "package qemu-user-static\ninterpreter /bin/sh\nmagic \\x7f\\x45\nmask \\xff\\xff\noffset 0\ncredentials no\nfix_binary yes\npreserve yes\n";
        assert_eq!(register_line("qemu-x", d).unwrap(), ":qemu-x:M:0:\\x7f\\x45:\\xff\\xff:/bin/sh:FP");
        assert!(register_line("qemu-x", "interpreter /nonexistent/qemu\nmagic \\x7f\n")
            .unwrap_err()
            .contains("not installed"));
    }
}

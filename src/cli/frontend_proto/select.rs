//! Which frontend builds a file: `--frontend NAME|PATH`, else the file's `# syntax=`
//! directive, else the built-in Dockerfile frontend.
//!
//! A NAME is looked up as the executable `cairn-frontend-NAME` on PATH (as git finds its
//! subcommands), a PATH (absolute, or starting with `./` or `../`) is run as is.
//! References to BuildKit's own Dockerfile frontend (`docker/dockerfile:1`, …) and the name
//! `dockerfile` keep the built-in one. cairn does not run frontend *images*: any other
//! reference is an error that says what was looked for.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::bail;

/// The frontend to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frontend {
    Dockerfile,
    External(PathBuf),
}

/// Where a frontend name came from, for errors and for resolving relative paths.
pub enum Origin<'a> {
    /// `--frontend`: relative paths against the current directory.
    Flag,
    /// `# syntax=` of `file` at `line`: relative paths against the file's directory.
    Directive { file: &'a Path, line: u32 },
}

/// The frontend `value` names.
pub fn resolve(value: &str, origin: &Origin, path_var: Option<&std::ffi::OsStr>) -> anyhow::Result<Frontend> {
    let value = value.trim();
    let what = match origin {
        Origin::Flag => format!("`--frontend {value}`"),
        Origin::Directive { file, line } => format!("`# syntax={value}` ({}:{line})", file.display()),
    };
    if value == "dockerfile" || cairn_compiler::dockerfile::is_dockerfile_frontend(value) {
        return Ok(Frontend::Dockerfile);
    }
    if value.starts_with('/') || value.starts_with("./") || value.starts_with("../") {
        let base = match origin {
            Origin::Flag => PathBuf::new(),
            Origin::Directive { file, .. } => file.parent().map(Path::to_path_buf).unwrap_or_default(),
        };
        let path = base.join(value);
        if !is_executable(&path) {
            bail!("Frontend {what} not found: no executable file at `{}`", path.display());
        }
        return Ok(Frontend::External(path));
    }
    let is_name = !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if !is_name {
        bail!(
            "Frontend {what} not found: cairn runs frontends as executables, not images: a NAME is looked up as \
             `cairn-frontend-NAME` on PATH, and a path starting with `/`, `./` or `../` is run as is"
        );
    }
    let exe = format!("cairn-frontend-{value}");
    let found = path_var.and_then(|p| std::env::split_paths(p).map(|d| d.join(&exe)).find(|p| is_executable(p)));
    match found {
        Some(p) => Ok(Frontend::External(p)),
        None => bail!("Frontend {what} not found: no executable `{exe}` on PATH"),
    }
}

fn is_executable(p: &Path) -> bool {
    p.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `# syntax=` directive of `text` and its line, if it has one (directives are the
/// leading `# key=value` lines, whatever language the rest of the file is in).
pub fn syntax_directive(file: &Path, text: &str) -> anyhow::Result<Option<(String, u32)>> {
    let directives =
        cairn_grammar::directives(&file.display().to_string(), text).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(directives.into_iter().find(|d| d.name == "syntax").map(|d| (d.value, d.span.line)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_the_builtin() {
        let dir = std::env::temp_dir().join(format!("cairn-select-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("cairn-frontend-spec");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let path = Some(dir.as_os_str());
        assert_eq!(resolve("spec", &Origin::Flag, path).unwrap(), Frontend::External(exe.clone()));
        assert_eq!(resolve("docker/dockerfile:1.7", &Origin::Flag, path).unwrap(), Frontend::Dockerfile);
        assert_eq!(resolve("dockerfile", &Origin::Flag, path).unwrap(), Frontend::Dockerfile);
        let file = dir.join("sub/spec.txt");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        let d = Origin::Directive { file: &file, line: 1 };
        assert_eq!(
            resolve("../cairn-frontend-spec", &d, None).unwrap(),
            Frontend::External(dir.join("sub/../cairn-frontend-spec"))
        );
        let e = resolve("nope", &d, path).unwrap_err().to_string();
        assert!(e.contains("no executable `cairn-frontend-nope` on PATH") && e.contains("spec.txt:1"), "{e}");
        let e = resolve("example.com/my/frontend:2", &Origin::Flag, path).unwrap_err().to_string();
        assert!(e.starts_with("Frontend `--frontend example.com/my/frontend:2` not found"), "{e}");
        let e = resolve("./missing", &Origin::Flag, path).unwrap_err().to_string();
        assert!(e.contains("no executable file at `./missing`"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

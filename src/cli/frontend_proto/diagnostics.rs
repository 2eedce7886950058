//! A frontend's diagnostics, shown as cairn shows its own compile errors:
//! `file:line:col: message`, then the source line and a caret under the column.
//!
//! The source line is read only from files the frontend was given (inside the context,
//! or the request's `file`): a diagnostic is not a way to make cairn print other files.

use std::path::Path;

use cairn_ir::protocol::{Diagnostic, Severity};

/// One diagnostic as text (several lines when the source line is shown), its severity
/// said after the location when `label` (errors never say it: they are what fails).
pub fn render(d: &Diagnostic, context: &Path, allowed: &[&Path], label: bool) -> String {
    let label = match d.severity {
        Severity::Warning if label => "warning: ",
        Severity::Info if label => "info: ",
        _ => "",
    };
    let message = d.message.trim_end();
    let Some(file) = &d.file else {
        return format!("{label}{message}");
    };
    let (line, col) = (d.line.filter(|l| *l > 0), d.column.filter(|c| *c > 0));
    let mut out = match (line, col) {
        (Some(l), Some(c)) => format!("{file}:{l}:{c}: {label}{message}"),
        (Some(l), None) => format!("{file}:{l}: {label}{message}"),
        _ => format!("{file}: {label}{message}"),
    };
    if let (Some(l), Some(text)) = (line, source_line(file, line, context, allowed)) {
        let gutter = l.to_string();
        out.push_str(&format!("\n{gutter} | {text}"));
        if let Some(c) = col {
            let pad: String = text.chars().take(c as usize - 1).map(|ch| if ch == '\t' { '\t' } else { ' ' }).collect();
            out.push_str(&format!("\n{} | {pad}^", " ".repeat(gutter.len())));
        }
    }
    out
}

/// Line `line` of `file` (relative to the context, or absolute), when the file is one the
/// frontend was given.
fn source_line(file: &str, line: Option<u32>, context: &Path, allowed: &[&Path]) -> Option<String> {
    let path = context.join(file);
    let real = std::fs::canonicalize(&path).ok()?;
    let inside = std::fs::canonicalize(context).is_ok_and(|c| real.starts_with(c))
        || allowed.iter().any(|a| std::fs::canonicalize(a).is_ok_and(|a| a == real));
    if !inside {
        return None;
    }
    let text = std::fs::read_to_string(real).ok()?;
    text.lines().nth(line? as usize - 1).map(|l| l.trim_end_matches('\r').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diag(file: Option<&str>, line: Option<u32>, column: Option<u32>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            message: "Unknown key `pakages`".into(),
            file: file.map(Into::into),
            line,
            column,
        }
    }

    #[test]
    fn rendered_like_compile_errors() {
        let dir = std::env::temp_dir().join(format!("cairn-diag-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("image.spec"), "base busybox\n  pakages curl\n").unwrap();
        let got = render(&diag(Some("image.spec"), Some(2), Some(3)), &dir, &[], false);
        assert_eq!(got, "image.spec:2:3: Unknown key `pakages`\n2 |   pakages curl\n  |   ^");
        assert_eq!(
            render(&diag(Some("image.spec"), None, None), &dir, &[], false),
            "image.spec: Unknown key `pakages`"
        );
        assert_eq!(render(&diag(None, Some(1), None), &dir, &[], false), "Unknown key `pakages`");
        let warning = Diagnostic { severity: Severity::Warning, ..diag(Some("image.spec"), Some(1), None) };
        assert_eq!(render(&warning, &dir, &[], true), "image.spec:1: warning: Unknown key `pakages`\n1 | base busybox");
        // A file outside the context is named, never shown.
        assert_eq!(
            render(&diag(Some("/etc/passwd"), Some(1), Some(1)), &dir, &[], false),
            "/etc/passwd:1:1: Unknown key `pakages`"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

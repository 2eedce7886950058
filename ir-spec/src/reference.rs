//! Image reference normalization, as Docker does it: `busybox` is
//! `docker.io/library/busybox:latest`, `foo/bar:1` is `docker.io/foo/bar:1`, a first
//! component with a `.` or `:` or equal to `localhost` is a registry host and is kept.
//!
//! Frontends write normalized references into `SourceOp::Image` and runtimes look images up
//! by them, so both sides share this one function.

/// Normalizes `reference`; the error says what is wrong with it in plain words.
pub fn normalize(reference: &str) -> Result<String, String> {
    let r = reference.trim();
    if r.is_empty() {
        return Err("an image reference cannot be empty".into());
    }
    let (name_tag, digest) = match r.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    if let Some(d) = digest {
        let hex = d
            .strip_prefix("sha256:")
            .ok_or_else(|| format!("invalid digest `{d}`: expected `sha256:<64 hex digits>`"))?;
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(format!("invalid digest `{d}`: expected `sha256:<64 hex digits>`"));
        }
    }
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].rfind(':') {
        Some(i) => (&name_tag[..last_slash + i], Some(&name_tag[last_slash + i + 1..])),
        None => (name_tag, None),
    };
    if name.is_empty() {
        return Err(format!("invalid reference `{reference}`: the repository name is empty"));
    }
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            (first.to_string(), rest.to_string())
        }
        Some(_) => ("docker.io".to_string(), name.to_string()),
        None => ("docker.io".to_string(), format!("library/{name}")),
    };
    if domain.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("invalid reference `{reference}`: the registry host must be lowercase"));
    }
    if path.chars().any(|c| c.is_ascii_uppercase()) {
        return Err(format!("invalid reference `{reference}`: the repository name must be lowercase"));
    }
    for comp in path.split('/') {
        let ok = !comp.is_empty()
            && comp.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && comp.as_bytes()[0].is_ascii_alphanumeric()
            && comp.as_bytes()[comp.len() - 1].is_ascii_alphanumeric();
        if !ok {
            return Err(format!(
                "invalid reference `{reference}`: `{comp}` is not a valid repository path component (lowercase letters, digits and `._-` separators)"
            ));
        }
    }
    let tag = match tag {
        Some(t) => {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && (t.as_bytes()[0].is_ascii_alphanumeric() || t.as_bytes()[0] == b'_');
            if !ok {
                return Err(format!("invalid reference `{reference}`: `{t}` is not a valid tag"));
            }
            Some(t)
        }
        None if digest.is_none() => Some("latest"),
        None => None,
    };
    let mut out = format!("{domain}/{path}");
    if let Some(t) = tag {
        out.push(':');
        out.push_str(t);
    }
    if let Some(d) = digest {
        out.push('@');
        out.push_str(d);
    }
    Ok(out)
}

/// The short form users type: `docker.io/library/busybox:latest` → `busybox:latest`.
pub fn familiar(normalized: &str) -> String {
    let s = normalized.strip_prefix("docker.io/").unwrap_or(normalized);
    s.strip_prefix("library/").unwrap_or(s).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_defaults() {
        assert_eq!(normalize("busybox").unwrap(), "docker.io/library/busybox:latest");
        assert_eq!(normalize("busybox:1.36").unwrap(), "docker.io/library/busybox:1.36");
        assert_eq!(normalize("foo/bar:1").unwrap(), "docker.io/foo/bar:1");
        assert_eq!(normalize("docker.io/library/alpine:3.20").unwrap(), "docker.io/library/alpine:3.20");
        assert_eq!(familiar("docker.io/library/busybox:latest"), "busybox:latest");
        assert_eq!(familiar("docker.io/foo/bar:1"), "foo/bar:1");
    }

    #[test]
    fn registries_and_digests() {
        assert_eq!(normalize("localhost:5000/x").unwrap(), "localhost:5000/x:latest");
        assert_eq!(normalize("ghcr.io/o/r:v1").unwrap(), "ghcr.io/o/r:v1");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(normalize(&format!("alpine@{d}")).unwrap(), format!("docker.io/library/alpine@{d}"));
        assert_eq!(normalize(&format!("alpine:3@{d}")).unwrap(), format!("docker.io/library/alpine:3@{d}"));
    }

    #[test]
    fn bad_references() {
        assert!(normalize("").is_err());
        assert!(normalize("Busybox").unwrap_err().contains("lowercase"));
        assert!(normalize("alpine@sha256:zz").unwrap_err().contains("invalid digest"));
        assert!(normalize("alpine:").is_err());
        assert!(normalize("a//b").is_err());
        assert!(normalize("-x").is_err());
    }
}

//! History strings in the shapes BuildKit writes (Go's `%q` of a string slice, Go's map
//! printing), so `docker history` of a cairn image reads like one BuildKit built.

use cairn_ir::Healthcheck;

/// Go's `strconv.Quote` for the common cases (JSON escaping agrees on printable text).
fn go_quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// `fmt.Sprintf("%q", []string{"a", "b"})` → `["a" "b"]`.
pub(crate) fn go_quote_list(v: &[String]) -> String {
    format!("[{}]", v.iter().map(|s| go_quote(s)).collect::<Vec<_>>().join(" "))
}

/// `map[443/tcp:{} 80/tcp:{}]` (Go prints map keys sorted).
pub(crate) fn go_port_map(ports: &[String]) -> String {
    let mut p: Vec<&String> = ports.iter().collect();
    p.sort();
    p.dedup();
    format!("map[{}]", p.iter().map(|s| format!("{s}:{{}}")).collect::<Vec<_>>().join(" "))
}

/// Go's duration printing for whole units: `30s`, `1m30s`, `500ms`, `0s`.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns % 1_000_000_000 != 0 {
        return format!("{}ms", ns as f64 / 1e6);
    }
    let mut s = ns / 1_000_000_000;
    let mut out = String::new();
    if s >= 3600 {
        out.push_str(&format!("{}h", s / 3600));
        s %= 3600;
    }
    if s >= 60 || !out.is_empty() {
        out.push_str(&format!("{}m", s / 60));
        s %= 60;
    }
    out.push_str(&format!("{s}s"));
    out
}

/// `&{["CMD-SHELL" "curl -f x"] "30s" "3s" "0s" "0s" '\x03'}`, as BuildKit's `%q` of the
/// healthcheck struct prints.
pub(crate) fn go_healthcheck(h: &Healthcheck) -> String {
    format!(
        "&{{{} {:?} {:?} {:?} {:?} '\\x{:02x}'}}",
        go_quote_list(&h.test),
        go_duration(h.interval),
        go_duration(h.timeout),
        go_duration(h.start_period),
        go_duration(h.start_interval),
        h.retries
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_shapes() {
        assert_eq!(
            go_quote_list(&["/bin/sh".into(), "-c".into(), "echo \"hi\"".into()]),
            r#"["/bin/sh" "-c" "echo \"hi\""]"#
        );
        assert_eq!(go_port_map(&["80/tcp".into(), "443/tcp".into()]), "map[443/tcp:{} 80/tcp:{}]");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        let h = Healthcheck { test: vec!["NONE".into()], retries: 3, ..Default::default() };
        assert_eq!(go_healthcheck(&h), r#"&{["NONE"] "0s" "0s" "0s" "0s" '\x03'}"#);
    }
}

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

/// Go's `time.Duration.String`: `30s`, `1m30s`, `1h0m0s`, `1.5s`, `100ms`, `2.5µs`, `0s`.
fn go_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    // `whole.frac` with the fraction's trailing zeros dropped.
    let frac = |whole: u64, rest: u64, digits: usize| {
        let f = format!("{rest:0digits$}");
        let f = f.trim_end_matches('0');
        if f.is_empty() {
            whole.to_string()
        } else {
            format!("{whole}.{f}")
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u / 1_000, u % 1_000, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u / 1_000_000, u % 1_000_000, 6));
    }
    let secs = u / 1_000_000_000;
    let s = frac(secs % 60, u % 1_000_000_000, 9);
    let (m, h) = (secs / 60 % 60, secs / 3600);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// `{Test:[CMD-SHELL curl -f x] Interval:30s Timeout:3s StartPeriod:0s StartInterval:0s
/// Retries:3}`, as BuildKit's `%+v` of the healthcheck config prints.
pub(crate) fn go_healthcheck(h: &Healthcheck) -> String {
    format!(
        "{{Test:[{}] Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        h.test.join(" "),
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
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(2_500), "2.5µs");
        assert_eq!(go_duration(7), "7ns");
        assert_eq!(go_duration(3_723_000_000_000), "1h2m3s");
        let h = Healthcheck { test: vec!["NONE".into()], retries: 3, ..Default::default() };
        assert_eq!(
            go_healthcheck(&h),
            "{Test:[NONE] Interval:0s Timeout:0s StartPeriod:0s StartInterval:0s Retries:3}"
        );
        let h = Healthcheck {
            test: vec!["bin".into(), "-c".into(), "exit 0".into()],
            interval: 1_000_000_000,
            timeout: 10_000_000_000,
            start_period: 3_000_000_000,
            start_interval: 100_000_000,
            retries: 5,
        };
        // BuildKit's own test (TestDispatchHealthcheckHistory).
        assert_eq!(
            go_healthcheck(&h),
            "{Test:[bin -c exit 0] Interval:1s Timeout:10s StartPeriod:3s StartInterval:100ms Retries:5}"
        );
    }
}

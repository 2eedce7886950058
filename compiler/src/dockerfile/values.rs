//! Parsers for the values inside arguments and flags: ports, Go durations, sizes. They
//! return [`ValueError`] (what is wrong with the value); the caller adds the place.

use std::fmt;

/// What is wrong with a value, in the house style (the caller points at the place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ValueError(pub String);

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn invalid(message: String) -> ValueError {
    ValueError(message)
}

/// `80`, `80/udp`, `8000-8002/tcp` → `["80/tcp"]`, … (ranges expanded, as Docker does).
pub(super) fn parse_ports(p: &str) -> Result<Vec<String>, ValueError> {
    let (range, proto) = match p.split_once('/') {
        Some((r, pr)) => (r, pr.to_ascii_lowercase()),
        None => (p, "tcp".to_string()),
    };
    if !["tcp", "udp", "sctp"].contains(&proto.as_str()) {
        return Err(invalid(format!("Invalid protocol `{proto}` in `EXPOSE {p}`: expected tcp, udp or sctp")));
    }
    let port = |s: &str| {
        s.parse::<u16>().ok().filter(|n| *n > 0).ok_or_else(|| invalid(format!("Invalid port `{s}` in `EXPOSE {p}`")))
    };
    let (a, b) = match range.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => {
            let n = port(range)?;
            (n, n)
        }
    };
    if b < a {
        return Err(invalid(format!("Invalid port range `{range}` in `EXPOSE {p}`")));
    }
    Ok((a..=b).map(|n| format!("{n}/{proto}")).collect())
}

/// Go's `time.ParseDuration`: `1h2m3.5s`, `300ms`, `0`; nanoseconds.
pub(super) fn parse_duration(s: &str) -> Result<i64, ValueError> {
    if s == "0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid("expected a duration such as `30s` or `1m30s`".into()));
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if num_end == 0 {
            return Err(invalid(format!("invalid duration `{s}`: expected a number before `{rest}`")));
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| invalid(format!("invalid duration `{s}`")))?;
        rest = &rest[num_end..];
        let unit_end = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(invalid(format!("invalid duration `{s}`: missing unit (ns, us, ms, s, m, h)"))),
            u => return Err(invalid(format!("invalid duration `{s}`: unknown unit `{u}`"))),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(total.round() as i64)
}

/// Bytes from `64m`, `1g`, `4096`.
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim().to_ascii_lowercase();
    let (num, mult) = match s.trim_end_matches('b').chars().last()? {
        'k' => (&s[..s.trim_end_matches('b').len() - 1], 1u64 << 10),
        'm' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 20),
        'g' => (&s[..s.trim_end_matches('b').len() - 1], 1 << 30),
        _ => (s.trim_end_matches('b'), 1),
    };
    num.parse::<u64>().ok().map(|n| n * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_like_go() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("300ms").unwrap(), 300_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        assert!(parse_duration("10").unwrap_err().0.contains("missing unit"));
        assert!(parse_duration("3x").unwrap_err().0.contains("unknown unit"));
    }

    #[test]
    fn ports() {
        assert_eq!(parse_ports("80").unwrap(), vec!["80/tcp"]);
        assert_eq!(parse_ports("53/UDP").unwrap(), vec!["53/udp"]);
        assert_eq!(parse_ports("8000-8002").unwrap().len(), 3);
        assert!(parse_ports("http").is_err());
        assert!(parse_ports("80/icmp").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64m"), Some(64 << 20));
        assert_eq!(parse_size("1G"), Some(1 << 30));
        assert_eq!(parse_size("2kb"), Some(2048));
        assert_eq!(parse_size("x"), None);
    }
}

//! Symbolic permission modes (`u+x`, `go-w`, `a=rX`, `g=u`), the syntax of chmod(1) that
//! `CopyAction::mode_str` carries (SPEC.md §7.3).
//!
//! A mode is a comma-separated list of clauses; a clause is any of `u g o a` (none means
//! all), then one or more operations: an operator `+ - =` followed by permission letters
//! `r w x X s t` or by one of `u g o` (the bits that class has at that point). The clauses
//! apply in order. `X` is `x` for a directory or for a file that had an execute bit
//! before the mode was applied. `s` touches the set-id bits of `u` and `g` only, `t` the
//! sticky bit only when the clause names no class or includes `u` or `g` (BSD `setmode`, the
//! semantics BuildKit's Dockerfile frontend uses). An all-digit mode is octal.
//!
//! ```
//! use cairn_ir::chmod::SymbolicMode;
//! let m = SymbolicMode::parse("u=rwX,go=rX").unwrap();
//! assert_eq!(m.apply(0o600, false), 0o644);
//! assert_eq!(m.apply(0o700, true), 0o755);
//! assert_eq!(SymbolicMode::parse("go-w").unwrap().apply(0o777, false), 0o755);
//! ```

use std::fmt;

const SUID: u32 = 0o4000;
const SGID: u32 = 0o2000;
const STICKY: u32 = 0o1000;
const USER: u32 = 0o700 | SUID;
const GROUP: u32 = 0o070 | SGID;
const OTHER: u32 = 0o007;
const ALL: u32 = 0o7777;
/// What `a` names (and a clause without a class): every bit but the sticky one.
const CLASSES: u32 = USER | GROUP | OTHER;

/// What one operation does.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Perm {
    /// Permission letters: `bits` (every class's `r`, `w`, `x`, set-id, sticky) and
    /// whether `X` was among them.
    Bits { bits: u32, cond_x: bool },
    /// `u`, `g` or `o`: the 3 permission bits that class has when the operation runs.
    Copy(u32),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Op {
    /// The classes' bits ([`CLASSES`] when the clause names none).
    who: u32,
    /// Whether the clause named a class (`t` and `s` depend on it).
    named: bool,
    op: u8,
    perm: Perm,
}

/// A parsed symbolic (or octal) mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolicMode {
    ops: Vec<Op>,
}

/// Why a mode does not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModeError(pub String);

impl fmt::Display for ModeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Invalid mode `{}`: expected an octal mode such as 0755 or a symbolic one such as u+x,go-w", self.0)
    }
}

impl std::error::Error for ModeError {}

impl SymbolicMode {
    pub fn parse(text: &str) -> Result<SymbolicMode, ModeError> {
        let bad = || ModeError(text.to_string());
        if text.is_empty() {
            return Err(bad());
        }
        if text.bytes().all(|b| b.is_ascii_digit()) {
            let v = u32::from_str_radix(text, 8).ok().filter(|v| *v <= ALL).ok_or_else(bad)?;
            let op = Op { who: ALL, named: false, op: b'=', perm: Perm::Bits { bits: v, cond_x: false } };
            return Ok(SymbolicMode { ops: vec![op] });
        }
        let mut ops = Vec::new();
        for clause in text.split(',') {
            let b = clause.as_bytes();
            let mut i = 0;
            let mut who = 0;
            while i < b.len() {
                who |= match b[i] {
                    b'u' => USER,
                    b'g' => GROUP,
                    b'o' => OTHER,
                    b'a' => CLASSES,
                    _ => break,
                };
                i += 1;
            }
            let named = who != 0;
            if !named {
                who = CLASSES;
            }
            if i == b.len() {
                return Err(bad());
            }
            while i < b.len() {
                let op = b[i];
                if !matches!(op, b'+' | b'-' | b'=') {
                    return Err(bad());
                }
                i += 1;
                let perm = match b.get(i) {
                    Some(&c @ (b'u' | b'g' | b'o')) => {
                        i += 1;
                        Perm::Copy(match c {
                            b'u' => 6,
                            b'g' => 3,
                            _ => 0,
                        })
                    }
                    _ => {
                        let (mut bits, mut cond_x) = (0, false);
                        while let Some(&c) = b.get(i) {
                            match c {
                                b'r' => bits |= 0o444,
                                b'w' => bits |= 0o222,
                                b'x' => bits |= 0o111,
                                b'X' => cond_x = true,
                                b's' => bits |= SUID | SGID,
                                b't' => bits |= STICKY,
                                b'+' | b'-' | b'=' => break,
                                _ => return Err(bad()),
                            }
                            i += 1;
                        }
                        Perm::Bits { bits, cond_x }
                    }
                };
                ops.push(Op { who, named, op, perm });
            }
        }
        Ok(SymbolicMode { ops })
    }

    /// The permission bits (`0o7777` part) `mode` gets; `is_dir` for `X`.
    pub fn apply(&self, mode: u32, is_dir: bool) -> u32 {
        let original = mode & ALL;
        let mut m = original;
        let had_x = is_dir || original & 0o111 != 0;
        for o in &self.ops {
            // `t` only where the class is unnamed or includes u or g; it is never a class bit.
            let sticky_ok = !o.named || o.who & (USER | GROUP) != 0;
            let (value, cleared) = match o.perm {
                Perm::Bits { bits, cond_x } => {
                    let x = if cond_x && (o.op == b'-' || had_x) { 0o111 } else { 0 };
                    let sticky = if sticky_ok { bits & STICKY } else { 0 };
                    ((bits | x) & o.who | sticky, o.who | sticky)
                }
                Perm::Copy(shift) => {
                    let three = (m >> shift) & 0o7;
                    ((three << 6 | three << 3 | three) & o.who & 0o777, o.who & 0o777)
                }
            };
            match o.op {
                b'+' => m |= value,
                b'-' => m &= !value,
                _ => m = (m & !cleared) | value,
            }
        }
        m
    }
}

#[cfg(test)]
mod tests {
    use super::SymbolicMode;

    fn ap(s: &str, mode: u32, dir: bool) -> u32 {
        SymbolicMode::parse(s).unwrap_or_else(|e| panic!("{e}")).apply(mode, dir)
    }

    #[test]
    fn chmod_examples() {
        assert_eq!(ap("u+x", 0o644, false), 0o744);
        assert_eq!(ap("+x", 0o644, false), 0o755);
        assert_eq!(ap("go-w", 0o666, false), 0o644);
        assert_eq!(ap("a=rX", 0o755, false), 0o555);
        assert_eq!(ap("a=rX", 0o644, false), 0o444);
        assert_eq!(ap("a=rX", 0o600, true), 0o555);
        assert_eq!(ap("u=rwX,go=rX", 0o640, false), 0o644);
        assert_eq!(ap("u=rwX,go=rX", 0o740, false), 0o755);
        assert_eq!(ap("g=u", 0o750, false), 0o770);
        assert_eq!(ap("go=u-w", 0o700, false), 0o755);
        assert_eq!(ap("o=", 0o777, false), 0o770);
        assert_eq!(ap("=", 0o777, false), 0);
        assert_eq!(ap("u+s", 0o755, false), 0o4755);
        assert_eq!(ap("g+s", 0o755, true), 0o2755);
        assert_eq!(ap("+t", 0o777, true), 0o1777);
        assert_eq!(ap("o+t", 0o777, true), 0o777, "t is not an `o` bit");
        assert_eq!(ap("u-X", 0o755, false), 0o655, "-X clears as -x does");
        assert_eq!(ap("u+x,g+X", 0o600, false), 0o700, "X looks at the mode before the change");
        assert_eq!(ap("755", 0o4644, false), 0o755);
        assert_eq!(ap("u=rw,u+x", 0o000, false), 0o700);
    }

    #[test]
    fn bad_modes() {
        for s in ["", "u", "u+q", "z+x", "8", "77777", "u+x,", ",u+x", "+x y", "u!x"] {
            assert!(SymbolicMode::parse(s).is_err(), "{s}");
        }
    }
}

//! Registry authentication: `Credential` (whose `Debug` never shows a secret), parsing of
//! `WWW-Authenticate` challenges, and the token endpoint's answer.

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;

/// A credential for one registry. `Debug` prints the username and never the secret, so a
/// credential can sit in structs that derive `Debug`.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Credential {
    /// Username and password (or personal access token), sent as Basic auth to the registry
    /// or the token endpoint.
    Basic { username: String, password: String },
    /// An OAuth2 refresh token: docker's `identitytoken`, or a helper answering with the
    /// username `<token>`. Exchanged at the token endpoint (`grant_type=refresh_token`).
    IdentityToken(String),
    /// A bearer token sent as is (`registrytoken` in `config.json`).
    RegistryToken(String),
}

impl Credential {
    /// A username/password credential.
    pub fn basic(username: &str, password: &str) -> Credential {
        Credential::Basic { username: username.to_string(), password: password.to_string() }
    }

    /// The `Authorization` value for Basic auth, when this credential has a password.
    pub(crate) fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"))
            )),
            _ => None,
        }
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => {
                f.debug_struct("Basic").field("username", username).field("password", &"<redacted>").finish()
            }
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
            Credential::RegistryToken(_) => f.write_str("RegistryToken(<redacted>)"),
        }
    }
}

/// One challenge of a `WWW-Authenticate` header: the scheme, lower-cased, and its
/// parameters (names lower-cased, values unquoted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

/// Parses the challenges of a `WWW-Authenticate` value (RFC 9110 §11.6.1): several
/// challenges separated by commas, parameters `name=token` or `name="quoted, \"string\""`.
/// Malformed tails are dropped; what parsed before them is kept.
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let s = header.as_bytes();
    let mut i = 0;
    let mut out: Vec<Challenge> = Vec::new();
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let skip_ws = |i: &mut usize| {
        while *i < s.len() && (s[*i] == b' ' || s[*i] == b'\t') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| {
        let start = *i;
        while *i < s.len() && is_tchar(s[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        // Skip empty list elements.
        while i < s.len() && (s[i] == b',' || s[i] == b' ' || s[i] == b'\t') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            break;
        }
        let mut challenge = Challenge { scheme: scheme.to_ascii_lowercase(), params: BTreeMap::new() };
        // Parameters: `name = value` separated by commas, until a token not followed by `=`
        // (the next challenge's scheme).
        loop {
            skip_ws(&mut i);
            let save = i;
            let name = token(&mut i);
            skip_ws(&mut i);
            if name.is_empty() || i >= s.len() || s[i] != b'=' {
                i = save;
                break;
            }
            i += 1;
            skip_ws(&mut i);
            let value = if i < s.len() && s[i] == b'"' {
                i += 1;
                let mut v = String::new();
                let mut chars = header[i..].char_indices();
                let mut end = None;
                while let Some((off, c)) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some((_, n)) = chars.next() {
                                v.push(n);
                            }
                        }
                        '"' => {
                            end = Some(i + off + 1);
                            break;
                        }
                        c => v.push(c),
                    }
                }
                match end {
                    Some(e) => i = e,
                    None => {
                        out.push(challenge);
                        return out;
                    }
                }
                v
            } else {
                // Lenient: an unquoted value runs to the next comma or space (realms with
                // `/` and `:` appear unquoted in the wild).
                let start = i;
                while i < s.len() && !b", \t".contains(&s[i]) {
                    i += 1;
                }
                header[start..i].to_string()
            };
            challenge.params.insert(name.to_ascii_lowercase(), value);
            skip_ws(&mut i);
            if i < s.len() && s[i] == b',' {
                i += 1;
            } else {
                break;
            }
        }
        out.push(challenge);
        if i < s.len() && !(s[i] == b',' || s[i] == b' ' || is_tchar(s[i])) {
            break;
        }
    }
    out
}

/// A bearer token and when to stop using it.
#[derive(Clone)]
pub(crate) struct Token {
    pub value: String,
    pub expires: Instant,
}

/// The token endpoint's JSON answer (distribution's token spec and OAuth2's).
#[derive(serde::Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Reads a token answer; `None` when it holds no token. A token without `expires_in`
/// lives 60 s (the spec's default); it is dropped 10 s early so it never expires in flight.
pub(crate) fn parse_token_answer(body: &[u8], now: Instant) -> Option<Token> {
    let a: TokenAnswer = serde_json::from_slice(body).ok()?;
    let value = if a.token.is_empty() { a.access_token } else { a.token };
    if value.is_empty() {
        return None;
    }
    let life = a.expires_in.unwrap_or(60).max(20);
    Some(Token { value, expires: now + Duration::from_secs(life - 10) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(c: &Challenge) -> Vec<(&str, &str)> {
        c.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn bearer_challenge_with_quoted_commas() {
        let h = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull,push""#;
        let c = parse_challenges(h);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(
            params(&c[0]),
            [
                ("realm", "https://auth.docker.io/token"),
                ("scope", "repository:library/debian:pull,push"),
                ("service", "registry.docker.io")
            ]
        );
    }

    #[test]
    fn several_challenges_escapes_and_tokens() {
        let c =
            parse_challenges(r#"Basic realm="Registry \"x\", inc", BEARER Realm=http://t/tok , error=invalid_token"#);
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].scheme.as_str(), params(&c[0])), ("basic", vec![("realm", r#"Registry "x", inc"#)]));
        assert_eq!(params(&c[1]), [("error", "invalid_token"), ("realm", "http://t/tok")]);
        assert_eq!(parse_challenges("Basic").len(), 1);
        assert_eq!(parse_challenges("Basic realm=\"unterminated")[0].scheme, "basic");
        assert!(parse_challenges("").is_empty());
    }

    #[test]
    fn token_answers() {
        let now = Instant::now();
        let t = parse_token_answer(br#"{"access_token":"a","expires_in":300}"#, now).unwrap();
        assert_eq!(t.value, "a");
        assert_eq!(t.expires, now + Duration::from_secs(290));
        assert_eq!(parse_token_answer(br#"{"token":"t","access_token":"a"}"#, now).unwrap().value, "t");
        assert!(parse_token_answer(br#"{"nothing":1}"#, now).is_none());
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credential::basic("alice", "hunter2");
        let d = format!(
            "{c:?} {:?} {:?}",
            Credential::IdentityToken("idtok".into()),
            Credential::RegistryToken("rt".into())
        );
        assert!(d.contains("alice") && !d.contains("hunter2") && !d.contains("idtok") && !d.contains("\"rt\""), "{d}");
        assert_eq!(c.basic_header().unwrap(), "Basic YWxpY2U6aHVudGVyMg==");
    }
}

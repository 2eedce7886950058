//! Authentication: htpasswd Basic auth, Bearer tokens from a token server the test runs
//! (JWTs signed with `openssl`, the certificate in the registry's `rootcertbundle`, sent
//! as `x5c`), wrong credentials that name the registry and print no secret, a
//! `docker-credential-*` helper, and `login`/`logout` on a temporary docker config.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use cairn_ir::Platform;
use cairn_registry::{Client, Credential, RegistryError};

use crate::common::*;

const USER: &str = "alice";
const PASSWORD: &str = "correct-horse-battery";
const WRONG: &str = "wrong-password-xyzzy";

fn amd64() -> Platform {
    Platform::parse("linux/amd64").unwrap()
}

/// Writes `config.json` into the docker config dir of `config(dir, …)`.
fn write_docker_config(dir: &Path, json: &serde_json::Value) {
    std::fs::create_dir_all(dir.join("docker")).unwrap();
    std::fs::write(dir.join("docker/config.json"), json.to_string()).unwrap();
}

fn auth_entry(user: &str, password: &str) -> serde_json::Value {
    serde_json::json!({"auth": base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))})
}

/// Asserts `e` is `Unauthorized` for `host` and shows no password in Display or Debug.
fn assert_unauthorized(e: &RegistryError, host: &str) {
    assert!(matches!(e, RegistryError::Unauthorized { registry } if registry == host), "{e:?}");
    let shown = format!("{e} {e:?}");
    assert!(shown.contains(host), "{shown}");
    for secret in [PASSWORD, WRONG] {
        assert!(!shown.contains(secret), "a password leaked: {shown}");
    }
}

#[test]
fn htpasswd_basic_auth() {
    let reg = Registry::start(Auth::Htpasswd { user: USER, password: PASSWORD }, None);
    let r = reg.reference("private/app:1");

    // Anonymous: refused, naming the registry.
    let dir = tempfile::tempdir().unwrap();
    let e = Client::new(config(dir.path(), &[&reg.host])).head_manifest(&r).unwrap_err();
    assert_unauthorized(&e, &reg.host);

    // Wrong password from config.json.
    write_docker_config(dir.path(), &serde_json::json!({"auths": {reg.host.clone(): auth_entry(USER, WRONG)}}));
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let e = client.upload_blob(&r, &cairn_ir::Digest::of(b"x"), 1, &mut &b"x"[..]).unwrap_err();
    assert_unauthorized(&e, &reg.host);
    assert!(!format!("{:?}", client.credential(&reg.host).unwrap()).contains(WRONG));

    // The right one: push and pull.
    write_docker_config(
        dir.path(),
        &serde_json::json!({"auths": {format!("https://{}", reg.host): auth_entry(USER, PASSWORD)}}),
    );
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let pushed = push_image(&client, &r, &[bytes(70, 5000)], &amd64());
    let got = client.resolve(&r, Some(&amd64())).unwrap();
    assert_eq!(got.digest, pushed.digest);
    assert_eq!(fetch(&client, &r, &got.layers[0]), bytes(70, 5000));
}

#[test]
fn credential_helper_lookup() {
    let reg = Registry::start(Auth::Htpasswd { user: USER, password: PASSWORD }, None);
    let dir = tempfile::tempdir().unwrap();
    let calls = write_helper(dir.path(), &reg.host);
    write_docker_config(dir.path(), &serde_json::json!({"credHelpers": {reg.host.clone(): "test"}}));
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let r = reg.reference("helped/app:1");
    let pushed = push_image(&client, &r, &[bytes(71, 3000)], &amd64());
    assert_eq!(client.resolve(&r, Some(&amd64())).unwrap().digest, pushed.digest);
    let log = std::fs::read_to_string(&calls).unwrap();
    assert!(log.lines().any(|l| l == format!("get {}", reg.host)), "{log}");
    // Cached per client: one `get` however many requests.
    assert_eq!(log.lines().filter(|l| l.starts_with("get")).count(), 1, "{log}");

    // A helper named in `credsStore` serves every registry; one that does not know the
    // registry means anonymous, which this registry refuses.
    write_docker_config(dir.path(), &serde_json::json!({"credsStore": "test"}));
    let other = Registry::start(Auth::Htpasswd { user: USER, password: PASSWORD }, None);
    let e = Client::new(config(dir.path(), &[&other.host])).head_manifest(&other.reference("x:1")).unwrap_err();
    assert_unauthorized(&e, &other.host);
}

/// Writes `bin/docker-credential-test`: answers `get` for `host` with USER/PASSWORD and
/// "credentials not found" otherwise, saves `store` input, logs every call. Returns the
/// log path.
fn write_helper(dir: &Path, host: &str) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("helper.log");
    let script = format!(
        r#"#!/bin/sh
read -r input || true
case "$1" in
get)
  echo "get $input" >> '{log}'
  if [ "$input" = '{host}' ]; then
    printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{PASSWORD}"}}\n' "$input"
  else
    echo "credentials not found in native keychain"; exit 1
  fi ;;
store) echo "store" >> '{log}'; printf '%s' "$input" > '{stored}' ;;
erase) echo "erase $input" >> '{log}' ;;
esac
"#,
        log = log.display(),
        stored = dir.join("helper-stored.json").display(),
    );
    let path = bin.join("docker-credential-test");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&log, "").unwrap();
    log
}

#[test]
fn login_then_logout_round_trip() {
    let reg = Registry::start(Auth::Htpasswd { user: USER, password: PASSWORD }, None);
    let dir = tempfile::tempdir().unwrap();
    let other = auth_entry("bob", "other-secret");
    write_docker_config(dir.path(), &serde_json::json!({"psFormat": "table", "auths": {"other.lan": other}}));
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let path = dir.path().join("docker/config.json");
    let read = || serde_json::from_slice::<serde_json::Value>(&std::fs::read(&path).unwrap()).unwrap();

    let e = client.login(&reg.host, USER, WRONG).unwrap_err();
    assert_unauthorized(&e, &reg.host);
    assert!(read()["auths"].get(&reg.host).is_none(), "wrong credentials are not stored");

    client.login(&reg.host, USER, PASSWORD).unwrap();
    let c = read();
    assert_eq!(c["auths"][&reg.host], auth_entry(USER, PASSWORD));
    assert_eq!(c["auths"]["other.lan"], other, "other entries are kept");
    assert_eq!(c["psFormat"], "table", "other keys are kept");
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
    assert_eq!(client.credential(&reg.host).unwrap(), Some(Credential::basic(USER, PASSWORD)));
    // A fresh client pulls with what login stored.
    let fresh = Client::new(config(dir.path(), &[&reg.host]));
    push_image(&fresh, &reg.reference("logged/in:1"), &[bytes(72, 100)], &amd64());

    assert!(client.logout(&reg.host).unwrap());
    let c = read();
    assert!(c["auths"].get(&reg.host).is_none());
    assert_eq!(c["auths"]["other.lan"], other);
    assert!(!client.logout(&reg.host).unwrap(), "nothing left to remove");
    let e = Client::new(config(dir.path(), &[&reg.host])).head_manifest(&reg.reference("logged/in:1")).unwrap_err();
    assert_unauthorized(&e, &reg.host);

    // With a `credsStore`, login hands the credentials to the helper, not the file.
    let log = write_helper(dir.path(), "unused");
    write_docker_config(dir.path(), &serde_json::json!({"credsStore": "test"}));
    client.login(&reg.host, USER, PASSWORD).unwrap();
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("helper-stored.json")).unwrap()).unwrap();
    assert_eq!(stored, serde_json::json!({"ServerURL": reg.host, "Username": USER, "Secret": PASSWORD}));
    assert!(read().get("auths").is_none());
    client.logout(&reg.host).unwrap();
    assert!(std::fs::read_to_string(log).unwrap().contains(&format!("erase {}", reg.host)));
}

/// A token server on 127.0.0.1: `GET /token?service=…&scope=…` with Basic credentials
/// gets a JWT granting the requested actions (wrong credentials: 401; none: a token
/// granting nothing). Signed RS256 by `openssl dgst`, the certificate in `x5c`.
struct TokenServer {
    realm: String,
    cert: PathBuf,
    issued: Arc<AtomicUsize>,
    _dir: tempfile::TempDir,
}

impl TokenServer {
    fn start() -> TokenServer {
        require("openssl", "openssl");
        let dir = tempfile::tempdir().unwrap();
        let (key, cert) = (dir.path().join("token.key"), dir.path().join("token.crt"));
        run(Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .args(["-subj", "/CN=cairn test token issuer", "-days", "2"]));
        let der = run(Command::new("openssl").args(["x509", "-outform", "DER", "-in"]).arg(&cert));
        let x5c = base64::engine::general_purpose::STANDARD.encode(der);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let realm = format!("http://127.0.0.1:{}/token", listener.local_addr().unwrap().port());
        let issued = Arc::new(AtomicUsize::new(0));
        let count = issued.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { return };
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut request_line = String::new();
                let _ = reader.read_line(&mut request_line);
                let mut auth = None;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':') {
                        if k.eq_ignore_ascii_case("authorization") {
                            auth = Some(v.trim().to_string());
                        }
                    }
                }
                let (status, body) = answer(&request_line, auth.as_deref(), &key, &x5c);
                if status == 200 {
                    count.fetch_add(1, Ordering::SeqCst);
                }
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        TokenServer { realm, cert, issued, _dir: dir }
    }
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

/// The token endpoint's status and JSON body for one request.
fn answer(request_line: &str, auth: Option<&str>, key: &Path, x5c: &str) -> (u16, String) {
    let target = request_line.split(' ').nth(1).unwrap_or("");
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut params: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.entry(percent_decode(k)).or_default().push(percent_decode(v));
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    let user = match auth.and_then(|a| a.strip_prefix("Basic ")) {
        None => None,
        Some(b) => {
            let creds = String::from_utf8(b64.decode(b).unwrap()).unwrap();
            if creds != format!("{USER}:{PASSWORD}") {
                return (401, r#"{"details":"wrong credentials"}"#.into());
            }
            Some(USER)
        }
    };
    let access: Vec<serde_json::Value> = match user {
        None => Vec::new(),
        Some(_) => params
            .get("scope")
            .into_iter()
            .flatten()
            .flat_map(|s| s.split(' '))
            .filter_map(|s| {
                let mut parts = s.splitn(3, ':');
                let (kind, name, actions) = (parts.next()?, parts.next()?, parts.next()?);
                Some(serde_json::json!({"type": kind, "name": name, "actions": actions.split(',').collect::<Vec<_>>()}))
            })
            .collect(),
    };
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = serde_json::json!({"typ": "JWT", "alg": "RS256", "x5c": [x5c]});
    let claims = serde_json::json!({
        "iss": TOKEN_ISSUER, "sub": user.unwrap_or(""), "aud": TOKEN_SERVICE,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": format!("{now}-{}", access.len()),
        "access": access,
    });
    let signing_input = format!("{}.{}", url.encode(header.to_string()), url.encode(claims.to_string()));
    let mut child = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let token = format!("{signing_input}.{}", url.encode(out.stdout));
    (200, serde_json::json!({"token": token, "expires_in": 300}).to_string())
}

#[test]
fn bearer_token_auth() {
    let tokens = TokenServer::start();
    let reg = Registry::start(Auth::Token { realm: tokens.realm.clone(), cert: tokens.cert.clone() }, None);
    let dir = tempfile::tempdir().unwrap();
    let r = reg.reference("tokened/app:1");

    // Wrong credentials: the token server refuses them.
    write_docker_config(dir.path(), &serde_json::json!({"auths": {reg.host.clone(): auth_entry(USER, WRONG)}}));
    let e = Client::new(config(dir.path(), &[&reg.host])).head_manifest(&r).unwrap_err();
    assert_unauthorized(&e, &reg.host);

    write_docker_config(dir.path(), &serde_json::json!({"auths": {reg.host.clone(): auth_entry(USER, PASSWORD)}}));
    let client = Client::new(config(dir.path(), &[&reg.host]));
    let pushed = push_image(&client, &r, &[bytes(80, 9000), bytes(81, 100)], &amd64());
    let push_tokens = tokens.issued.load(Ordering::SeqCst);
    assert_eq!(push_tokens, 1, "one push token serves the whole push");
    let got = client.resolve(&r, Some(&amd64())).unwrap();
    assert_eq!(got.digest, pushed.digest);
    for (l, seed) in got.layers.iter().zip([80, 81]) {
        assert_eq!(fetch(&client, &r, l), bytes(seed, l.size as usize));
    }
    assert_eq!(tokens.issued.load(Ordering::SeqCst), push_tokens + 1, "one pull token for the whole pull");
    assert_eq!(client.stats().token_fetches, 2);

    // Anonymous: a token that grants nothing, so the registry refuses.
    let anon_dir = tempfile::tempdir().unwrap();
    let e = Client::new(config(anon_dir.path(), &[&reg.host])).resolve(&r, None).unwrap_err();
    assert_unauthorized(&e, &reg.host);

    // login verifies against the token endpoint.
    let login_dir = tempfile::tempdir().unwrap();
    let c = Client::new(config(login_dir.path(), &[&reg.host]));
    assert_unauthorized(&c.login(&reg.host, USER, WRONG).unwrap_err(), &reg.host);
    c.login(&reg.host, USER, PASSWORD).unwrap();
    assert_eq!(c.head_manifest(&r).unwrap().digest, pushed.digest);
}

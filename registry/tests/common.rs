//! Fixtures: Debian's `docker-registry` started on 127.0.0.1 in a temp dir (plain HTTP,
//! TLS, htpasswd or token auth), a client configuration isolated from the machine's, small
//! images pushed with the client, a fault-injecting TCP proxy, and the `openssl` helpers.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_ir::{Digest, Platform};
use cairn_registry::manifest::{OCI_INDEX, OCI_MANIFEST};
use cairn_registry::{Client, Descriptor, Reference, RegistryConfig};

pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";
pub const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
pub const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";

/// Fails the test, naming the Debian package, when `program` is missing.
pub fn require(program: &str, package: &str) {
    let found = if program.starts_with('/') {
        Path::new(program).is_file()
    } else {
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()).any(|d| d.join(program).is_file())
    };
    assert!(found, "`{program}` is missing: install Debian's `{package}` package (`apt-get install -y {package}`)");
}

/// Runs a command, panicking with its stderr when it fails; returns stdout.
pub fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// How the registry authenticates.
pub enum Auth {
    None,
    /// An htpasswd file with one bcrypt entry.
    Htpasswd {
        user: &'static str,
        password: &'static str,
    },
    /// Bearer tokens from `realm`, signed by the key whose certificate is `cert`.
    Token {
        realm: String,
        cert: PathBuf,
    },
}

pub const TOKEN_SERVICE: &str = "cairn-test-registry";
pub const TOKEN_ISSUER: &str = "cairn-test-issuer";

/// A running registry; killed and reaped on drop.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub host: String,
    pub dir: tempfile::TempDir,
    child: Child,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free loopback port (bound and released; the registry binds it right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Registry {
    /// Starts a registry; `tls` is `(certificate, key)` PEM files.
    pub fn start(auth: Auth, tls: Option<(PathBuf, PathBuf)>) -> Registry {
        require(REGISTRY_BIN, "docker-registry");
        let dir = tempfile::tempdir().unwrap();
        let auth_yaml = match &auth {
            Auth::None => String::new(),
            Auth::Htpasswd { user, password } => {
                require("htpasswd", "apache2-utils");
                let line = run(Command::new("htpasswd").args(["-Bbn", user, password]));
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, line).unwrap();
                format!("auth:\n  htpasswd:\n    realm: cairn-test\n    path: {}\n", path.display())
            }
            Auth::Token { realm, cert } => format!(
                "auth:\n  token:\n    realm: {realm}\n    service: {TOKEN_SERVICE}\n    issuer: {TOKEN_ISSUER}\n    rootcertbundle: {}\n",
                cert.display()
            ),
        };
        let tls_yaml = match &tls {
            Some((c, k)) => format!("  tls:\n    certificate: {}\n    key: {}\n", c.display(), k.display()),
            None => String::new(),
        };
        // A port taken between `free_port` and the bind makes the registry exit: try again.
        for _ in 0..5 {
            let port = free_port();
            let config = format!(
                "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n  maintenance:\n    uploadpurging:\n      enabled: false\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: cairn-test-secret\n{tls_yaml}{auth_yaml}",
                dir.path().join("data").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
            let mut child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Some(status) = child.try_wait().unwrap() {
                    let log = std::fs::read_to_string(dir.path().join("registry.log")).unwrap_or_default();
                    if log.contains("address already in use") {
                        break;
                    }
                    panic!("docker-registry exited with {status}:\n{log}");
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Registry { host: format!("127.0.0.1:{port}"), dir, child };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("docker-registry did not listen on 127.0.0.1:{port} within 20 s");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("no free port for docker-registry after 5 tries");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse(&format!("{}/{name}", self.host)).unwrap()
    }
}

/// A client configuration that reads nothing of the machine's: docker config and certs.d
/// in `dir`, `insecure` hosts as given.
pub fn config(dir: &Path, insecure: &[&str]) -> RegistryConfig {
    RegistryConfig {
        insecure: insecure.iter().map(|s| s.to_string()).collect(),
        certs_dirs: vec![dir.join("certs.d")],
        docker_config_dir: dir.join("docker"),
        helper_dirs: vec![dir.join("bin")],
        ..RegistryConfig::default()
    }
}

/// An image pushed by `push_image`.
pub struct Pushed {
    pub digest: Digest,
    pub manifest: Vec<u8>,
    pub config: Vec<u8>,
    pub layers: Vec<Descriptor>,
}

/// Deterministic pseudo-random bytes (xorshift), so layers do not compress or repeat.
pub fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Uploads `layers` and a config for `platform`, then an OCI manifest tagged as `r` says.
pub fn push_image(client: &Client, r: &Reference, layers: &[Vec<u8>], platform: &Platform) -> Pushed {
    let descs: Vec<Descriptor> = layers
        .iter()
        .map(|l| {
            let d = Descriptor::new(LAYER_TYPE, Digest::of(l), l.len() as u64);
            if !client.blob_exists(r, &d.digest).unwrap() {
                client.upload_blob(r, &d.digest, d.size, &mut l.as_slice()).unwrap();
            }
            d
        })
        .collect();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": platform.architecture, "os": platform.os, "variant": platform.variant,
        "config": {"Env": ["PATH=/usr/bin:/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": descs.iter().map(|d| d.digest.to_string()).collect::<Vec<_>>()},
    }))
    .unwrap();
    let config_desc = Descriptor::new(CONFIG_TYPE, Digest::of(&config), config.len() as u64);
    client.upload_blob(r, &config_desc.digest, config_desc.size, &mut config.as_slice()).unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": descs,
    }))
    .unwrap();
    let digest = client.put_manifest(r, OCI_MANIFEST, &manifest).unwrap();
    assert_eq!(digest, Digest::of(&manifest));
    Pushed { digest, manifest, config, layers: descs }
}

/// Pushes an OCI index of `entries` (manifest digest, size, platform) under `r`.
pub fn push_index(client: &Client, r: &Reference, entries: &[(&Pushed, Platform)]) -> (Digest, Vec<u8>) {
    let manifests: Vec<serde_json::Value> = entries
        .iter()
        .map(|(p, plat)| {
            let mut d = Descriptor::new(OCI_MANIFEST, p.digest, p.manifest.len() as u64);
            d.platform = Some(plat.into());
            serde_json::to_value(d).unwrap()
        })
        .collect();
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}))
            .unwrap();
    (client.put_manifest(r, OCI_INDEX, &index).unwrap(), index)
}

/// Downloads `desc` and returns the bytes.
pub fn fetch(client: &Client, r: &Reference, desc: &Descriptor) -> Vec<u8> {
    let mut out = Vec::new();
    client.fetch_blob(r, desc, &mut out, &|_, _| {}).unwrap();
    out
}

/// A certificate authority and a server certificate for 127.0.0.1 made with `openssl`:
/// returns `(ca.crt, server.crt, server.key)`.
pub fn make_tls(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    require("openssl", "openssl");
    let p = |n: &str| dir.join(n);
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
    run(Command::new("openssl")
        .args(["req", "-x509"])
        .args(ec)
        .arg("-keyout")
        .arg(p("ca.key"))
        .arg("-out")
        .arg(p("ca.crt"))
        .args(["-subj", "/CN=cairn test CA", "-days", "2"]));
    run(Command::new("openssl")
        .arg("req")
        .args(ec)
        .arg("-keyout")
        .arg(p("server.key"))
        .arg("-out")
        .arg(p("server.csr"))
        .args(["-subj", "/CN=127.0.0.1"]));
    std::fs::write(
        p("ext.cnf"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-in"])
        .arg(p("server.csr"))
        .arg("-CA")
        .arg(p("ca.crt"))
        .arg("-CAkey")
        .arg(p("ca.key"))
        .args(["-CAcreateserial", "-days", "2", "-out"])
        .arg(p("server.crt"))
        .arg("-extfile")
        .arg(p("ext.cnf")));
    (p("ca.crt"), p("server.crt"), p("server.key"))
}

/// A fault the proxy injects into the response to the next `GET` of one blob, once.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Forward only this many bytes of the response (headers included), then cut both
    /// directions.
    CutAfter { digest: Digest, bytes: usize },
    /// Flip the first byte of the response body.
    Flip { digest: Digest },
}

/// A TCP proxy on 127.0.0.1 in front of `upstream`, injecting one `Fault` when armed.
pub struct Proxy {
    pub host: String,
    fault: Arc<Mutex<Option<Fault>>>,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let fault: Arc<Mutex<Option<Fault>>> = Arc::new(Mutex::new(None));
        let requests: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
        let upstream = upstream.to_string();
        let (f, log) = (fault.clone(), requests.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { return };
                let Ok(server) = TcpStream::connect(&upstream) else { continue };
                let armed: Arc<Mutex<Option<Fault>>> = Arc::new(Mutex::new(None));
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (global, armed2, log) = (f.clone(), armed.clone(), log.clone());
                std::thread::spawn(move || pump_requests(client, server, global, armed2, log));
                std::thread::spawn(move || pump_responses(s2, c2, armed));
            }
        });
        Proxy { host, fault, requests }
    }

    /// The heads of the requests seen so far (request line and headers).
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// Arms `fault` for the next matching blob `GET`.
    pub fn arm(&self, fault: Fault) {
        *self.fault.lock().unwrap() = Some(fault);
    }
}

fn fault_digest(f: &Fault) -> Digest {
    match f {
        Fault::CutAfter { digest, .. } | Fault::Flip { digest } => *digest,
    }
}

/// Client → registry: forwards, and moves the global fault onto this connection when the
/// request is a `GET` of the fault's blob.
fn pump_requests(
    mut from: TcpStream,
    mut to: TcpStream,
    global: Arc<Mutex<Option<Fault>>>,
    armed: Arc<Mutex<Option<Fault>>>,
    log: Arc<Mutex<Vec<String>>>,
) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let text = String::from_utf8_lossy(&buf[..n]);
        if let Some((head, _)) = text.split_once("\r\n\r\n").filter(|_| text.starts_with(char::is_uppercase)) {
            log.lock().unwrap().push(head.to_string());
        }
        let mut g = global.lock().unwrap();
        if let Some(f) = g.as_ref() {
            if text.starts_with("GET ") && text.contains(&format!("/blobs/{}", fault_digest(f))) {
                *armed.lock().unwrap() = g.take();
            }
        }
        drop(g);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// Registry → client: forwards, applying this connection's armed fault.
fn pump_responses(mut from: TcpStream, mut to: TcpStream, armed: Arc<Mutex<Option<Fault>>>) {
    let mut buf = vec![0u8; 64 << 10];
    // For `Flip`: the last four bytes seen, to find the end of the headers across reads.
    let mut window = [0u8; 4];
    let mut body_next = false;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let mut a = armed.lock().unwrap();
        match a.as_mut() {
            Some(Fault::CutAfter { bytes, .. }) => {
                let k = (*bytes).min(n);
                let _ = to.write_all(&buf[..k]);
                *bytes -= k;
                if *bytes == 0 {
                    let _ = to.shutdown(Shutdown::Both);
                    let _ = from.shutdown(Shutdown::Both);
                    return;
                }
                continue;
            }
            Some(Fault::Flip { .. }) => {
                if body_next {
                    buf[0] ^= 0x01;
                    *a = None;
                } else if let Some(i) = (0..n).find(|&i| {
                    window.rotate_left(1);
                    window[3] = buf[i];
                    &window == b"\r\n\r\n"
                }) {
                    if i + 1 < n {
                        buf[i + 1] ^= 0x01;
                        *a = None;
                    } else {
                        // The body starts with the next read.
                        body_next = true;
                    }
                }
            }
            None => {}
        }
        drop(a);
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

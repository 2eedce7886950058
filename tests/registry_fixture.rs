//! Debian's `docker-registry` started on 127.0.0.1 by a test (plain HTTP, or htpasswd Basic
//! auth), killed and reaped on drop; what it served, from its access log.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use crate::build_cli::Tmp;

const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A registry on 127.0.0.1, killed and reaped on drop.
pub(crate) struct Registry {
    child: Child,
    pub(crate) host: String,
    pub(crate) dir: PathBuf,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// `htpasswd`: (user, password) for Basic auth.
    pub(crate) fn start(t: &Tmp, name: &str, htpasswd: Option<(&str, &str)>) -> Registry {
        assert!(Path::new(REGISTRY_BIN).is_file(), "install Debian's `docker-registry` package");
        let dir = t.path(name);
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut auth = String::new();
        if let Some((user, password)) = htpasswd {
            let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("install apache2-utils");
            std::fs::write(dir.join("htpasswd"), out.stdout).unwrap();
            auth = format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", dir.join("htpasswd").display());
        }
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.join("data").display()
        );
        std::fs::write(dir.join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.join("log")).unwrap();
        let child = Command::new(REGISTRY_BIN)
            .args(["serve", dir.join("config.yml").to_str().unwrap()])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let host = format!("127.0.0.1:{port}");
        let r = Registry { child, host, dir };
        let start = Instant::now();
        while std::net::TcpStream::connect(&r.host).is_err() {
            assert!(start.elapsed() < Duration::from_secs(20), "the registry did not start: {}", r.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Digests of the blobs served by GET so far, one per request (access-log lines).
    pub(crate) fn blob_gets(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|l| l.contains("\"GET /v2/") && l.contains("/blobs/sha256:"))
            .filter_map(|l| l.split("/blobs/").nth(1)?.split([' ', '"', '?']).next().map(str::to_string))
            .collect()
    }

    /// The file the registry keeps blob `digest` in.
    pub(crate) fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir.join(format!("data/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
    }
}

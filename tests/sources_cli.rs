//! Remote sources end to end: `ADD` of URLs served by a small HTTP server on 127.0.0.1
//! (ETag, Last-Modified, 304 answers, request counting) and of git repositories served by
//! `git daemon` on a free loopback port, built with the real `cairn` binary.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::build_cli::{build, cairn, counts, executed_steps, setup, stderr, Tmp};

// ----------------------------------------------------------------------------- http

/// A file the server serves: body, ETag, Last-Modified.
#[derive(Clone)]
struct Served {
    body: Vec<u8>,
    etag: Option<String>,
    last_modified: Option<String>,
}

/// One request the server saw: path and whether it was conditional.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    conditional: bool,
}

#[derive(Default)]
struct State {
    files: HashMap<String, Served>,
    seen: Vec<Seen>,
}

/// A minimal HTTP/1.1 server on 127.0.0.1 (one connection at a time, `Connection: close`).
struct Server {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(c) = conn {
                    let _ = serve(c, &st);
                }
            }
        });
        Server { port, state, stop, thread: Some(thread) }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn put(&self, path: &str, body: &str, etag: Option<&str>, last_modified: Option<&str>) {
        self.state.lock().unwrap().files.insert(
            path.to_string(),
            Served {
                body: body.as_bytes().to_vec(),
                etag: etag.map(str::to_string),
                last_modified: last_modified.map(str::to_string),
            },
        );
    }

    fn put_bytes(&self, path: &str, body: Vec<u8>) {
        self.state.lock().unwrap().files.insert(path.to_string(), Served { body, etag: None, last_modified: None });
    }

    fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(c: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(c.try_clone()?);
    let mut line = String::new();
    r.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let inm = headers.get("if-none-match").cloned();
    let ims = headers.get("if-modified-since").cloned();
    let mut st = state.lock().unwrap();
    st.seen.push(Seen { path: path.clone(), conditional: inm.is_some() || ims.is_some() });
    let file = st.files.get(&path).cloned();
    drop(st);
    let mut w = c;
    let mut head = |status: &str, extra: &str, len: usize| {
        write!(w, "HTTP/1.1 {status}\r\nContent-Length: {len}\r\nConnection: close\r\n{extra}\r\n")
    };
    if path == "/redirect" {
        return head("302 Found", "Location: /data.txt\r\n", 0);
    }
    let Some(f) = file else {
        head("404 Not Found", "", 9)?;
        return w.write_all(b"not found");
    };
    let mut extra = String::new();
    if let Some(e) = &f.etag {
        extra.push_str(&format!("ETag: {e}\r\n"));
    }
    if let Some(l) = &f.last_modified {
        extra.push_str(&format!("Last-Modified: {l}\r\n"));
    }
    let not_modified = match (&inm, &ims) {
        (Some(i), _) => f.etag.as_deref() == Some(i.as_str()),
        (None, Some(i)) => f.last_modified.as_deref() == Some(i.as_str()),
        _ => false,
    };
    if not_modified {
        return head("304 Not Modified", &extra, 0);
    }
    head("200 OK", &extra, f.body.len())?;
    w.write_all(&f.body)
}

fn sha256(data: &str) -> String {
    let mut c = Command::new("sha256sum").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    c.stdin.take().unwrap().write_all(data.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).split_whitespace().next().unwrap().to_string()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// Builds `dockerfile`, expects exit code 1 and returns stderr.
fn build_fails(t: &Tmp, dockerfile: &str) -> String {
    t.write("ctx/Dockerfile", dockerfile);
    let (o, _) = build(t, &[]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{e}");
    e
}

fn tmp_entries(t: &Tmp) -> usize {
    std::fs::read_dir(t.path("store/tmp")).map(|d| d.count()).unwrap_or(0)
}

const LAST_MODIFIED: &str = "Wed, 21 Oct 2015 07:28:00 GMT";

#[test]
fn add_url_content_mode_owner_and_revalidation() {
    let t = setup("http-add");
    let srv = Server::start();
    srv.put("/data.txt", "hello v1\n", Some("\"v1\""), Some(LAST_MODIFIED));
    srv.put("/tool", "#!/bin/sh\necho tool\n", None, None);
    t.write(
        "ctx/Dockerfile",
        &format!(
            "FROM busybox\nADD {} /data.txt\nADD --chmod=755 --chown=1:2 {} /opt/tool\nADD {} /via/\nRUN cat /data.txt > /copy\n",
            srv.url("/data.txt"),
            srv.url("/tool"),
            srv.url("/redirect"),
        ),
    );
    let out = t.path("out");
    let local = format!("type=local,dest={}", out.display());
    let (o, _) = build(&t, &["-o", &local]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out.join("data.txt")), "hello v1\n");
    assert_eq!(read(&out.join("copy")), "hello v1\n");
    let md = std::fs::metadata(out.join("data.txt")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o600, "the SPEC's default mode");
    assert_eq!((md.uid(), md.gid()), (0, 0));
    assert_eq!(md.mtime(), 1_445_412_480, "mtime is the Last-Modified time");
    let tool = std::fs::metadata(out.join("opt/tool")).unwrap();
    assert_eq!(tool.permissions().mode() & 0o7777, 0o755);
    assert_eq!((tool.uid(), tool.gid()), (1, 2));
    assert_eq!(tool.mtime(), 0, "no Last-Modified: the epoch");
    // The redirect is followed; the file keeps the name from the URL.
    assert_eq!(read(&out.join("via/redirect")), "hello v1\n");

    // Unchanged remote content: revalidated with a conditional request (304), so the
    // download is cached; `/tool` has no validators and is fetched again, but its bytes
    // are the same, so every ADD and the RUN stay cached.
    let before = srv.seen().len();
    let (o, s) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen = srv.seen()[before..].to_vec();
    assert!(seen.iter().any(|r| r.path == "/data.txt" && r.conditional), "{seen:?}");
    assert!(seen.iter().any(|r| r.path == "/tool" && !r.conditional), "{seen:?}");
    assert_eq!(executed_steps(&o), vec![srv.url("/tool")], "only the validator-less download ran");
    assert_eq!(counts(&s).0, 1);

    // A changed remote file re-runs the ADD and what follows it.
    srv.put("/data.txt", "hello v2\n", Some("\"v2\""), Some("Thu, 22 Oct 2015 07:28:00 GMT"));
    let (o, _) = build(&t, &["-o", &local]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ran = executed_steps(&o);
    assert!(ran.iter().any(|n| n.contains("ADD http") && n.contains("/data.txt /data.txt")), "{ran:?}");
    assert!(ran.iter().any(|n| n.contains("RUN cat /data.txt")), "{ran:?}");
    assert!(ran.contains(&srv.url("/data.txt")), "downloaded again: {ran:?}");
    assert_eq!(read(&out.join("copy")), "hello v2\n");
    assert_eq!(read(&out.join("via/redirect")), "hello v2\n");
    assert_eq!(std::fs::metadata(out.join("data.txt")).unwrap().mtime(), 1_445_498_880);

    // A damaged stored file is noticed on a 304 and downloaded again.
    let rec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::fs::read_dir(t.path("store/http"))
                .unwrap()
                .flatten()
                .map(|e| e.path())
                .find(|p| read(p).contains("/data.txt"))
                .unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let stored = t.path("store/layers").join(rec["layer"].as_str().unwrap()).join("data.txt");
    std::fs::write(&stored, "tampered\n").unwrap();
    let before = srv.seen().len();
    let (o, _) = build(&t, &["-o", &local]);
    assert!(o.status.success(), "{}", stderr(&o));
    let seen: Vec<bool> =
        srv.seen()[before..].iter().filter(|r| r.path == "/data.txt").map(|r| r.conditional).collect();
    // (`/redirect` revalidates `/data.txt` too, conditionally.)
    assert_eq!(seen.iter().filter(|c| !**c).count(), 1, "revalidated, then downloaded again: {seen:?}");
    assert_eq!(read(&out.join("data.txt")), "hello v2\n");

    // --no-cache downloads without a conditional request.
    let before = srv.seen().len();
    let (o, _) = build(&t, &["--no-cache"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(srv.seen()[before..].iter().all(|r| !r.conditional), "{:?}", srv.seen());
    assert_eq!(tmp_entries(&t), 0);

    // `prune --all` drops the downloaded layers and so their records; the next build
    // downloads without validators.
    let o = crate::build_cli::cairn(&t, &["prune", "--all"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(t.path("store/http")).unwrap().count(), 0);
    let before = srv.seen().len();
    let (o, _) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(srv.seen()[before..].iter().all(|r| !r.conditional), "{:?}", srv.seen());
}

#[test]
fn add_url_checksum_and_http_errors() {
    let t = setup("http-sum");
    let srv = Server::start();
    srv.put("/pinned.tar.gz", "not really a tarball\n", Some("\"p\""), None);
    let good = sha256("not really a tarball\n");
    let url = srv.url("/pinned.tar.gz");
    t.write(
        "ctx/Dockerfile",
        &format!("FROM busybox\nADD --checksum=sha256:{good} {url} /p/\nRUN cat /p/pinned.tar.gz > /copy\n"),
    );
    let out = t.path("out");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Remote archives are not unpacked.
    assert_eq!(read(&out.join("p/pinned.tar.gz")), "not really a tarball\n");
    // With a checksum and a cache hit, no request at all.
    let before = srv.seen().len();
    let (o, s) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s).0, 0, "{:?}", executed_steps(&o));
    assert_eq!(srv.seen().len(), before, "no request for a pinned, cached download");

    // A wrong checksum fails, naming the URL, both digests and the line.
    let bad = "0".repeat(64);
    let e = build_fails(&t, &format!("FROM busybox\nADD --checksum=sha256:{bad} {url} /p/\n"));
    assert!(e.contains(&format!("Checksum mismatch for `{url}`: expected `sha256:{bad}`, got `sha256:{good}`")), "{e}");
    assert!(e.contains("Dockerfile:2"), "{e}");

    // 404: the URL and the status.
    let missing = srv.url("/missing.txt");
    let e = build_fails(&t, &format!("FROM busybox\nRUN true\nADD {missing} /m\n"));
    assert!(e.contains(&format!("Cannot download `{missing}`: the server answered 404 Not Found")), "{e}");
    assert!(e.contains("Dockerfile:3"), "{e}");

    // Connection refused: a port nobody listens on.
    let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = format!("http://127.0.0.1:{free}/x.txt");
    let e = build_fails(&t, &format!("FROM busybox\nADD {refused} /x\n"));
    assert!(e.contains(&format!("Cannot download `{refused}`")), "{e}");
    assert!(e.to_lowercase().contains("refused"), "{e}");
    assert_eq!(tmp_entries(&t), 0, "failed downloads leave nothing behind");
}

// ----------------------------------------------------------------------------- git

fn git(dir: &Path, args: &[&str]) -> String {
    let o = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("git is installed");
    assert!(o.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// `git daemon` serving `base` on a free loopback port; killed on drop.
struct Daemon {
    child: Child,
    port: u16,
}

impl Daemon {
    fn start(base: &Path) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // `git daemon` would run `git-daemon` as a child that outlives a kill of `git`.
        let exec_path = git(base, &["--exec-path"]);
        let mut child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .args(["--export-all", "--reuseaddr", "--listen=127.0.0.1"])
            .arg(format!("--port={port}"))
            .arg(format!("--base-path={}", base.display()))
            .arg(base)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon runs");
        for _ in 0..200 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Daemon { child, port };
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = child.kill();
        let _ = child.wait();
        panic!("git daemon did not listen on port {port}");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A bare repository `repo.git` under `t/git`, fed from the work tree `t/work`.
fn make_repo(t: &Tmp) -> std::path::PathBuf {
    let base = t.path("git");
    std::fs::create_dir_all(&base).unwrap();
    git(&base, &["init", "-q", "--bare", "repo.git"]);
    let work = t.path("work");
    std::fs::create_dir_all(&work).unwrap();
    git(&work, &["init", "-q"]);
    t.write("work/README", "readme v1\n");
    t.write("work/docs/guide.txt", "guide v1\n");
    std::os::unix::fs::symlink("docs", work.join("link")).unwrap();
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "one"]);
    git(&work, &["tag", "-a", "v1", "-m", "release 1"]);
    git(&work, &["remote", "add", "origin", base.join("repo.git").to_str().unwrap()]);
    git(&work, &["push", "-q", "origin", "main", "--tags"]);
    base
}

#[test]
fn add_git_branch_tag_subdir_commit_and_keep_git_dir() {
    let t = setup("git-add");
    let base = make_repo(&t);
    let work = t.path("work");
    let first = git(&work, &["rev-parse", "HEAD"]);
    let d = Daemon::start(&base);
    let repo = format!("git://127.0.0.1:{}/repo.git", d.port);
    t.write(
        "ctx/Dockerfile",
        &format!(
            "FROM busybox\nADD {repo}#main /src\nADD {repo}#v1 /tag\nADD {repo}#main:docs /docs\nADD {repo} /head\n\
ADD {repo}#{first} /bysha\nADD {repo}#v1:link /viasym\nADD --keep-git-dir=true {repo}#main /withgit\nRUN cat /src/README > /copy\n"
        ),
    );
    let out = t.path("out");
    let local = format!("type=local,dest={}", out.display());
    let (o, _) = build(&t, &["-o", &local]);
    assert!(o.status.success(), "{}", stderr(&o));
    for dir in ["src", "tag", "head", "bysha", "withgit"] {
        assert_eq!(read(&out.join(dir).join("README")), "readme v1\n", "{dir}");
    }
    assert_eq!(read(&out.join("src/docs/guide.txt")), "guide v1\n");
    assert!(!out.join("src/.git").exists(), ".git only with --keep-git-dir");
    assert_eq!(read(&out.join("docs/guide.txt")), "guide v1\n");
    assert!(!out.join("docs/README").exists(), "only the subdirectory");
    assert_eq!(read(&out.join("viasym/guide.txt")), "guide v1\n", "a symlinked subdirectory is what it names");
    assert!(out.join("viasym").symlink_metadata().unwrap().is_dir());
    assert_eq!(git(&out.join("withgit"), &["rev-parse", "HEAD"]), first);
    assert_eq!(read(&out.join("copy")), "readme v1\n");

    // Same commits: every git source and what follows stay cached.
    let (o, s) = build(&t, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&s).0, 0, "{:?}", executed_steps(&o));

    // A new commit on the branch changes the branch's result, not the tag's or the commit's.
    t.write("work/README", "readme v2\n");
    git(&work, &["commit", "-q", "-am", "two"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let (o, _) = build(&t, &["-o", &local]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ran = executed_steps(&o);
    assert!(ran.iter().any(|n| n.contains("#main /src")), "{ran:?}");
    // The tag and the commit id resolve as before: their sources come from the cache.
    let pinned = [format!("git {repo}#v1"), format!("git {repo}#{first}")];
    assert!(!ran.iter().any(|n| pinned.contains(n)), "{ran:?}");
    assert!(ran.contains(&format!("git {repo}#main")), "{ran:?}");
    assert_eq!(read(&out.join("src/README")), "readme v2\n");
    assert_eq!(read(&out.join("head/README")), "readme v2\n");
    assert_eq!(read(&out.join("tag/README")), "readme v1\n");
    assert_eq!(read(&out.join("bysha/README")), "readme v1\n");
    assert_eq!(read(&out.join("copy")), "readme v2\n");
    assert_eq!(read(&out.join("docs/guide.txt")), "guide v1\n");
}

#[test]
fn git_errors_name_the_remote_and_the_line() {
    let t = setup("git-err");
    let base = make_repo(&t);
    let d = Daemon::start(&base);
    let repo = format!("git://127.0.0.1:{}/repo.git", d.port);
    let e = build_fails(&t, &format!("FROM busybox\nADD {repo}#nope /src\n"));
    assert!(e.contains(&format!("Reference `nope` was not found in `{repo}`")), "{e}");
    assert!(e.contains("Dockerfile:2"), "{e}");

    let missing = format!("git://127.0.0.1:{}/missing.git", d.port);
    let e = build_fails(&t, &format!("FROM busybox\nRUN true\nADD {missing}#main /src\n"));
    assert!(e.contains(&format!("`git ls-remote` failed for `{missing}`")), "{e}");
    assert!(e.contains("Dockerfile:3"), "{e}");

    let e = build_fails(&t, &format!("FROM busybox\nADD {repo}#main:nodir /src\n"));
    assert!(e.contains("`nodir` is not a directory of"), "{e}");
    assert_eq!(tmp_entries(&t), 0, "failed checkouts leave nothing behind");
}

#[test]
fn git_submodules_are_checked_out() {
    let t = setup("git-sub");
    let base = t.path("git");
    std::fs::create_dir_all(&base).unwrap();
    git(&base, &["init", "-q", "--bare", "sub.git"]);
    git(&base, &["init", "-q", "--bare", "super.git"]);
    let d = Daemon::start(&base);
    let url = |r: &str| format!("git://127.0.0.1:{}/{r}", d.port);
    let sub = t.path("subwork");
    std::fs::create_dir_all(&sub).unwrap();
    git(&sub, &["init", "-q"]);
    t.write("subwork/lib.txt", "lib\n");
    git(&sub, &["add", "."]);
    git(&sub, &["commit", "-q", "-m", "lib"]);
    git(&sub, &["push", "-q", base.join("sub.git").to_str().unwrap(), "main"]);
    let sup = t.path("superwork");
    std::fs::create_dir_all(&sup).unwrap();
    git(&sup, &["init", "-q"]);
    t.write("superwork/README", "super\n");
    git(&sup, &["submodule", "add", "-q", &url("sub.git"), "vendor/sub"]);
    git(&sup, &["add", "."]);
    git(&sup, &["commit", "-q", "-m", "with a submodule"]);
    git(&sup, &["push", "-q", base.join("super.git").to_str().unwrap(), "main"]);
    let repo = url("super.git");
    t.write("ctx/Dockerfile", &format!("FROM busybox\nADD {repo}#main /s\nADD --keep-git-dir=true {repo}#main /k\n"));
    let out = t.path("out");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out.join("s/vendor/sub/lib.txt")), "lib\n");
    assert!(
        !out.join("s/.git").exists() && !out.join("s/vendor/sub/.git").exists(),
        "no git files without --keep-git-dir"
    );
    assert_eq!(git(&out.join("k/vendor/sub"), &["rev-parse", "HEAD"]), git(&sub, &["rev-parse", "HEAD"]));
}

/// Issue 12: `ADD --unpack=true` unpacks a downloaded archive (BuildKit); without it a
/// download stays a file, and `--unpack=false` keeps a local archive packed.
#[test]
fn issue12_add_unpack_for_downloads_and_local_archives() {
    let t = setup("http-unpack");
    t.write("tarsrc/dir/in.txt", "inside\n");
    let tgz = t.path("ctx/a.tar.gz");
    std::fs::create_dir_all(tgz.parent().unwrap()).unwrap();
    let o = Command::new("tar")
        .args(["-czf", tgz.to_str().unwrap(), "-C", t.path("tarsrc").to_str().unwrap(), "dir"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let srv = Server::start();
    srv.put_bytes("/a.tar.gz", std::fs::read(&tgz).unwrap());
    let url = srv.url("/a.tar.gz");
    t.write(
        "ctx/Dockerfile",
        &format!("FROM scratch\nADD --unpack=true {url} /u/\nADD {url} /plain/\nADD --unpack=false a.tar.gz /local/\nADD a.tar.gz /x/\n"),
    );
    let out = t.path("out");
    let (o, _) = build(&t, &["-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out.join("u/dir/in.txt")), "inside\n", "--unpack=true unpacks the download");
    assert!(out.join("plain/a.tar.gz").is_file(), "a download is not unpacked by default");
    assert!(out.join("local/a.tar.gz").is_file(), "--unpack=false keeps a local archive");
    assert_eq!(read(&out.join("x/dir/in.txt")), "inside\n", "a local archive unpacks by default");
}

/// Issue 11: the build context given as a git URL (`git://…/repo.git#REF:DIR`, as
/// `docker buildx build URL`) and as the URL of a gzipped tarball.
#[test]
fn issue11_contexts_from_a_git_url_and_a_tarball_url() {
    let t = setup("url-ctx");
    let base = make_repo(&t);
    let work = t.path("work");
    t.write("work/app/Dockerfile", "FROM busybox\nCOPY guide.txt /from-git.txt\n");
    t.write("work/app/guide.txt", "from the repository\n");
    git(&work, &["add", "."]);
    git(&work, &["commit", "-q", "-m", "app"]);
    git(&work, &["push", "-q", "origin", "main"]);
    let daemon = Daemon::start(&base);
    let url = format!("git://127.0.0.1:{}/repo.git#main:app", daemon.port);
    let out = t.path("out-git");
    let o = cairn(&t, &["build", "--progress", "plain", "-o", &format!("type=local,dest={}", out.display()), &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out.join("from-git.txt")), "from the repository\n");

    // A tarball served over HTTP, gzipped.
    t.write("tarctx/Dockerfile", "FROM busybox\nCOPY hello /from-tar.txt\n");
    t.write("tarctx/hello", "from the tarball\n");
    let tgz = t.path("ctx.tar.gz");
    let ok = Command::new("tar").arg("czf").arg(&tgz).arg("-C").arg(t.path("tarctx")).arg(".").status().unwrap();
    assert!(ok.success());
    let server = Server::start();
    server.put_bytes("/ctx.tar.gz", std::fs::read(&tgz).unwrap());
    let url = format!("http://127.0.0.1:{}/ctx.tar.gz", server.port);
    let out = t.path("out-tar");
    let o = cairn(&t, &["build", "--progress", "plain", "-o", &format!("type=local,dest={}", out.display()), &url]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out.join("from-tar.txt")), "from the tarball\n");
    // The same tarball as a named context.
    t.write("named/Dockerfile", "FROM busybox\nCOPY --from=extra hello /named.txt\n");
    let out = t.path("out-named");
    let extra = format!("extra={url}");
    let named = t.path("named");
    let o = cairn(
        &t,
        &[
            "build",
            "--build-context",
            &extra,
            "-o",
            &format!("type=local,dest={}", out.display()),
            named.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out.join("named.txt")), "from the tarball\n");
    let o = cairn(&t, &["build", &format!("http://127.0.0.1:{}/missing.tar", server.port)]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Cannot download the build context"), "{}", stderr(&o));
}

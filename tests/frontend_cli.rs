//! Issue 17, external frontends: the Python example frontend builds, caches and reports
//! errors at the spec's line; `# syntax=` finds a frontend on PATH; hostile frontends
//! (invalid JSON, cyclic and dangling Definitions, 100 MB of output, one that hangs, one
//! that tries the network or writes the context) fail clearly; every message exchanged
//! validates against the protocol's JSON Schemas; `--ir` reads the JSON form.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::build_cli::{counts, setup, stderr, summary, Tmp, BIN};

const SPEC_FRONTEND: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/frontends/cairn-frontend-spec");
const SCHEMAS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/ir-spec/schema");

/// Runs cairn with `t/bin` first on PATH and `env` set.
fn cairn_env(t: &Tmp, args: &[&str], env: &[(&str, &str)]) -> Output {
    let path = format!("{}:{}", t.path("bin").display(), std::env::var("PATH").unwrap_or_default());
    let mut c = Command::new(BIN);
    c.args(args).env("CAIRN_ROOT", t.path("store")).env("PATH", path).stdin(Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run cairn")
}

/// Writes an executable `t/bin/NAME`.
fn install(t: &Tmp, name: &str, text: &str) -> PathBuf {
    t.write(&format!("bin/{name}"), text);
    let p = t.path(&format!("bin/{name}"));
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// The example frontend, wrapped so that every line it reads and writes is recorded in
/// `t/log/in.jsonl` and `t/log/out.jsonl`.
fn install_spec_frontend(t: &Tmp) {
    std::fs::create_dir_all(t.path("log")).unwrap();
    let log = t.path("log");
    install(
        t,
        "cairn-frontend-spec",
        &format!("#!/bin/sh\ntee -a {log}/in.jsonl | {SPEC_FRONTEND} | tee -a {log}/out.jsonl\n", log = log.display()),
    );
}

fn build_spec(t: &Tmp, spec: &str, extra: &[&str]) -> Output {
    let spec = t.path(&format!("ctx/{spec}"));
    let ctx = t.path("ctx");
    let mut args = vec!["build", "--progress", "rawjson", "-f", spec.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(ctx.to_str().unwrap());
    cairn_env(t, &args, &[])
}

const SPEC: &str = "# syntax=spec\n# A spec built by cairn-frontend-spec.\nbase: busybox\ninstall: echo >> /etc/installed\npackages: curl jq\nfile: hello.txt /srv/hello.txt\nuser: 1000\nentrypoint: [\"/bin/cat\", \"/srv/hello.txt\"]\n";

#[test]
fn issue17_python_frontend_builds_caches_and_reports_errors_at_the_line() {
    let t = setup("fe-python");
    install_spec_frontend(&t);
    t.write("ctx/image.spec", SPEC);
    t.write("ctx/hello.txt", "hello from a spec\n");
    let out = t.path("out");
    let o = build_spec(&t, "image.spec", &["-t", "spec:1", "-o", &format!("type=local,dest={}", out.display())]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("srv/hello.txt")).unwrap(), "hello from a spec\n");
    assert_eq!(std::fs::read_to_string(out.join("etc/installed")).unwrap(), "curl jq\n");
    assert!(out.join("bin/busybox").exists(), "the base image's files are there");
    let inspect = crate::build_cli::cairn(&t, &["inspect", "spec:1"]);
    let config: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let c = &config[0]["Config"];
    assert_eq!(c["User"], "1000");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/bin/cat", "/srv/hello.txt"]));
    // ENV came from the base image, through the frontend's resolve_image_config query.
    assert!(c["Env"][0].as_str().unwrap().starts_with("PATH=/usr/local/sbin"), "{c}");

    // Every message both ways validates against its schema.
    let lines = |f: &str| -> Vec<Value> {
        let text = std::fs::read_to_string(t.path(&format!("log/{f}"))).unwrap();
        text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let (sent, received) = (lines("in.jsonl"), lines("out.jsonl"));
    assert_eq!(sent.iter().map(|m| m["type"].as_str().unwrap()).collect::<Vec<_>>(), ["request", "image_config"]);
    assert_eq!(
        received.iter().map(|m| m["type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["resolve_image_config", "result"]
    );
    assert!(sent[1]["digest"].as_str().unwrap().starts_with("sha256:"), "{}", sent[1]);
    for m in sent.iter().chain(&received) {
        check_schema(m);
    }

    // `cairn compile` runs the frontend too and prints its Definition.
    let (spec, ctx) = (t.path("ctx/image.spec"), t.path("ctx"));
    let o = cairn_env(&t, &["compile", "--format", "json", "-f", spec.to_str().unwrap(), ctx.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let def: Value = serde_json::from_slice(&o.stdout).unwrap();
    let descriptions: Vec<&str> =
        def["vertices"].as_array().unwrap().iter().map(|v| v["meta"]["description"].as_str().unwrap()).collect();
    assert!(descriptions.contains(&"COPY hello.txt /srv/hello.txt"), "{descriptions:?}");

    // A second build is all cached.
    let o = build_spec(&t, "image.spec", &["-t", "spec:1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(counts(&summary(&o)), (0, 2), "{}", stderr(&o));

    // A warning from the frontend is shown as one, at its place, and the build goes on.
    t.write("ctx/root.spec", &SPEC.replace("user: 1000\n", ""));
    let o = build_spec(&t, "root.spec", &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("root.spec:3:1: The image runs as root: give it a `user`"), "{}", stderr(&o));

    // An error in the spec: the frontend's diagnostic, shown at the spec's file and line.
    t.write("ctx/bad.spec", "# syntax=spec\nbase: busybox\n\n  pakages: curl\n");
    let o = build_spec(&t, "bad.spec", &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("bad.spec:4:3: Unknown key `pakages` (expected one of base, install, packages, file, user, entrypoint)\n4 |   pakages: curl\n  |   ^"),
        "{err}"
    );
}

/// Validates a protocol message against the schema its `type` names (the Definition
/// schema bundled into the result's, as its `$id` says).
fn check_schema(m: &Value) {
    let name = match m["type"].as_str().unwrap() {
        "request" => "request",
        "image_config" => "image-config",
        "resolve_image_config" => "resolve-image-config",
        "result" => "result",
        other => panic!("unknown message type {other}"),
    };
    let mut schema = read_schema(name);
    schema["$defs"] = serde_json::json!({ "definition": read_schema("definition") });
    let v = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema {name}: {e}"));
    let errors: Vec<String> = v.iter_errors(m).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{name} message does not validate: {errors:?}\n{m}");
}

fn read_schema(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(Path::new(SCHEMAS).join(format!("{name}.schema.json"))).unwrap())
        .unwrap()
}

#[test]
fn issue17_syntax_selects_a_frontend_on_path_and_an_unknown_one_fails() {
    let t = Tmp::new("fe-syntax");
    // A frontend that names what it was given, as an error diagnostic.
    install(
        &t,
        "cairn-frontend-echo",
        "#!/usr/bin/env python3\nimport json, sys\nreq = json.loads(sys.stdin.readline())\n\
print(json.dumps({'type': 'result', 'protocol': 1, 'diagnostics': [{'severity': 'error', 'message': 'echo got %s %s %s' % (req['file'].rsplit('/', 1)[1], req['build_args'], req['options'])}]}))\n",
    );
    t.write("ctx/Dockerfile", "# syntax=echo\nFROM busybox\n");
    let ctx = t.path("ctx");
    let o = cairn_env(&t, &["build", "--build-arg", "A=1", "--frontend-opt", "k=v", ctx.to_str().unwrap()], &[]);
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("echo got Dockerfile {'A': '1'} {'k': 'v'}"), "{err}");

    t.write("ctx/Dockerfile", "# syntax=nosuch\nFROM busybox\n");
    let o = cairn_env(&t, &["build", ctx.to_str().unwrap()], &[]);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(
        err.contains("Frontend `# syntax=nosuch`") && err.contains("no executable `cairn-frontend-nosuch` on PATH"),
        "{err}"
    );
    let o = cairn_env(&t, &["build", "--frontend", "./no/such/frontend", ctx.to_str().unwrap()], &[]);
    assert!(stderr(&o).contains("no executable file at `./no/such/frontend`"), "{}", stderr(&o));
    t.write("ctx/Dockerfile", "# syntax=example.com/frontends/x:1\nFROM busybox\n");
    let o = cairn_env(&t, &["build", ctx.to_str().unwrap()], &[]);
    assert!(stderr(&o).contains("cairn runs frontends as executables, not images"), "{}", stderr(&o));
}

/// Builds the context with the frontend `script` (Python) and returns stderr; the build
/// must fail.
fn hostile(t: &Tmp, script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let exe = install(t, "hostile", &format!("#!/usr/bin/env python3\nimport json, sys, os\n{script}"));
    std::fs::create_dir_all(t.path("ctx")).unwrap();
    let mut a = vec!["build", "--frontend", exe.to_str().unwrap()];
    a.extend_from_slice(args);
    let ctx = t.path("ctx");
    a.push(ctx.to_str().unwrap());
    let o = cairn_env(t, &a, env);
    let err = stderr(&o);
    assert!(!o.status.success(), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

const RESULT: &str = "def result(d):\n    print(json.dumps({'type': 'result', 'protocol': 1, 'definition': d}), flush=True)\n\
SCRATCH = {'inputs': [], 'op': {'Source': 'Scratch'}}\n\
def mkdir_on(v):\n    return {'inputs': [{'vertex': v, 'index': 0}], 'op': {'File': {'actions': [{'base': {'Input': 0}, 'kind': {'Mkdir': {'path': '/x', 'mode': 493, 'make_parents': True}}}]}}}\n\
def definition(vs, root):\n    return {'version': 2, 'vertices': [{'vertex': v} for v in vs], 'outputs': [{'platform': {'os': 'linux', 'architecture': 'amd64', 'variant': ''}, 'root': {'vertex': root, 'index': 0}, 'config': {'architecture': 'amd64', 'os': 'linux'}}]}\n\
sys.stdin.readline()\n";

#[test]
fn issue17_hostile_frontends_fail_clearly() {
    let t = Tmp::new("fe-hostile");
    let err = hostile(&t, "sys.stdin.readline()\nprint('{\"type\": \"result\", oops')\n", &[], &[]);
    assert!(err.contains("wrote an invalid message on line 1 of its output") && err.contains("oops"), "{err}");

    let err = hostile(&t, &format!("{RESULT}result(definition([mkdir_on(1), mkdir_on(0)], 1))\n"), &[], &[]);
    assert!(err.contains("returned an invalid Definition: The Definition has a cycle: vertex 0 → 1 → 0"), "{err}");

    let err = hostile(&t, &format!("{RESULT}result(definition([SCRATCH, mkdir_on(5)], 1))\n"), &[], &[]);
    assert!(
        err.contains("returned an invalid Definition: Vertex 1: input names vertex 5, and there are only 2"),
        "{err}"
    );
    // Dangling by digest: a vertex that names a digest no entry has.
    let dangling = format!(
        "{RESULT}v = mkdir_on(0)\nv['inputs'] = [{{'digest': 'sha256:' + '0' * 64, 'index': 0}}]\nresult(definition([SCRATCH, v], 1))\n"
    );
    let err = hostile(&t, &dangling, &[], &[]);
    assert!(err.contains("Vertex 1: input `sha256:0000") && err.contains("is not defined before it"), "{err}");

    let err = hostile(&t, "sys.stdin.readline()\nsys.stdout.write('x' * 100_000_000)\n", &[], &[]);
    assert!(err.contains("wrote more than 67108864 bytes on stdout"), "{err}");

    // A hung frontend is killed with what it started (its process group). A shell
    // script, which starts its child at once.
    let pidfile = t.path("sleep.pid");
    let exe = install(&t, "hang", &format!("#!/bin/sh\nsleep 600 &\necho $! > {}\nwait\n", pidfile.display()));
    let ctx = t.path("ctx");
    let o = cairn_env(
        &t,
        &["build", "--frontend", exe.to_str().unwrap(), "--frontend-timeout", "2", ctx.to_str().unwrap()],
        &[],
    );
    let err = stderr(&o);
    assert!(!o.status.success() && err.contains("did not finish within 2 s"), "{err}");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(stat.is_empty() || stat.contains(") Z "), "the frontend's child `sleep` is still running: {stat}");
    let err = hostile(&t, "import time\ntime.sleep(600)\n", &[], &[("CAIRN_FRONTEND_TIMEOUT", "0.5")]);
    assert!(err.contains("did not finish within 0.5 s"), "{err}");

    let err = hostile(&t, "sys.exit(3)\n", &[], &[]);
    assert!(err.contains("exited (exit status: 3) without a result message"), "{err}");
}

/// A frontend that reports, as its error, whether it reached a server on this machine,
/// whether it could write the context, and which processes it sees.
#[test]
fn issue17_frontend_has_no_network_and_a_read_only_context() {
    let t = Tmp::new("fe-confined");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let probe = format!(
        "import socket\nreq = json.loads(sys.stdin.readline())\nout = []\n\
try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n    out.append('network: connected')\n\
except OSError as e:\n    out.append('network: %s' % e.strerror)\n\
try:\n    open(os.path.join(req['context'], 'written'), 'w').close()\n    out.append('context: written')\n\
except OSError as e:\n    out.append('context: %s' % e.strerror)\n\
out.append('pid %d sees %d' % (os.getpid(), len([p for p in os.listdir('/proc') if p.isdigit()])))\n\
print(json.dumps({{'type': 'result', 'protocol': 1, 'diagnostics': [{{'severity': 'error', 'message': ', '.join(out)}}]}}))\n"
    );
    let err = hostile(&t, &probe, &[], &[]);
    assert!(err.contains("network: Network is unreachable, context: Read-only file system"), "{err}");
    // Its own PID namespace: it is PID 1 and its /proc lists only itself.
    assert!(err.contains("pid 1 sees 1"), "{err}");
    assert!(!t.path("ctx/written").exists());
    let err = hostile(&t, &probe, &["--allow", "frontend.network"], &[]);
    assert!(err.contains("network: connected, context: Read-only file system"), "{err}");
}

/// `cairn build --ir` reads the JSON form too (here from `cairn compile --format json`,
/// which validates against the Definition schema), and builds the same image.
#[test]
fn issue17_ir_accepts_json_and_it_matches_the_schema() {
    let t = setup("fe-ir-json");
    t.write("ctx/Dockerfile", "FROM busybox\nRUN echo hi > /hi\n");
    let ctx = t.path("ctx");
    let o = cairn_env(&t, &["compile", "--format", "json", ctx.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let def: Value = serde_json::from_slice(&o.stdout).unwrap();
    let v = jsonschema::validator_for(&read_schema("definition")).unwrap();
    let errors: Vec<String> = v.iter_errors(&def).map(|e| format!("{e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{errors:?}");
    std::fs::write(t.path("def.json"), &o.stdout).unwrap();
    let out = t.path("out");
    let (ir, dest) = (t.path("def.json"), format!("type=local,dest={}", out.display()));
    let o = cairn_env(&t, &["build", "--ir", ir.to_str().unwrap(), "-o", &dest, ctx.to_str().unwrap()], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(out.join("hi")).unwrap(), "hi\n");
    std::fs::write(t.path("bad.json"), "{\"version\": 2, \"vertices\": [}").unwrap();
    let o = cairn_env(&t, &["build", "--ir", t.path("bad.json").to_str().unwrap(), ctx.to_str().unwrap()], &[]);
    assert!(stderr(&o).contains("Cannot load IR file") && stderr(&o).contains("JSON: "), "{}", stderr(&o));
}

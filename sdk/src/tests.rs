//! Unit tests of the builder: dedup by digest, digests independent of construction order,
//! the shapes of the ops it makes, and the errors it returns instead of panicking.

use cairn_ir::{FileActionKind, FileRef, MountKind, Op, Platform, SourceOp, VertexMeta};

use crate::{diff, merge, Build, CopyOpts, ErrorKind, Mount, State};

fn amd64() -> Platform {
    Platform::new("linux", "amd64", "")
}

fn busybox() -> State {
    State::image_with("busybox", crate::ImageOpts { platform: Some(amd64()), ..Default::default() }).unwrap()
}

#[test]
fn equal_vertices_made_twice_are_one_entry_and_the_raw_graph_keeps_both() {
    let a = busybox().run_shell("make").root().unwrap();
    let b = busybox().run_shell("make").root().unwrap();
    let m = merge(&[a.clone(), b.clone()]).unwrap();
    let mut build = Build::new();
    build.output(&m, Default::default());
    // Raw: two images, two execs, the merge.
    assert_eq!(build.graph().nodes.len(), 5);
    let def = build.definition().unwrap();
    assert_eq!(def.vertices.len(), 3);
    assert_eq!(a.digest(), b.digest());
    let Op::Merge(_) = &def.vertices[2].vertex.op else { panic!("{:?}", def.vertices[2]) };
    assert_eq!(def.vertices[2].vertex.inputs[0], def.vertices[2].vertex.inputs[1]);
}

#[test]
fn the_definition_does_not_depend_on_the_order_states_were_made() {
    let make = |context_first: bool| {
        let (ctx, base) = if context_first {
            let c = State::local("context", Default::default()).unwrap();
            (c, busybox())
        } else {
            let b = busybox();
            (State::local("context", Default::default()).unwrap(), b)
        };
        let s = base.copy(&ctx, "/src", "/app/").unwrap().run_shell("make -C /app").root().unwrap();
        cairn_ir::encode_definition(&s.definition().unwrap())
    };
    assert_eq!(make(true), make(false));
    // And a known digest: a change of the encoding or of the builder's defaults shows here.
    let d = busybox().digest().unwrap();
    let same = cairn_ir::encode::vertex_digest_of(
        &[],
        &Op::Source(SourceOp::Image { reference: "docker.io/library/busybox:latest".into(), platform: amd64() }),
    );
    assert_eq!(d, same);
}

#[test]
fn exec_mounts_inputs_and_outputs() {
    let ctx = State::local("context", Default::default()).unwrap();
    let out = busybox()
        .dir("/src")
        .run(["make"])
        .mount("/ctx", Mount::bind(&ctx).selector("/app"))
        .mount("again", Mount::bind(&ctx))
        .mount("/cache", Mount::cache("c").source(&ctx))
        .mount("/tmp", Mount::tmpfs(1 << 20))
        .mount("/run/secrets/s", Mount::secret("s").required(true))
        .mount("/out", Mount::bind(&State::scratch()).readonly(false).output())
        .secret_env("tok", "TOKEN", false)
        .finish()
        .unwrap();
    let node = &out.root.out.as_ref().unwrap().node;
    let Op::Exec(e) = &node.op else { panic!() };
    // One input per mount with a source, in order, even for the same state.
    assert_eq!(node.inputs.len(), 4);
    let targets: Vec<(&str, Option<u32>, Option<u32>)> =
        e.mounts.iter().map(|m| (m.target.as_str(), m.input, m.output)).collect();
    assert_eq!(
        targets,
        [
            ("/", Some(0), Some(0)),
            ("/ctx", Some(1), None),
            ("/src/again", Some(2), None),
            ("/cache", Some(3), None),
            ("/tmp", None, None),
            ("/run/secrets/s", None, None),
            ("/out", None, Some(1)),
        ]
    );
    assert_eq!(e.meta.cwd, "/src");
    assert_eq!(e.platform, Some(amd64()));
    assert!(matches!(e.mounts[5].kind, MountKind::Secret { required: true, .. }));
    assert_eq!(out.mount("/out").unwrap().out.as_ref().unwrap().index, 1);
    let def = out.mount("/out").unwrap().definition().unwrap();
    assert_eq!(def.outputs[0].root.index, 1);
}

#[test]
fn runs_share_one_environment_until_it_changes() {
    let base = busybox().env("A", "1").unwrap();
    let env_of = |s: &State| match &s.out.as_ref().unwrap().node.op {
        Op::Exec(e) => e.meta.env.clone(),
        _ => panic!(),
    };
    let one = base.run(["a"]).root().unwrap();
    let two = one.run(["b"]).root().unwrap();
    assert_eq!(env_of(&one), env_of(&two));
    assert_eq!(env_of(&one).digest(), env_of(&two).digest());
    let three = two.run(["c"]).env("B", "2").root().unwrap();
    assert_eq!(&env_of(&three).to_vec()[1..], ["A=1".to_string(), "B=2".into()]);
    assert_eq!(three.get_env("B"), None, "an exec's own variables stay with it");
}

#[test]
fn file_actions_chain_in_one_vertex_and_share_inputs() {
    let ctx = State::local("context", Default::default()).unwrap();
    let s = busybox()
        .dir("/app")
        .file()
        .copy(&ctx, "a", "./", CopyOpts::default())
        .copy(&ctx, "/b", "/x/", CopyOpts { allow_wildcard: true, ..Default::default() })
        .mkdir("d", Default::default())
        .rm("/tmp/t", crate::RmOpts { allow_not_found: true, ..Default::default() })
        .symlink("/app/d", "/d", None)
        .describe("files")
        .state()
        .unwrap();
    let node = &s.out.as_ref().unwrap().node;
    assert_eq!(node.inputs.len(), 2, "the base and the context, once");
    let Op::File(f) = &node.op else { panic!() };
    assert_eq!(f.actions[0].base, FileRef::Input(0));
    assert_eq!(f.actions[1].base, FileRef::Action(0));
    let FileActionKind::Copy(c) = &f.actions[0].kind else { panic!() };
    assert_eq!(
        (c.src, c.src_paths.as_slice(), c.dest.as_str()),
        (FileRef::Input(1), &["/a".to_string()][..], "/app/./")
    );
    let FileActionKind::Mkdir { path, .. } = &f.actions[2].kind else { panic!() };
    assert_eq!(path, "/app/d");
    // On the empty tree: no input at all.
    let f = State::scratch().mkfile("/x", "data").unwrap();
    let node = &f.out.as_ref().unwrap().node;
    assert!(node.inputs.is_empty());
    let Op::File(op) = &node.op else { panic!() };
    assert_eq!(op.actions[0].base, FileRef::Scratch);
}

#[test]
fn merge_and_diff_of_the_empty_tree() {
    let b = busybox();
    assert!(merge(&[State::scratch(), State::scratch()]).unwrap().is_scratch());
    assert_eq!(merge(&[State::scratch(), b.clone()]).unwrap().digest(), b.digest());
    assert_eq!(diff(&State::scratch(), &b).unwrap().digest(), b.digest());
    let d = diff(&b, &b.mkdir("/x").unwrap()).unwrap();
    assert!(matches!(d.out.as_ref().unwrap().node.op, Op::Diff(_)));
    // An empty tree as an output is a scratch vertex.
    let def = State::scratch().definition().unwrap();
    assert!(matches!(def.vertices[0].vertex.op, Op::Source(SourceOp::Scratch)));
}

#[test]
fn misuse_is_an_error_naming_what_is_wrong() {
    let b = busybox();
    let cases: Vec<(crate::Error, ErrorKind, &str)> = vec![
        (State::image("a//b").unwrap_err(), ErrorKind::Reference, "Invalid image reference `a//b`"),
        (State::local("", Default::default()).unwrap_err(), ErrorKind::Source, "needs a name"),
        (State::http("ftp://x/y", Default::default()).unwrap_err(), ErrorKind::Source, "`ftp://x/y`"),
        (State::git(" ", Default::default()).unwrap_err(), ErrorKind::Source, "needs a remote"),
        (b.clone().env("A=B", "x").unwrap_err(), ErrorKind::Env, "`A=B`"),
        (b.run(Vec::<String>::new()).root().unwrap_err(), ErrorKind::Exec, "argument list is empty"),
        (b.run(["x"]).env("", "v").root().unwrap_err(), ErrorKind::Env, "``"),
        (
            b.run(["x"]).mount("/a", Mount::tmpfs(0)).mount("/a", Mount::cache("c")).root().unwrap_err(),
            ErrorKind::Mount,
            "Two mounts target `/a`",
        ),
        (
            b.run(["x"]).mount("/a", Mount::bind(&b).output()).root().unwrap_err(),
            ErrorKind::Mount,
            "only a read-write bind mount",
        ),
        (b.run(["x"]).secret_env("s", "", true).root().unwrap_err(), ErrorKind::Exec, "secret `s`"),
        (b.file().state().unwrap_err(), ErrorKind::File, "at least one action"),
        (b.mkdir("").unwrap_err(), ErrorKind::File, "`mkdir` needs a path"),
        (b.copy(&b, "", "/x").unwrap_err(), ErrorKind::File, "needs a source path"),
        (
            b.file()
                .copy(&b, "/a", "/b", CopyOpts { mode_str: Some("u+q".into()), ..Default::default() })
                .state()
                .unwrap_err(),
            ErrorKind::File,
            "`copy` to `/b`",
        ),
        (merge(&[]).unwrap_err(), ErrorKind::Merge, "at least one state"),
    ];
    for (e, kind, text) in cases {
        assert_eq!(e.kind, kind, "{e}");
        assert!(e.to_string().contains(text), "`{e}` lacks `{text}`");
    }
    // A location naming a source file the build does not hold.
    let meta = VertexMeta {
        locations: vec![cairn_ir::SourceLocation { source: 3, start_line: 1, end_line: 1 }],
        ..Default::default()
    };
    let s = b.run(["x"]).meta(meta).root().unwrap();
    assert_eq!(s.definition().unwrap_err().kind, ErrorKind::Definition);
    // Hand-made graphs: a forward input is refused, not a panic later.
    let mut g = crate::Graph::default();
    assert!(g.add(Op::Source(SourceOp::Scratch), vec![crate::graph::Ref::new(0)], VertexMeta::default()).is_err());
}

#[test]
fn a_chain_of_30000_steps_builds_walks_and_drops_without_recursion() {
    let mut s = State::scratch_source(VertexMeta::default());
    for i in 0..30_000 {
        s = s.file().mkdir(&format!("/d{}", i % 7), Default::default()).state().unwrap();
    }
    let mut b = Build::new();
    b.output_for(amd64(), &s, Default::default());
    assert_eq!(b.graph().nodes.len(), 30_001);
    assert_eq!(b.definition().unwrap().vertices.len(), 30_001);
    drop(b);
    drop(s);
}

#[test]
fn vertices_without_a_description_say_what_they_do() {
    let s = busybox().dir("/app").file().mkdir("d", Default::default()).mkfile("d/f", "x", Default::default());
    let s = s.state().unwrap().run_shell("make").root().unwrap();
    let named = s.run(["true"]).describe("check").root().unwrap();
    let def = named.definition().unwrap();
    let d: Vec<&str> = def.vertices.iter().map(|v| v.meta.description.as_str()).collect();
    assert_eq!(
        d,
        ["image docker.io/library/busybox:latest", "mkdir /app/d, mkfile /app/d/f", "/bin/sh -c make", "check"]
    );
}

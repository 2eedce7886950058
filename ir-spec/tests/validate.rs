//! Loading rejects every structural violation of SPEC.md §4 with an error naming the vertex.

use cairn_ir::*;
use proptest::prelude::*;

fn entry(vertex: Vertex) -> VertexEntry {
    VertexEntry { digest: vertex_digest(&vertex), vertex, meta: VertexMeta::default() }
}

fn scratch() -> Vertex {
    Vertex { inputs: vec![], op: Op::Source(SourceOp::Scratch) }
}

fn exec_on(root: Digest, index: u32) -> Vertex {
    Vertex {
        inputs: vec![Input { digest: root, index }],
        op: Op::Exec(ExecOp {
            meta: ExecMeta {
                args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
                env: vec!["PATH=/bin".to_string()].into(),
                cwd: "/".into(),
                user: String::new(),
                hostname: String::new(),
            },
            network: NetworkMode::Default,
            security: SecurityMode::Sandbox,
            mounts: vec![Mount {
                input: Some(0),
                selector: String::new(),
                target: "/".into(),
                readonly: false,
                output: Some(0),
                kind: MountKind::Bind,
            }],
            secret_env: vec![],
            platform: None,
        }),
    }
}

fn def(vertices: Vec<VertexEntry>) -> Definition {
    let root = vertices.last().map(|e| Input { digest: e.digest, index: 0 });
    Definition {
        version: FORMAT_VERSION,
        outputs: root
            .into_iter()
            .map(|root| Output { platform: Platform::host(), root, config: ImageConfig::default() })
            .collect(),
        vertices,
        sources: vec![],
    }
}

#[test]
fn a_valid_chain_loads() {
    let s = entry(scratch());
    let e = entry(exec_on(s.digest, 0));
    let d = def(vec![s, e]);
    assert_eq!(decode_definition(&encode_definition(&d)).unwrap(), d);
}

/// Version 2 only appended `CopyAction::mode_str`, omitted when absent: a version 1 file
/// loads, a copy without it encodes (and digests) as in version 1, and a mode that does
/// not parse is refused at load.
#[test]
fn version_1_loads_and_mode_str_is_checked() {
    let mut d = def(vec![entry(scratch())]);
    d.version = 1;
    assert_eq!(decode_definition(&encode_definition(&d)).unwrap(), d);

    let s = entry(scratch());
    let copy = |mode_str: Option<&str>| CopyAction {
        mode_str: mode_str.map(str::to_string),
        ..CopyAction::new(FileRef::Input(0), vec!["/a".into()], "/b")
    };
    let bytes = encode::to_canonical(&copy(None));
    assert!(!bytes.windows(8).any(|w| w == b"mode_str"), "absent, the field is not encoded");
    let file = |c: CopyAction| Vertex {
        inputs: vec![Input { digest: s.digest, index: 0 }],
        op: Op::File(FileOp { actions: vec![FileAction { base: FileRef::Input(0), kind: FileActionKind::Copy(c) }] }),
    };
    let good = def(vec![s.clone(), entry(file(copy(Some("u=rwX,go=rX"))))]);
    assert_eq!(decode_definition(&encode_definition(&good)).unwrap(), good);
    let bad = def(vec![s.clone(), entry(file(copy(Some("u+q"))))]);
    let err = decode_definition(&encode_definition(&bad)).unwrap_err();
    assert!(matches!(err, LoadError::Invalid { index: 1, .. }) && err.to_string().contains("`u+q`"), "{err}");
}

#[test]
fn wrong_version_is_rejected() {
    let mut d = def(vec![entry(scratch())]);
    d.version = 99;
    let err = decode_definition(&encode_definition(&d)).unwrap_err();
    assert_eq!(err, LoadError::Version { found: 99, supported: FORMAT_VERSION });
    assert!(err.to_string().contains("version 99"));
}

#[test]
fn tampered_digest_is_rejected() {
    let mut s = entry(scratch());
    s.digest = Digest::of(b"something else");
    let err = validate(&def(vec![s])).unwrap_err();
    assert!(matches!(err, LoadError::DigestMismatch { index: 0, .. }), "{err}");
}

#[test]
fn input_defined_later_or_missing_is_rejected() {
    // Topological order is required: a reference forward (or a cycle) is an unknown input.
    let s = entry(scratch());
    let e = entry(exec_on(s.digest, 0));
    let err = validate(&def(vec![e, s])).unwrap_err();
    assert!(matches!(err, LoadError::UnknownInput { index: 0, .. }), "{err}");
    assert!(err.to_string().contains("not defined before it"));
}

#[test]
fn output_index_out_of_range_is_rejected() {
    let s = entry(scratch());
    let e = entry(exec_on(s.digest, 3));
    let err = validate(&def(vec![s, e])).unwrap_err();
    assert!(matches!(err, LoadError::OutOfRange { index: 1, .. }), "{err}");
}

#[test]
fn duplicate_vertices_are_rejected() {
    let err = validate(&def(vec![entry(scratch()), entry(scratch())])).unwrap_err();
    assert!(matches!(err, LoadError::Duplicate { index: 1, .. }), "{err}");
}

#[test]
fn exec_without_root_mount_is_rejected() {
    let s = entry(scratch());
    let mut v = exec_on(s.digest, 0);
    if let Op::Exec(e) = &mut v.op {
        e.mounts[0].target = "/data".into();
    }
    let err = validate(&def(vec![s, entry(v)])).unwrap_err();
    assert!(err.to_string().contains("must target `/`"), "{err}");
}

#[test]
fn issue13_exec_with_a_relative_cwd_is_rejected() {
    for cwd in ["work", "", "./app"] {
        let s = entry(scratch());
        let mut v = exec_on(s.digest, 0);
        if let Op::Exec(e) = &mut v.op {
            e.meta.cwd = cwd.into();
        }
        let err = validate(&def(vec![s, entry(v)])).unwrap_err();
        assert!(matches!(err, LoadError::Invalid { index: 1, .. }), "{err}");
        assert!(err.to_string().contains("is not absolute"), "{err}");
    }
}

#[test]
fn file_action_forward_reference_is_rejected() {
    let s = entry(scratch());
    let v = Vertex {
        inputs: vec![Input { digest: s.digest, index: 0 }],
        op: Op::File(FileOp {
            actions: vec![FileAction {
                base: FileRef::Action(0),
                kind: FileActionKind::Rm { path: "/x".into(), allow_not_found: true, allow_wildcard: false },
            }],
        }),
    };
    let err = validate(&def(vec![s, entry(v)])).unwrap_err();
    assert!(matches!(err, LoadError::OutOfRange { index: 1, .. }), "{err}");
}

#[test]
fn diff_needs_two_inputs() {
    let s = entry(scratch());
    let v = Vertex { inputs: vec![Input { digest: s.digest, index: 0 }], op: Op::Diff(DiffOp {}) };
    let err = validate(&def(vec![s, entry(v)])).unwrap_err();
    assert!(err.to_string().contains("exactly two inputs"), "{err}");
}

#[test]
fn digests_are_stable_across_runs() {
    // A fixed vector: if this changes, the encoding changed and SPEC.md needs a new version.
    assert_eq!(
        vertex_digest(&scratch()).to_string(),
        "sha256:".to_string() + &Digest::of(&encode::to_canonical(&scratch())).hex()
    );
    let a = vertex_digest(&exec_on(vertex_digest(&scratch()), 0));
    let b = vertex_digest(&exec_on(vertex_digest(&scratch()), 0));
    assert_eq!(a, b);
    assert_ne!(a, vertex_digest(&exec_on(vertex_digest(&scratch()), 1)));
}

fn exec_with_env(root: Digest, env: Env) -> Vertex {
    let mut v = exec_on(root, 0);
    if let Op::Exec(e) = &mut v.op {
        e.meta.env = env;
    }
    v
}

/// Version 4 (§4.2): execs sharing one chain load back equal, the table holds each node
/// once, and an exec's array `env` still encodes as in version 3 (same digest).
#[test]
fn env_chains_round_trip_and_arrays_keep_their_digest() {
    let s = entry(scratch());
    let base = Env::root(vec!["PATH=/bin".into(), "A=1".into()]);
    let e1 = entry(exec_with_env(s.digest, base.with(vec![], vec!["B=2".into()])));
    let e2 = entry(exec_with_env(
        e1.digest,
        base.with(vec!["A".into()], vec!["B=2".into()]).with(vec![], vec!["C=3".into()]),
    ));
    let d = def(vec![s.clone(), e1, e2]);
    assert_eq!(d.env_entries().len(), 4);
    let bytes = encode_definition(&d);
    let back = decode_definition(&bytes).unwrap();
    assert_eq!(back, d);
    assert_eq!(encode_definition(&back), bytes);
    let Op::Exec(e) = &back.vertices[2].vertex.op else { panic!() };
    assert_eq!(e.meta.env.to_vec(), ["PATH=/bin", "B=2", "C=3"]);
    // JSON carries the same table and reads back to the same value.
    assert_eq!(decode_definition_json(&encode_definition_json(&d)).unwrap(), d);
    // An array env is the version 3 encoding: no table, same bytes as before.
    let plain = def(vec![s.clone(), entry(exec_on(s.digest, 0))]);
    assert!(plain.env_entries().is_empty());
    let bytes = encode_definition(&plain);
    assert!(!bytes.windows(4).any(|w| w == b"envs"));
}

/// A table entry that lies about its digest, a parent that comes later, or an exec naming
/// an environment the table lacks: each is refused with a message that names it.
#[test]
fn env_tables_are_checked_on_load() {
    let s = entry(scratch());
    let env = Env::root(vec!["A=1".into()]).with(vec![], vec!["B=2".into()]);
    let e = entry(exec_with_env(s.digest, env));
    let json = String::from_utf8(encode_definition_json(&def(vec![s, e]))).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let load = |v: &serde_json::Value| decode_definition_json(v.to_string().as_bytes()).unwrap_err().to_string();

    let mut tampered = v.clone();
    tampered["envs"][1]["set"][0] = "B=3".into();
    assert!(load(&tampered).contains("env 1: stored digest"), "{}", load(&tampered));

    let mut reversed = v.clone();
    reversed["envs"].as_array_mut().unwrap().reverse();
    assert!(load(&reversed).contains("is not an earlier entry"), "{}", load(&reversed));

    v["envs"].as_array_mut().unwrap().pop();
    assert!(load(&v).contains("is not in the Definition's `envs`"), "{}", load(&v));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_definition(&bytes);
    }

    #[test]
    fn mutated_files_never_panic(pos in 0usize..4096, byte in any::<u8>()) {
        let s = entry(scratch());
        let e = entry(exec_on(s.digest, 0));
        let mut bytes = encode_definition(&def(vec![s, e]));
        let i = pos % bytes.len();
        bytes[i] = byte;
        let _ = decode_definition(&bytes);
    }
}

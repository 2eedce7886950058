//! Encode → decode → encode is byte-identical, and loading rejects broken files.

use cairn_ir::*;

fn sample() -> Definition {
    let scratch = Vertex { inputs: vec![], op: Op::Source(SourceOp::Scratch) };
    let sd = vertex_digest(&scratch);
    let file = Vertex {
        inputs: vec![Input { digest: sd, index: 0 }],
        op: Op::File(FileOp {
            actions: vec![FileAction {
                base: FileRef::Input(0),
                kind: FileActionKind::Mkdir {
                    path: "/app".into(),
                    mode: 0o755,
                    make_parents: true,
                    owner: None,
                    timestamp: None,
                },
            }],
        }),
    };
    let fd = vertex_digest(&file);
    let mut config = ImageConfig { architecture: "amd64".into(), os: "linux".into(), ..Default::default() };
    config.config.working_dir = Some("/app".into());
    config.history.push(History { created_by: Some("WORKDIR /app".into()), ..Default::default() });
    Definition {
        version: FORMAT_VERSION,
        vertices: vec![
            VertexEntry { digest: sd, vertex: scratch, meta: VertexMeta::default() },
            VertexEntry { digest: fd, vertex: file, meta: VertexMeta::default() },
        ],
        outputs: vec![Output {
            platform: Platform::new("linux", "amd64", ""),
            root: Input { digest: fd, index: 0 },
            config,
        }],
        sources: vec![],
    }
}

#[test]
fn encode_decode_encode_is_identical() {
    let def = sample();
    let a = encode_definition(&def);
    let back = decode_definition(&a).unwrap();
    assert_eq!(back, def);
    assert_eq!(encode_definition(&back), a);
}

#[test]
fn truncated_bytes_are_rejected_cleanly() {
    let a = encode_definition(&sample());
    for cut in 0..a.len() {
        let err = decode_definition(&a[..cut]).unwrap_err();
        assert!(matches!(err, LoadError::Malformed(_)), "cut {cut}: {err}");
    }
}

#[test]
fn digest_is_sha256_of_the_canonical_vertex() {
    // §3 spelled out: the borrowing `vertex_digest_of` hashes exactly the bytes of
    // `Vertex { inputs, op }` in canonical form.
    let def = sample();
    for e in &def.vertices {
        let by_bytes = Digest::of(&encode::to_canonical(&e.vertex));
        assert_eq!(vertex_digest(&e.vertex), by_bytes);
        assert_eq!(vertex_digest_of(&e.vertex.inputs, &e.vertex.op), by_bytes);
    }
}

//! Digest properties of the Dockerfile frontend:
//! - the same input gives the same digests on every run;
//! - comments, whitespace, line continuations and keyword case do not change any digest;
//! - a semantic change changes the affected vertex and its dependents, nothing else;
//! - encode → decode → encode of the Definition is byte-identical.

use std::collections::HashSet;

use cairn_compiler::dockerfile::CompileOptions;
use cairn_compiler::graph::Graph;
use cairn_compiler::resolver::NoImages;
use cairn_compiler::{compile_dockerfile, passes};
use cairn_ir::{Definition, Digest, Platform};

fn compile(text: &str) -> Definition {
    let mut o = CompileOptions::new("Dockerfile");
    o.build_platform = Platform::new("linux", "amd64", "");
    let c = compile_dockerfile(text, &o, &NoImages).unwrap_or_else(|e| panic!("{e}"));
    passes::optimize(&c.graph).to_definition()
}

fn digests(d: &Definition) -> Vec<Digest> {
    d.vertices.iter().map(|v| v.digest).collect()
}

const BASE: &str = "FROM busybox AS build
WORKDIR /src
COPY go.mod ./
RUN go mod download
COPY . .
RUN go build -o /app

FROM busybox AS docs
RUN make docs

FROM scratch
COPY --from=build /app /app
COPY --from=docs /docs /docs
CMD [\"/app\"]
";

#[test]
fn same_input_same_digests() {
    let a = compile(BASE);
    for _ in 0..5 {
        assert_eq!(digests(&compile(BASE)), digests(&a));
    }
}

#[test]
fn formatting_does_not_change_digests() {
    let reformatted = "# a comment at the top
from busybox as build
   workdir /src
# between instructions

copy   go.mod   ./
run go mod \\
download
Copy . .
RUN go build -o /app

FROM busybox AS docs
rUn make docs

FROM scratch
COPY --from=build /app /app
COPY --from=docs /docs /docs
cmd [\"/app\"]
";
    assert_eq!(digests(&compile(reformatted)), digests(&compile(BASE)));
    let a = compile(BASE);
    let b = compile(reformatted);
    assert_eq!(a.outputs[0].root, b.outputs[0].root);
}

#[test]
fn a_change_touches_only_the_vertex_and_its_dependents() {
    let a = compile(BASE);
    let b = compile(&BASE.replace("RUN make docs", "RUN make docs html"));
    let da: HashSet<Digest> = digests(&a).into_iter().collect();
    let db: HashSet<Digest> = digests(&b).into_iter().collect();
    // Changed: the docs RUN, the COPY --from=docs that reads it. Everything in the build
    // stage, the scratch source and the first COPY keep their digests.
    let only_a: Vec<&cairn_ir::VertexEntry> = a.vertices.iter().filter(|v| !db.contains(&v.digest)).collect();
    let descr: Vec<&str> = only_a.iter().map(|v| v.meta.description.as_str()).collect();
    assert_eq!(descr, vec!["RUN make docs", "COPY --from=docs /docs /docs"], "changed vertices");
    assert_eq!(a.vertices.len(), b.vertices.len());
    assert_eq!(a.vertices.iter().filter(|v| db.contains(&v.digest)).count(), a.vertices.len() - 2);
    assert!(b.vertices.iter().filter(|v| !da.contains(&v.digest)).count() == 2);
    assert_ne!(a.outputs[0].root, b.outputs[0].root);
}

#[test]
fn encoding_round_trips_byte_identical() {
    for text in [BASE, "FROM scratch\nCOPY <<EOF /x\nhello\nEOF\n"] {
        let d = compile(text);
        let bytes = cairn_ir::encode_definition(&d);
        let back = cairn_ir::decode_definition(&bytes).unwrap();
        assert_eq!(back, d);
        assert_eq!(cairn_ir::encode_definition(&back), bytes);
        // And through the graph again.
        let g = Graph::from_definition(&back);
        assert_eq!(cairn_ir::encode_definition(&g.to_definition()), bytes);
    }
}

/// Issue 11: a comment line inside a `\` continuation is not the step's title.
#[test]
fn issue11_titles_skip_comment_lines_in_continuations() {
    let d = compile("FROM busybox\nRUN apt-get install -y \\\n    # the process tools\n    procps \\\n\n    curl\n");
    let titles: Vec<&str> = d.vertices.iter().map(|v| v.meta.description.as_str()).collect();
    assert!(titles.contains(&"RUN apt-get install -y procps curl"), "{titles:?}");
}

/// Issue 11: `cairn build --network` is the default network of every RUN; a RUN's own
/// `--network` wins. The mode is part of the op, so it changes the digest.
#[test]
fn issue11_default_network_enters_the_ir() {
    let text = "FROM busybox\nRUN echo a\nRUN --network=host echo b\n";
    let mut o = CompileOptions::new("Dockerfile");
    o.build_platform = Platform::new("linux", "amd64", "");
    o.network = cairn_ir::NetworkMode::None;
    let c = compile_dockerfile(text, &o, &NoImages).unwrap_or_else(|e| panic!("{e}"));
    let d = passes::optimize(&c.graph).to_definition();
    let nets: Vec<cairn_ir::NetworkMode> = d
        .vertices
        .iter()
        .filter_map(|v| match &v.vertex.op {
            cairn_ir::Op::Exec(e) => Some(e.network),
            _ => None,
        })
        .collect();
    assert_eq!(nets.len(), 2);
    assert!(nets.contains(&cairn_ir::NetworkMode::None) && nets.contains(&cairn_ir::NetworkMode::Host), "{nets:?}");
    assert_ne!(digests(&d), digests(&compile(text)));
}

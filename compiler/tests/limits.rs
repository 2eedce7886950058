//! Bounded work on hostile inputs (issue 13): deep stage chains, deep substitutions and
//! doubling variables end in a compile error naming the line, or compile, never in a stack
//! overflow or unbounded memory. Times and memory are measured by `bench/limits.sh`, not here.

use cairn_compiler::compile_dockerfile;
use cairn_compiler::dockerfile::CompileOptions;
use cairn_compiler::resolver::NoImages;
use cairn_ir::Platform;

fn compile(text: &str) -> Result<usize, String> {
    let mut o = CompileOptions::new("Dockerfile");
    o.build_platform = Platform::new("linux", "amd64", "");
    compile_dockerfile(text, &o, &NoImages).map(|c| c.graph.nodes.len()).map_err(|e| e.to_string())
}

#[test]
fn issue13_a_2000_stage_from_chain_compiles() {
    let mut text = String::from("FROM scratch AS s0\n");
    for i in 1..2000 {
        text.push_str(&format!("FROM s{} AS s{i}\nLABEL n={i}\n", i - 1));
    }
    compile(&text).unwrap();
}

#[test]
fn issue13_a_deep_copy_from_chain_is_an_error_naming_the_line() {
    let mut text = String::from("FROM scratch AS s0\n");
    for i in 1..2000 {
        text.push_str(&format!("FROM scratch AS s{i}\nCOPY --from=s{} / /\n", i - 1));
    }
    let e = compile(&text).unwrap_err();
    assert!(e.contains("more than 32 deep"), "{e}");
    assert!(e.contains("Dockerfile:"), "{e}");
    // Just under the limit compiles.
    let text: String = text.lines().take(2 * 31 + 1).map(|l| format!("{l}\n")).collect();
    compile(&text).unwrap();
}

#[test]
fn issue13_deeply_nested_substitution_is_an_error_naming_the_line() {
    let word = (0..20_000).rev().fold("x".to_string(), |w, i| format!("${{a{i}:-{w}}}"));
    let e = compile(&format!("FROM scratch\nARG v={word}\n")).unwrap_err();
    assert!(e.contains("Dockerfile:2"), "{e}");
    assert!(e.contains("nest more than 128 deep"), "{e}");
}

#[test]
fn issue13_doubling_args_stop_at_the_word_limit() {
    let mut text = String::from("FROM scratch\nARG a0=ab\n");
    for i in 1..30 {
        text.push_str(&format!("ARG a{i}=${{a{}}}${{a{}}}\n", i - 1, i - 1));
    }
    text.push_str("RUN true\n");
    let e = compile(&text).unwrap_err();
    // a19 is 1 MiB; a20 would be 2 MiB (line 22).
    assert!(e.contains("Dockerfile:22"), "{e}");
    assert!(e.contains("longer than 1048576 bytes"), "{e}");
}

fn exec_envs(text: &str) -> Vec<cairn_ir::Env> {
    let mut o = CompileOptions::new("Dockerfile");
    o.build_platform = Platform::new("linux", "amd64", "");
    let c = compile_dockerfile(text, &o, &NoImages).unwrap_or_else(|e| panic!("{e}"));
    c.graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            cairn_ir::Op::Exec(e) => Some(e.meta.env.clone()),
            _ => None,
        })
        .collect()
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn issue13_runs_share_one_env_until_env_or_arg_changes_it() {
    let envs = exec_envs(
        "FROM scratch AS a\nENV A=1\nRUN one\nRUN two\nARG B=2\nRUN three\nENV A=3\nRUN four\nRUN five\n\
         ARG C=4\nARG C\nRUN six\nFROM a\nRUN seven\n",
    );
    assert_eq!(envs.len(), 7);
    assert_eq!(envs[0], envs[1]);
    assert_eq!(envs[3], envs[4]);
    assert_ne!(envs[2], envs[3]);
    let path = format!("PATH={}", cairn_compiler::dockerfile::DEFAULT_PATH);
    assert_eq!(envs[0].to_vec(), [path.clone(), "A=1".into()]);
    assert_eq!(envs[2].to_vec(), [path.clone(), "A=1".into(), "B=2".into()]);
    assert_eq!(envs[3].to_vec(), [path.clone(), "A=3".into(), "B=2".into()]);
    // `ARG C` without a value takes C out of the environment again.
    assert_eq!(envs[5].to_vec(), [path.clone(), "A=3".into(), "B=2".into()]);
    // A stage built on `a` keeps its ENV, not its ARGs.
    assert_eq!(envs[6].to_vec(), [path, "A=3".into()]);
}

#[test]
fn issue13_an_arg_never_overrides_an_env_and_an_env_overrides_an_arg_in_place() {
    let envs = exec_envs("FROM scratch\nENV A=1\nRUN one\nARG A=2\nARG B=3\nRUN two\nENV B=4\nRUN three\n");
    let path = format!("PATH={}", cairn_compiler::dockerfile::DEFAULT_PATH);
    assert_eq!(envs[0].to_vec(), [path.clone(), "A=1".into()]);
    assert_eq!(envs[1].to_vec(), strings(&[&path, "A=1", "B=3"]));
    assert_eq!(envs[2].to_vec(), strings(&[&path, "A=1", "B=4"]));
}

/// 5,000 ENV+RUN pairs: each exec names its environment by digest and each chain node
/// holds one entry, so the IR grows linearly (written out in full it was 131 MB).
#[test]
fn issue13_env_and_run_pairs_give_an_ir_linear_in_their_number() {
    let mut text = String::from("FROM scratch\n");
    for i in 0..5000 {
        text.push_str(&format!("ENV V{i}={i}\nRUN echo {i}\n"));
    }
    let mut o = CompileOptions::new("Dockerfile");
    o.build_platform = Platform::new("linux", "amd64", "");
    let c = compile_dockerfile(&text, &o, &NoImages).unwrap_or_else(|e| panic!("{e}"));
    let def = c.graph.to_definition();
    let bytes = cairn_ir::encode_definition(&def);
    assert!(bytes.len() < 5_000 * 1_000, "{} bytes", bytes.len());
    let back = cairn_ir::decode_definition(&bytes).unwrap();
    assert_eq!(back, def);
    let last = def.vertices.iter().rev().find_map(|v| match &v.vertex.op {
        cairn_ir::Op::Exec(e) => Some(e.meta.env.to_vec()),
        _ => None,
    });
    let last = last.unwrap();
    assert_eq!(last.len(), 5001);
    assert_eq!(last[5000], "V4999=4999");
}

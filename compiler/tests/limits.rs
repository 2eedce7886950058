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

fn exec_envs(text: &str) -> Vec<std::sync::Arc<[String]>> {
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

#[test]
fn issue13_runs_share_one_env_until_env_or_arg_changes_it() {
    let envs = exec_envs(
        "FROM scratch AS a\nENV A=1\nRUN one\nRUN two\nARG B=2\nRUN three\nENV A=3\nRUN four\nRUN five\n\
         FROM a\nRUN six\n",
    );
    assert_eq!(envs.len(), 6);
    assert!(std::sync::Arc::ptr_eq(&envs[0], &envs[1]));
    assert!(std::sync::Arc::ptr_eq(&envs[3], &envs[4]));
    let path = format!("PATH={}", cairn_compiler::dockerfile::DEFAULT_PATH);
    assert_eq!(&envs[0][..], [path.clone(), "A=1".into()]);
    assert_eq!(&envs[2][..], [path.clone(), "A=1".into(), "B=2".into()]);
    assert_eq!(&envs[3][..], [path.clone(), "A=3".into(), "B=2".into()]);
    // A stage built on `a` keeps its ENV, not its ARGs.
    assert_eq!(&envs[5][..], [path, "A=3".into()]);
}

//! Looking inside images built by the test: `cairn history`, `cairn inspect` (checked field
//! by field against the config and manifest the build wrote), `cairn images` filters and
//! formats, `cairn analyze` against layers whose contents the test knows, and `cairn build
//! --timeline` pictures opened in headless Chromium.

use serde_json::Value;

use crate::build_cli::{build, cairn, setup, stderr, Tmp};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn ok(t: &Tmp, args: &[&str]) -> String {
    let o = cairn(t, args);
    assert!(o.status.success(), "cairn {args:?} failed:\n{}", stderr(&o));
    stdout(&o)
}

fn json_lines(s: &str) -> Vec<Value> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}"))).collect()
}

/// Builds `FROM busybox` + known steps as `hist:1`, writing an OCI layout; returns the
/// config and manifest the build wrote and its metadata.
fn built_image(t: &Tmp) -> (Value, Value, Value) {
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\nENV A=1\nRUN head -c 3000 /dev/zero > /f\nWORKDIR /w\nLABEL x=y\nCMD [\"cat\", \"/f\"]\n",
    );
    let layout = t.path("layout");
    let meta = t.path("meta.json");
    let (o, _) = build(
        t,
        &[
            "-t",
            "hist:1",
            "-o",
            &format!("type=oci,dest={},tar=false", layout.display()),
            "--metadata-file",
            meta.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |rel: &str| -> Value { serde_json::from_slice(&std::fs::read(layout.join(rel)).unwrap()).unwrap() };
    let blob = |d: &str| read(&format!("blobs/sha256/{}", d.strip_prefix("sha256:").unwrap()));
    let index = read("index.json");
    let manifest = blob(index["manifests"][0]["digest"].as_str().unwrap());
    let config = blob(manifest["config"]["digest"].as_str().unwrap());
    let meta: Value = serde_json::from_slice(&std::fs::read(meta).unwrap()).unwrap();
    (config, manifest, meta)
}

#[test]
fn history_inspect_and_images_in_docker_shapes() {
    let t = setup("inspect");
    let (config, _manifest, meta) = built_image(&t);
    let image_id = meta["containerimage.config.digest"].as_str().unwrap().to_string();
    let manifest_digest = meta["containerimage.digest"].as_str().unwrap().to_string();

    // history: newest first, docker's JSON keys, `<missing>` below the top, sizes in bytes.
    let rows = json_lines(&ok(&t, &["history", "--format", "json", "--no-trunc", "-H=false", "hist:1"]));
    let hist = config["history"].as_array().unwrap();
    assert_eq!(rows.len(), hist.len());
    for (row, h) in rows.iter().zip(hist.iter().rev()) {
        let keys: Vec<&String> = row.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["Comment", "CreatedAt", "CreatedBy", "CreatedSince", "ID", "Size"]);
        assert_eq!(row["CreatedBy"], h["created_by"]);
        assert_eq!(row["Comment"], h["comment"]);
        assert_eq!(row["CreatedAt"], h["created"]);
        assert_eq!(row["CreatedSince"], h["created"], "-H=false prints the time itself");
    }
    assert_eq!(rows[0]["ID"], image_id.as_str());
    assert!(rows[1..].iter().all(|r| r["ID"] == "<missing>"));
    let size_of = |prefix: &str| -> &str {
        rows.iter().find(|r| r["CreatedBy"].as_str().unwrap().starts_with(prefix)).unwrap()["Size"].as_str().unwrap()
    };
    assert_eq!(size_of("RUN /bin/sh -c head -c 3000"), "3000", "the RUN layer holds exactly /f");
    assert_eq!(size_of("ENV A=1"), "0");
    assert_eq!(size_of("LABEL x=y"), "0");
    assert_eq!(size_of("COPY busybox"), busybox_size().to_string());

    // The table: docker's columns, ids and commands truncated, human sizes.
    let table = ok(&t, &["history", "hist:1"]);
    let lines: Vec<&str> = table.lines().collect();
    let header: Vec<&str> = lines[0].split("   ").map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(header, ["IMAGE", "CREATED", "CREATED BY", "SIZE", "COMMENT"]);
    assert!(lines[1].starts_with(&image_id[7..19]), "{table}");
    assert!(lines[1].contains(" ago "), "{table}");
    let run_line = lines.iter().find(|l| l.contains("RUN /bin/sh -c head")).unwrap();
    assert!(run_line.contains("RUN /bin/sh -c head -c 3000 /dev/zero > /f #…"), "cut at 45 characters: {run_line}");
    assert!(run_line.contains(" 3kB "), "{run_line}");
    assert_eq!(ok(&t, &["history", "-q", "hist:1"]).lines().filter(|l| *l == "<missing>").count(), hist.len() - 1);

    // inspect: one docker document per image, checked against the written config.
    let docs: Value = serde_json::from_str(&ok(&t, &["inspect", "hist:1"])).unwrap();
    let d = &docs.as_array().unwrap()[0];
    assert_eq!(d["Id"], image_id.as_str());
    assert_eq!(d["RepoTags"], serde_json::json!(["hist:1"]));
    assert_eq!(d["RepoDigests"], serde_json::json!([format!("hist@{manifest_digest}")]));
    assert_eq!(d["Created"], config["created"]);
    assert_eq!(d["Architecture"], config["architecture"]);
    assert_eq!(d["Os"], config["os"]);
    assert_eq!(d["Config"], config["config"]);
    assert_eq!(d["Config"]["Env"][1], "A=1");
    assert_eq!(d["Config"]["Cmd"], serde_json::json!(["cat", "/f"]));
    assert_eq!(d["Config"]["Labels"]["x"], "y");
    assert_eq!(d["Config"]["WorkingDir"], "/w");
    assert_eq!(d["RootFS"]["Type"], "layers");
    assert_eq!(d["RootFS"]["Layers"], config["rootfs"]["diff_ids"]);
    assert_eq!(d["Comment"], "buildkit.dockerfile.v0");
    assert!(d["Size"].as_u64().unwrap() > 3000);
    assert!(d["Metadata"]["LastTagTime"].is_string());
    assert!(d.get("Variant").is_none(), "no variant on this platform's config");

    // --format: field paths and json, nothing more.
    let f = |tpl: &str| ok(&t, &["inspect", "--format", tpl, "hist:1"]).trim_end().to_string();
    assert_eq!(f("{{.Id}}"), image_id);
    let env: Vec<String> =
        config["config"]["Env"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect();
    assert_eq!(f("{{.Config.Env}}"), format!("[{}]", env.join(" ")));
    assert_eq!(serde_json::from_str::<Value>(&f("{{json .Config}}")).unwrap(), config["config"]);
    assert_eq!(f("{{.Architecture}}/{{.Os}}"), format!("{}/linux", config["architecture"].as_str().unwrap()));
    let o = cairn(&t, &["inspect", "--format", "{{range .Config.Env}}{{.}}{{end}}", "hist:1"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("Unsupported template"), "{}", stderr(&o));
    let o = cairn(&t, &["inspect", "nope:1"]);
    assert!(!o.status.success() && stderr(&o).contains("No such image: nope:1"), "{}", stderr(&o));

    // images: --digests, --filter reference=, --format json.
    let with_digests = ok(&t, &["images", "--digests"]);
    assert!(with_digests.lines().next().unwrap().contains("DIGEST"), "{with_digests}");
    assert!(with_digests.lines().any(|l| l.starts_with("hist:1 ") && l.contains(&manifest_digest)), "{with_digests}");
    let names = |filter: &str| -> Vec<String> {
        ok(&t, &["images", "--filter", filter])
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().next().unwrap().to_string())
            .collect()
    };
    assert_eq!(names("reference=hist*"), ["hist:1"]);
    assert_eq!(names("reference=busybox"), ["busybox:latest"]);
    assert_eq!(names("reference=*:1"), ["hist:1"]);
    assert!(names("reference=hist").contains(&"hist:1".to_string()));
    assert!(names("reference=his").is_empty(), "a glob matches the whole name");
    let o = cairn(&t, &["images", "--filter", "dangling=true"]);
    assert!(!o.status.success() && stderr(&o).contains("reference=PATTERN"), "{}", stderr(&o));
    let rows = json_lines(&ok(&t, &["images", "--format", "json", "--filter", "reference=hist"]));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r["Repository"], "hist");
    assert_eq!(r["Tag"], "1");
    assert_eq!(r["ID"], &image_id[7..19]);
    assert_eq!(r["Digest"], manifest_digest.as_str());
    assert!(r["CreatedSince"].as_str().unwrap().ends_with(" ago"));
    assert!(r["CreatedAt"].as_str().unwrap().ends_with(" +0000 UTC"));
    for k in ["Containers", "SharedSize", "Size", "UniqueSize", "VirtualSize"] {
        assert!(r[k].is_string(), "{k} in {r}");
    }
}

/// Bytes of the busybox binary the base image's COPY layer holds.
pub(crate) fn busybox_size() -> u64 {
    let bb = ["/bin/busybox", "/usr/bin/busybox"].iter().find(|p| std::path::Path::new(p).exists()).unwrap();
    std::fs::metadata(bb).unwrap().len()
}

#[test]
fn analyze_names_the_wasted_bytes_the_lines_and_the_fix() {
    let t = setup("analyze");
    t.write("ctx/data.txt", &"a".repeat(5000));
    t.write(
        "ctx/Dockerfile",
        "FROM busybox\n\
         RUN truncate -s 200000000 /big && head -c 1234 /dev/zero > /keep\n\
         RUN rm /big\n\
         COPY data.txt /data.txt\n\
         RUN chmod 600 /data.txt\n\
         RUN mkdir /d && head -c 100 /dev/zero > /d/a && head -c 200 /dev/zero > /d/b\n\
         RUN rm -rf /d && mkdir /d && echo x > /d/new\n",
    );
    let df = t.path("ctx/Dockerfile");
    let df = df.to_str().unwrap();
    let (o, _) = build(&t, &["-t", "waste:1", "--analyze"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stdout(&o);
    for want in [
        "200MB  deleted 1 file: /big".to_string(),
        format!("written by layer 2: {df}:2  RUN truncate -s 200000000 /big"),
        format!("deleted by layer 3: {df}:3  RUN rm /big"),
        "fix: create and delete it in one RUN".into(),
        "`RUN --mount=type=cache,target=DIR` or `--mount=type=tmpfs,target=DIR`".into(),
        format!("overwritten by layer 5: {df}:5  RUN chmod 600 /data.txt"),
        "`COPY --chmod`".into(),
        "300B  deleted 2 files: /d/b, /d/a".into(),
    ] {
        assert!(report.contains(&want), "missing `{want}` in:\n{report}");
    }

    // The numbers, against the layers' known contents.
    let a: Value = serde_json::from_str(&ok(&t, &["analyze", "--format", "json", "-f", df, "waste:1"])).unwrap();
    let layers = a["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 8);
    assert_eq!(a["base_layers"], 2);
    let bb = busybox_size();
    let sizes: Vec<u64> = layers.iter().map(|l| l["size"].as_u64().unwrap()).collect();
    assert_eq!(sizes, [bb, 0, 200_001_234, 0, 5000, 5000, 300, 2]);
    let paths = |i: usize, k: &str| -> Vec<(String, u64)> {
        layers[i][k]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| (c["path"].as_str().unwrap().to_string(), c["size"].as_u64().unwrap()))
            .collect()
    };
    assert_eq!(paths(2, "added"), [("/big".to_string(), 200_000_000), ("/keep".to_string(), 1234)]);
    assert_eq!(paths(3, "deleted"), [("/big".to_string(), 200_000_000)]);
    assert_eq!(paths(4, "added"), [("/data.txt".to_string(), 5000)]);
    assert_eq!(paths(5, "modified"), [("/data.txt".to_string(), 5000)]);
    assert_eq!(paths(7, "deleted"), [("/d/*".to_string(), 300)], "an opaque directory hides the lower /d");
    assert_eq!(paths(7, "added"), [("/d/new".to_string(), 2)]);
    let lines: Vec<Value> = layers.iter().map(|l| l["line"]["start"].clone()).collect();
    assert_eq!(lines, [Value::Null, Value::Null, 2.into(), 3.into(), 4.into(), 5.into(), 6.into(), 7.into()]);
    let waste: Vec<(String, u64, u64, u64)> = a["waste"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["kind"].as_str().unwrap().to_string(),
                w["layer"].as_u64().unwrap(),
                w["by"].as_u64().unwrap(),
                w["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        waste,
        [
            ("deleted".to_string(), 2, 3, 200_000_000),
            ("overwritten".to_string(), 4, 5, 5000),
            ("deleted".to_string(), 6, 7, 300)
        ]
    );
    assert_eq!(a["wasted_bytes"], 200_005_300u64);
    assert_eq!(a["user_wasted_bytes"], 200_005_300u64);
    assert_eq!(a["user_size"], 200_011_536u64);
    // dive: per path the smallest size over the sum of sizes.
    let eff = (bb + 1234 + 5000 + 2) as f64 / (bb + 200_000_000 + 1234 + 10_000 + 300 + 2) as f64;
    assert!((a["efficiency"].as_f64().unwrap() - eff).abs() < 1e-9, "{} != {eff}", a["efficiency"]);

    // CI mode: dive's default rules fail this image, and each threshold can be set.
    let o = cairn(&t, &["analyze", "--ci", "waste:1"]);
    assert!(!o.status.success());
    let out = stdout(&o);
    assert!(out.contains("FAIL: lowestEfficiency: image efficiency is too low"), "{out}");
    assert!(out.contains("FAIL: highestUserWastedPercent"), "{out}");
    assert!(out.contains("SKIP: highestWastedBytes: rule disabled"), "{out}");
    assert!(out.contains("Result:FAIL [Total:3] [Passed:0] [Failed:2] [Warn:0] [Skipped:1]"), "{out}");
    let relaxed =
        ["analyze", "--ci", "waste:1", "--lowest-efficiency", "0.001", "--highest-user-wasted-percent", "disabled"];
    let o = cairn(&t, &relaxed);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let mut strict = relaxed.to_vec();
    strict.extend(["--highest-wasted-bytes", "100MB"]);
    let o = cairn(&t, &strict);
    assert!(!o.status.success());
    assert!(
        stdout(&o)
            .contains("FAIL: highestWastedBytes: too many bytes wasted (wasted-bytes=200005300 > threshold=100000000)"),
        "{}",
        stdout(&o)
    );

    // The base image alone wastes nothing.
    let b: Value = serde_json::from_str(&ok(&t, &["analyze", "--format", "json", "busybox"])).unwrap();
    assert_eq!((b["wasted_bytes"].as_u64(), b["efficiency"].as_f64()), (Some(0), Some(1.0)));
    assert!(cairn(&t, &["analyze", "--ci", "busybox"]).status.success());
}

/// Headless Chromium on `file`: (DOM as rendered, stderr); a screenshot when `shot`.
pub(crate) fn chromium(t: &Tmp, file: &std::path::Path, shot: Option<&std::path::Path>) -> (String, String) {
    let mut c = std::process::Command::new("chromium");
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,800", "--enable-logging=stderr"]);
    c.arg(format!("--user-data-dir={}", t.path("chromium-profile").display()));
    match shot {
        Some(p) => c.arg(format!("--screenshot={}", p.display())),
        None => c.arg("--dump-dom"),
    };
    c.arg(format!("file://{}", file.display()));
    let o = c.output().expect("chromium is installed (scripts/test.sh installs it)");
    assert!(o.status.success(), "chromium failed on {}:\n{}", file.display(), stderr(&o));
    (stdout(&o), stderr(&o))
}

#[test]
fn build_timeline_renders_one_bar_per_step_in_chromium() {
    let t = setup("timeline");
    t.write(
        "ctx/Dockerfile",
        "FROM busybox AS a\nRUN echo a > /a\n\nFROM busybox AS b\nRUN echo b > /b\n\n\
         FROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\nRUN cat /a /b > /ab\n",
    );
    let svg = t.path("timeline.svg");
    let (o, s) = build(&t, &["--timeline", svg.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let steps = crate::solve_status::vertexes(&crate::build_cli::stream(&o))
        .iter()
        .filter(|v| !v.name.starts_with("[cairn] ") && v.started.is_some())
        .count();
    assert_eq!(steps, 6, "FROM, two stage RUNs, two COPYs and a RUN");
    let text = std::fs::read_to_string(&svg).unwrap();
    assert_eq!(text.matches("<rect class=\"bar ").count(), steps);
    assert_eq!(text.matches("<rect class=\"bar executed").count() as u64, s["executed"].as_u64().unwrap());
    assert!(text.contains(" critical\""), "the critical path is marked");
    assert!(text.contains("parallel width "), "{text}");
    for stage in ["stage a", "stage b"] {
        assert!(text.contains(stage), "bars are grouped by stage: {stage}");
    }

    // Rendered as a person would see it: the DOM Chromium builds has every bar and no
    // XML error; a screenshot is taken.
    let (dom, log) = chromium(&t, &svg, None);
    assert!(!dom.contains("parsererror") && !dom.contains("This page contains the following errors"), "{dom}");
    assert_eq!(dom.matches("<rect class=\"bar ").count(), steps, "{dom}");
    assert!(!log.contains("Uncaught") && !log.contains(":CONSOLE("), "console errors:\n{log}");

    // Again from the cache, as HTML: every bar is a cached one now.
    let html = t.path("timeline.html");
    let (o, _) = build(&t, &["--timeline", html.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>"));
    assert_eq!(text.matches("<rect class=\"bar cached").count(), steps, "{text}");
    assert!(text.contains(&format!("{steps} steps: 0 executed, {steps} cached")), "{text}");
    let png = t.path("timeline.png");
    let (_, log) = chromium(&t, &html, Some(&png));
    assert!(!log.contains("Uncaught") && !log.contains(":CONSOLE("), "console errors:\n{log}");
    let bytes = std::fs::read(&png).expect("the screenshot was written");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 5000, "a real picture: {} bytes", bytes.len());
    let (dom, _) = chromium(&t, &html, None);
    assert_eq!(dom.matches("<rect class=\"bar cached").count(), steps);

    let o = cairn(&t, &["build", "--timeline", t.path("t.png").to_str().unwrap(), t.path("ctx").to_str().unwrap()]);
    assert!(!o.status.success() && stderr(&o).contains("must end in .svg or .html"), "{}", stderr(&o));
}

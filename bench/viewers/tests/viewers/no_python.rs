//! `bench/` holds no Python (issue 46 item 4: benchmarks as code, the driver in Rust): no
//! `.py` file, and no script that runs `python3` or writes a Python heredoc. The one
//! exception is asking the Python environment `scripts/setup.sh` made where PyPI's
//! FFmpeg 9 binary is (`imageio_ffmpeg.get_ffmpeg_exe()`), as testkit does.

use std::path::{Path, PathBuf};

/// The repository's `bench/`, from this package's manifest (`bench/viewers`).
fn bench_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("bench/viewers has a parent")
        .to_path_buf()
}

/// Every file under `dir`, but the Rust package's build output.
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            if path
                .file_name()
                .is_some_and(|n| n == "target" || n == "out")
            {
                continue;
            }
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// A line that runs Python for anything but FFmpeg 9's path.
fn runs_python(line: &str) -> bool {
    let line = line.trim_start();
    if line.starts_with('#') || line.contains("import imageio_ffmpeg") {
        return false;
    }
    line.contains("python3")
        || line.contains("<<'PY'")
        || line.contains("<< 'PY'")
        || line.contains("/bin/python")
}

#[test]
fn bench_holds_no_python() {
    let mut all = Vec::new();
    files(&bench_dir(), &mut all);
    let mut found = Vec::new();
    for path in &all {
        if path.extension().is_some_and(|e| e == "py") {
            found.push(format!("{}: a Python file", path.display()));
            continue;
        }
        if path.extension().is_some_and(|e| e == "sh") {
            let text = std::fs::read_to_string(path).expect("a script is text");
            for (n, line) in text.lines().enumerate() {
                if runs_python(line) {
                    found.push(format!("{}:{}: {line}", path.display(), n + 1));
                }
            }
        }
    }
    assert!(
        all.iter().any(|p| p.extension().is_some_and(|e| e == "sh")),
        "no script found under {}",
        bench_dir().display()
    );
    assert!(found.is_empty(), "Python in bench/:\n{}", found.join("\n"));
}

#[test]
fn a_python_line_is_found_and_the_ffmpeg_lookup_is_not() {
    assert!(runs_python(r#"  x="$(python3 -c 'print(1)')""#));
    assert!(runs_python(r#"cat > "$WORK/a.py" <<'PY'"#));
    assert!(!runs_python("# python3 was here"));
    assert!(!runs_python(
        r#"FFMPEG9="$("$T/bin/python" -c 'import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())')""#
    ));
}

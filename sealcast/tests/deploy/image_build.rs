//! The image builds itself (issue 50 item 1): the `Dockerfile`'s builder stage compiles
//! the release binary in Debian 12 with the packages `scripts/setup.sh` installs on a
//! host, its runtime stage takes that binary, and the compose cluster's image
//! (`deploy/docker/prebuilt.sh`) is the same runtime stage with the host's binary. No
//! image is built here; `scripts/check-image.sh` builds one for real.

use std::collections::BTreeSet;

use crate::dockerfile::{self, Instruction};
use crate::{init, repo, Findings};

/// The packages `scripts/setup.sh` installs to build (its first `packages=(...)`).
fn setup_build_packages() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("scripts/setup.sh")).unwrap();
    let block = text
        .split_once("packages=(")
        .and_then(|(_, rest)| rest.split_once("\n)"))
        .map(|(block, _)| block)
        .unwrap();
    block
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default())
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect()
}

fn args<'a>(stage: &'a [Instruction], keyword: &str) -> Vec<&'a str> {
    dockerfile::all(stage, keyword)
}

#[test]
fn the_dockerfile_builds_itself_in_debian_12() {
    let project = init();
    let stages = dockerfile::stages(project.dir()).unwrap();
    let mut f = Findings::default();
    f.check(stages.len() == 3, || {
        format!(
            "Dockerfile: {} stages, not a builder and a runtime",
            stages.len() - 1
        )
    });
    let [globals, builder, runtime] = &stages[..] else {
        f.assert_none("Dockerfile stages");
        return;
    };
    let global_args = args(globals, "ARG");
    for (arg, default) in [
        ("BUILDER_IMAGE", "rust:1-bookworm"),
        ("RUNTIME_IMAGE", "debian:bookworm-slim"),
    ] {
        f.check(
            global_args.contains(&format!("{arg}={default}").as_str()),
            || format!("Dockerfile: no global ARG {arg}={default} ({global_args:?})"),
        );
    }

    // The builder: the argument's base, the packages a host builds with, the whole
    // context, a locked release build of the binary.
    f.check(
        args(builder, "FROM") == ["${BUILDER_IMAGE} AS builder"],
        || format!("Dockerfile: builder {:?}", args(builder, "FROM")),
    );
    let runs = args(builder, "RUN").join("\n");
    for package in setup_build_packages() {
        let installs = runs
            .split(|c: char| c.is_whitespace() || c == '"' || c == '=')
            .any(|w| w == package);
        f.check(installs, || {
            format!("Dockerfile: the builder does not install {package}, which scripts/setup.sh builds with")
        });
    }
    f.check(args(builder, "COPY") == [". ."], || {
        format!("Dockerfile: builder COPY {:?}", args(builder, "COPY"))
    });
    f.check(
        runs.contains("cargo build --release --locked -p sealcast")
            && runs.contains("/out/sealcast"),
        || "Dockerfile: the builder does not build the locked release binary into /out".into(),
    );

    // The runtime: the other argument's base, and the builder's binary, nothing else of it.
    f.check(args(runtime, "FROM") == ["${RUNTIME_IMAGE}"], || {
        format!("Dockerfile: runtime {:?}", args(runtime, "FROM"))
    });
    let from_builder: Vec<&str> = args(runtime, "COPY")
        .into_iter()
        .filter(|c| c.starts_with("--from"))
        .collect();
    f.check(
        from_builder == ["--from=builder /out/sealcast /usr/local/bin/sealcast"],
        || format!("Dockerfile: the runtime copies {from_builder:?} from the builder"),
    );

    // The compose image is that stage, with the host's binary in the builder's place, as
    // the script writes it.
    let prebuilt = dockerfile::instructions(project.dir()).unwrap();
    let expected: Vec<Instruction> = globals
        .iter()
        .filter(|i| i.args.starts_with("RUNTIME_IMAGE="))
        .chain(runtime)
        .map(|i| Instruction {
            keyword: i.keyword.clone(),
            args: i
                .args
                .replace("--from=builder /out/sealcast", "dist/sealcast"),
        })
        .collect();
    f.check(prebuilt == expected, || {
        format!(
            "{}: not the runtime stage with the host's binary",
            dockerfile::PREBUILT
        )
    });
    let generated = dockerfile::prebuilt(project.dir(), &project.dir().join("Dockerfile")).unwrap();
    let committed = std::fs::read(project.dir().join(dockerfile::PREBUILT)).unwrap();
    f.check(
        generated.status.success() && generated.stdout == committed,
        || {
            format!(
                "{} is not what deploy/docker/prebuilt.sh writes: run it again",
                dockerfile::PREBUILT
            )
        },
    );

    // Build output and secrets stay out of the context the builder copies whole.
    let ignored: BTreeSet<String> = std::fs::read_to_string(repo().join(".dockerignore"))
        .unwrap()
        .lines()
        .map(|l| l.trim().trim_matches('/').to_owned())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    for path in [
        ".git",
        "target",
        "data",
        "certs/generated",
        "deploy/state",
        ".env",
    ] {
        f.check(ignored.contains(path), || {
            format!(".dockerignore does not leave out {path}")
        });
    }
    f.assert_none("the image build");
}

#[test]
fn the_prebuilt_variant_refuses_a_dockerfile_without_a_builder_binary() {
    let dir = tempfile::tempdir().unwrap();
    for (what, text) in [
        (
            "one stage",
            "ARG RUNTIME_IMAGE=debian:bookworm-slim\nFROM ${RUNTIME_IMAGE}\nCOPY dist/sealcast /usr/local/bin/sealcast\n",
        ),
        (
            "no binary from the builder",
            "ARG RUNTIME_IMAGE=debian:bookworm-slim\nFROM rust AS builder\nFROM ${RUNTIME_IMAGE}\nCOPY x /usr/local/bin/sealcast\n",
        ),
    ] {
        let path = dir.path().join("Dockerfile");
        std::fs::write(&path, text).unwrap();
        let out = dockerfile::prebuilt(&repo(), &path).unwrap();
        assert!(!out.status.success(), "{what}: accepted");
        assert!(!out.stderr.is_empty(), "{what}: refused without a word");
    }
}

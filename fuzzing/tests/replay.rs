//! Every file of every target's seed corpus (`fuzz/corpus/{target}`) and every crash a
//! fuzzer found (`fuzz/regressions/{target}`, kept after the fix) through its harness, on
//! every `cargo test`: a harness that panics on one fails here without a fuzzing
//! toolchain.

use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

#[test]
fn every_target_has_a_seed_corpus_and_a_libfuzzer_target() {
    for (name, _) in fuzzing::TARGETS {
        assert!(
            !files(&fuzz_dir().join("corpus").join(name)).is_empty(),
            "fuzz/corpus/{name} is empty"
        );
        let target = fuzz_dir().join("fuzz_targets").join(format!("{name}.rs"));
        let text = std::fs::read_to_string(&target)
            .unwrap_or_else(|e| panic!("{}: {e}", target.display()));
        assert!(
            text.contains(&format!("fuzzing::{name}(")),
            "{} does not call fuzzing::{name}",
            target.display()
        );
    }
}

#[test]
fn corpora_and_regressions_replay_without_a_panic() {
    let mut replayed = 0;
    for (name, harness) in fuzzing::TARGETS {
        for kind in ["corpus", "regressions"] {
            for file in files(&fuzz_dir().join(kind).join(name)) {
                let data = std::fs::read(&file).expect("readable");
                let outcome = std::panic::catch_unwind(|| harness(&data));
                assert!(outcome.is_ok(), "{name}: {} panics", file.display());
                replayed += 1;
            }
        }
    }
    assert!(replayed >= fuzzing::TARGETS.len());
}

/// The captured ffmpeg and GStreamer publishes get through the handshake, `connect` and
/// `publish` to the media in the harness: the RTMP target fuzzes past the first bytes.
#[test]
fn the_rtmp_seeds_reach_the_media() {
    for seed in ["ffmpeg-publish", "gstreamer-publish"] {
        let data = std::fs::read(fuzz_dir().join("corpus/rtmp_session").join(seed))
            .unwrap_or_else(|e| panic!("{seed}: {e}"));
        let reach = fuzzing::drive_rtmp(&data);
        assert!(reach.published, "{seed}: {reach:?}");
        assert!(reach.video > 5 && reach.audio > 5, "{seed}: {reach:?}");
    }
}

/// The trust bundles of the `certificates` seed corpus decode and are admitted whole by a
/// store pinned to the corpus root, so the fuzzer starts from bundles that reach every
/// check rather than from bytes refused at the tag.
#[test]
fn the_trust_bundle_seeds_reach_the_store() {
    let dir = fuzz_dir().join("corpus/certificates");
    let root = certs::signing::RootPublicKey::from_bytes(
        domain::wire::SignatureAlgorithm::Ed25519,
        fuzzing::ROOT_ED25519,
    )
    .expect("the corpus root");
    let mut seen = 0;
    for path in files(&dir) {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if !name.starts_with("trust-bundle-") {
            continue;
        }
        seen += 1;
        let bytes = std::fs::read(&path).expect("readable");
        let bundle = certs::signing::TrustBundle::decode(&bytes)
            .unwrap_or_else(|e| panic!("{name} does not decode: {e}"));
        assert_eq!(bundle.certificates.len(), 1, "{name}");
        assert_eq!(bundle.revocations.len(), 1, "{name}");
        if name.ends_with("ed25519") {
            let mut store = certs::signing::TrustStore::new(root.clone());
            // Before the revocation takes effect (the seeds revoke at 1,800,000,000).
            let refused = store.admit(&bundle, 1_799_999_999);
            assert!(refused.is_empty(), "{name}: {refused:?}");
        }
    }
    assert_eq!(seen, 2, "trust-bundle-ed25519 and trust-bundle-mldsa65");
}

/// The workspace builds srt-protocol from `vendor/srt-protocol` (`[patch.crates-io]`):
/// `SEALCAST_FORK` exists only there, so if the patch silently stopped applying this would
/// not compile. The fork is what closes issue 45's SRT holes.
#[test]
fn srt_protocol_is_the_fork() {
    assert!(srt_protocol::SEALCAST_FORK.contains("vendor/srt-protocol"));
}

/// The SRT listener's seed gets callers through the cookie to access control, one
/// connection opened and one rejected (the third given up on): the target fuzzes past the
/// stateless induction. Issue 45's regressions: each config extension is rejected, and
/// thousands of strangers' datagrams leave nothing.
#[test]
fn the_srt_seeds_reach_connections() {
    let read = |kind: &str, name: &str| {
        std::fs::read(fuzz_dir().join(kind).join("srt_listener").join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let reach = fuzzing::drive_srt(&read("corpus", "callers"));
    assert_eq!((reach.requested, reach.opened), (3, 1), "{reach:?}");
    assert!(reach.rejected >= 2, "{reach:?}");
    for name in [
        "config-congestion-file",
        "config-filter-fec",
        "config-group",
    ] {
        let reach = fuzzing::drive_srt(&read("regressions", name));
        assert_eq!((reach.requested, reach.opened), (0, 0), "{name}: {reach:?}");
        assert_eq!(reach.rejected, 1, "{name}: {reach:?}");
    }
    let reach = fuzzing::drive_srt(&read("regressions", "many-addresses"));
    assert_eq!(reach, fuzzing::SrtReach::default());
}

/// The HLS seeds are playlists the reader accepts (the master as a master, the others as
/// media playlists, the low-latency ones with parts), so the fuzzer starts past the
/// refusals.
#[test]
fn the_hls_seeds_are_read() {
    let seeds = files(&fuzz_dir().join("corpus/hls_playlist"));
    assert!(seeds.len() >= 8, "{seeds:?}");
    for seed in seeds {
        let data = std::fs::read(&seed).expect("readable");
        let name = seed
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name == "master" {
            let variants = domain::hls::read_master(&data).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(variants.len(), 2);
        } else {
            let p = domain::hls::read_media(&data).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!p.segments.is_empty(), "{name}");
            assert_eq!(name.starts_with("ll"), p.parts().next().is_some(), "{name}");
        }
    }
}

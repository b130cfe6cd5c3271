//! docs/wire.md's checked tables (algorithms, constants, domain tags) against the code,
//! and verify.js's copies of the same numbers and tags against both, so neither the page
//! nor the player's decoders go stale silently.

use std::collections::HashMap;

use domain::wire::{
    EventStatement, PresenceStatement, SignatureAlgorithm, Statement, EVENT_TAG,
    MAX_DELEGATED_KEY_LEN, MAX_EVENT_LEN, MAX_MEDIA_STATEMENT_LEN, MAX_PART_KEY_LEN,
    MAX_PART_KEY_RUN, MAX_PRESENCE_CERTIFICATE_LEN, MAX_PRESENCE_JSON_LEN, MAX_SIGNATURE_LEN,
    MAX_SIGNED_EVENT_LEN, MAX_SIGNED_PART_KEY_LEN, MAX_SIGNED_PRESENCE_LEN,
    MAX_THUMBNAIL_STATEMENT_LEN, PART_KEY_TAG, PART_TAG, PRESENCE_TAG, SEGMENT_TAG, THUMBNAIL_TAG,
};
use domain::{InitSegment, MAX_THUMBNAIL_BYTES};
use sha2::{Digest, Sha256};

use crate::signing::keys::{public_key_len, signature_len};
use crate::signing::{
    RootKey, BUNDLE_TAG, CERTIFICATE_TAG, EDGE_CERTIFICATE_TAG, MAX_ITEMS, MAX_ITEM_LEN,
    REVOCATION_TAG,
};

fn read(relative: &str) -> String {
    let path = format!("{}/../{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The rows of the table after `marker` (header and separator left out), cell by cell,
/// backticks taken off.
fn table(doc: &str, marker: &str) -> Vec<Vec<String>> {
    let at = doc
        .find(marker)
        .unwrap_or_else(|| panic!("docs/wire.md has no {marker}"));
    doc[at + marker.len()..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().trim_matches('`').to_owned())
                .collect()
        })
        .collect()
}

/// A tag as the page and verify.js write it (`…\0`), as bytes.
fn tag_bytes(written: &str) -> Vec<u8> {
    written.replace("\\0", "\0").into_bytes()
}

/// The first line of `file` that starts (after indentation) with `prefix`, the rest of it.
fn after<'a>(file: &'a str, prefix: &str) -> &'a str {
    file.lines()
        .map(str::trim_start)
        .find_map(|l| l.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no line starts with {prefix}"))
}

/// `const NAME = 16 * 1024;` (or `1024n`) in verify.js: the value.
fn js_const(js: &str, name: &str) -> u64 {
    let expr = after(js, &format!("const {name} = "));
    let expr = expr.trim_end_matches(';');
    expr.split('*')
        .map(|n| {
            n.trim()
                .trim_end_matches('n')
                .parse::<u64>()
                .unwrap_or_else(|e| panic!("{name} = {expr}: {e}"))
        })
        .product()
}

/// `  name: ascii('…'),` inside verify.js's TAG: the tag's bytes.
fn js_tag(js: &str, name: &str) -> Vec<u8> {
    let rest = after(js, &format!("{name}: ascii('"));
    let written = rest.split_once("')").expect("a closing quote").0;
    tag_bytes(written)
}

/// A number after `field: ` on a line.
fn field(line: &str, name: &str) -> usize {
    let rest = line
        .split_once(&format!("{name}: "))
        .unwrap_or_else(|| panic!("no {name} in {line}"))
        .1;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().expect("a number")
}

const BOTH: [SignatureAlgorithm; 2] = [SignatureAlgorithm::MlDsa65, SignatureAlgorithm::Ed25519];

#[test]
fn the_algorithm_table_is_the_code_s() {
    let doc = read("docs/wire.md");
    let js = read("web/src/verify.js");
    let rows = table(&doc, "<!-- checked: algorithms -->");
    assert_eq!(rows.len(), BOTH.len(), "{rows:?}");
    for (algorithm, row) in BOTH.into_iter().zip(&rows) {
        let code = algorithm.code();
        let (public, signature) = (public_key_len(algorithm), signature_len(algorithm));
        assert_eq!(row[1], code.to_string(), "{algorithm:?}: {row:?}");
        assert_eq!(row[2], public.to_string(), "{algorithm:?}: {row:?}");
        assert_eq!(row[3], signature.to_string(), "{algorithm:?}: {row:?}");
        let line = after(&js, &format!("{code}: Object.freeze({{"));
        assert_eq!(
            field(line, "publicKeyLength"),
            public,
            "verify.js {algorithm:?}"
        );
        assert_eq!(
            field(line, "signatureLength"),
            signature,
            "verify.js {algorithm:?}"
        );
    }
}

#[test]
fn the_constants_are_the_code_s() {
    let doc = read("docs/wire.md");
    let code: HashMap<&str, u64> = HashMap::from([
        ("MAX_SIGNATURE_LEN", MAX_SIGNATURE_LEN as u64),
        ("MAX_MEDIA_STATEMENT_LEN", MAX_MEDIA_STATEMENT_LEN as u64),
        ("MAX_EVENT_LEN", MAX_EVENT_LEN as u64),
        ("MAX_SIGNED_EVENT_LEN", MAX_SIGNED_EVENT_LEN as u64),
        ("EventStatement::MAX_LEN", EventStatement::MAX_LEN as u64),
        ("MAX_PART_KEY_RUN", MAX_PART_KEY_RUN),
        ("MAX_DELEGATED_KEY_LEN", MAX_DELEGATED_KEY_LEN as u64),
        ("MAX_PART_KEY_LEN", MAX_PART_KEY_LEN as u64),
        ("MAX_SIGNED_PART_KEY_LEN", MAX_SIGNED_PART_KEY_LEN as u64),
        ("MAX_PRESENCE_JSON_LEN", MAX_PRESENCE_JSON_LEN as u64),
        (
            "MAX_PRESENCE_CERTIFICATE_LEN",
            MAX_PRESENCE_CERTIFICATE_LEN as u64,
        ),
        ("MAX_SIGNED_PRESENCE_LEN", MAX_SIGNED_PRESENCE_LEN as u64),
        (
            "PresenceStatement::MAX_LEN",
            PresenceStatement::MAX_LEN as u64,
        ),
        ("InitSegment::MAX_LEN", InitSegment::MAX_LEN as u64),
        (
            "MAX_THUMBNAIL_STATEMENT_LEN",
            MAX_THUMBNAIL_STATEMENT_LEN as u64,
        ),
        ("MAX_THUMBNAIL_BYTES", MAX_THUMBNAIL_BYTES as u64),
        ("MAX_ITEMS", MAX_ITEMS as u64),
        ("MAX_ITEM_LEN", MAX_ITEM_LEN as u64),
    ]);
    let rows = table(&doc, "<!-- checked: constants -->");
    let mut wrong = Vec::new();
    for row in &rows {
        match code.get(row[0].as_str()) {
            Some(value) if row[1] == value.to_string() => {}
            Some(value) => wrong.push(format!(
                "{}: the page says {}, the code {value}",
                row[0], row[1]
            )),
            None => wrong.push(format!("{}: not a constant this test knows", row[0])),
        }
    }
    assert_eq!(rows.len(), code.len(), "a constant missing from the page");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // verify.js's copies.
    let js = read("web/src/verify.js");
    for (js_name, value) in [
        ("MAX_MEDIA_STATEMENT_LEN", MAX_MEDIA_STATEMENT_LEN as u64),
        ("MAX_SIGNATURE_LEN", MAX_SIGNATURE_LEN as u64),
        ("MAX_EVENT_LEN", MAX_EVENT_LEN as u64),
        ("MAX_BUNDLE_ITEMS", MAX_ITEMS as u64),
        ("MAX_BUNDLE_ITEM_LEN", MAX_ITEM_LEN as u64),
        ("MAX_INIT_LEN", InitSegment::MAX_LEN as u64),
        ("MAX_DELEGATED_KEY_LEN", MAX_DELEGATED_KEY_LEN as u64),
        ("MAX_PART_KEY_RUN", MAX_PART_KEY_RUN),
        ("MAX_NAME_LEN", 64),
        (
            "MAX_THUMBNAIL_STATEMENT_LEN",
            MAX_THUMBNAIL_STATEMENT_LEN as u64,
        ),
    ] {
        assert_eq!(js_const(&js, js_name), value, "verify.js {js_name}");
    }
}

#[test]
fn the_tags_are_the_code_s() {
    let doc = read("docs/wire.md");
    let js = read("web/src/verify.js");
    // The key file's magic, as a root public key file (`/trust/v1/root.pub`) holds it.
    let root = RootKey::generate(SignatureAlgorithm::Ed25519).expect("root");
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("root.pub");
    root.public_key().write_file(&path).expect("written");
    let file = std::fs::read(&path).expect("read");
    let magic = &file[..13];
    let code: [(&str, &[u8], Option<&str>); 12] = [
        ("SEGMENT_TAG", SEGMENT_TAG, Some("segment")),
        ("PART_TAG", PART_TAG, Some("part")),
        ("EVENT_TAG", EVENT_TAG, Some("event")),
        ("PART_KEY_TAG", PART_KEY_TAG, Some("partKey")),
        ("PRESENCE_TAG", PRESENCE_TAG, None),
        ("THUMBNAIL_TAG", THUMBNAIL_TAG, Some("thumbnail")),
        ("CERTIFICATE_TAG", CERTIFICATE_TAG, Some("certificate")),
        ("EDGE_CERTIFICATE_TAG", EDGE_CERTIFICATE_TAG, None),
        ("REVOCATION_TAG", REVOCATION_TAG, Some("revocation")),
        ("BUNDLE_TAG", BUNDLE_TAG, Some("bundle")),
        ("ANCHOR_TAG", crate::c2pa::ANCHOR_TAG, None),
        ("key file magic", magic, Some("keyFile")),
    ];
    let rows = table(&doc, "<!-- checked: tags -->");
    assert_eq!(rows.len(), code.len(), "{rows:?}");
    for ((name, bytes, js_name), row) in code.into_iter().zip(&rows) {
        assert_eq!(row[0], name);
        assert_eq!(tag_bytes(&row[1]), bytes, "{name}");
        assert_eq!(row[2], bytes.len().to_string(), "{name}");
        if let Some(js_name) = js_name {
            assert_eq!(js_tag(&js, js_name), bytes, "verify.js TAG.{js_name}");
        }
    }
    // The rest of the root key file's header, and the fingerprint rule: the root's key id
    // is the first 16 bytes of SHA-256(algorithm code || public key).
    let public = root.public_key();
    assert_eq!(file[13..16], [1, 3, SignatureAlgorithm::Ed25519.code()]);
    assert_eq!(&file[16..], public.public_key().as_bytes());
    let fingerprint = Sha256::digest(&file[15..]);
    assert_eq!(public.key_id().0, fingerprint[..16]);
}

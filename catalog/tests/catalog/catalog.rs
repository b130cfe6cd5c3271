//! The catalog's behaviour, each case run on SQLite and on PostgreSQL.

use crate::support::{name, now_unix, open, raw, Db};
use catalog::{Catalog, CatalogError, Numbering, StreamKey};
use domain::StreamName;
use sha2::{Digest, Sha256};
use sqlx::Connection;

on_both_backends!(
    add_then_authenticate_with_the_printed_key,
    wrong_keys_are_rejected,
    duplicate_add_is_already_exists,
    rotate_makes_the_old_key_fail_at_once,
    remove_makes_the_key_fail,
    list_is_ordered_by_name,
    keys_never_show_in_debug_or_errors,
    only_the_key_hash_is_stored,
    unknown_streams_are_not_found,
    mark_live_records_the_latest_time,
    numbering_continues_across_sessions_and_handles,
    two_handles_see_each_others_writes,
    concurrent_writes_from_two_handles,
    reopening_keeps_the_streams,
    privacy_is_set_read_and_listed,
    recording_is_on_by_default_switched_read_and_listed,
);

/// A well-formed key that was never issued.
fn unissued_key() -> String {
    format!("sk_{}", hex::encode(rand::random::<[u8; 32]>()))
}

async fn add_then_authenticate_with_the_printed_key(db: Db) {
    let catalog = open(&db).await;
    let before = now_unix();
    let (record, key) = catalog.add_stream(&name("demo")).await.expect("add");
    let after = now_unix();

    let printed = key.expose_secret().to_owned();
    assert!(printed.starts_with("sk_"), "key has the sk_ prefix");
    assert_eq!(printed.len(), 3 + 64);
    assert_eq!(record.name, name("demo"));
    assert!((before..=after).contains(&record.created_at));
    assert_eq!(record.last_live_at, None);

    assert_eq!(
        catalog.authenticate(&printed).await.expect("authenticate"),
        Some(name("demo"))
    );
    assert_eq!(
        catalog.get_stream(&name("demo")).await.expect("get"),
        Some(record)
    );
    catalog.close().await;
}

async fn wrong_keys_are_rejected(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog.add_stream(&name("demo")).await.expect("add");
    let good = key.expose_secret();

    let unissued = unissued_key();
    let upper = good.to_uppercase();
    let with_newline = format!("{good}\n");
    let truncated = &good[..good.len() - 1];
    let hex_only = &good[3..];
    let huge = "sk_".to_owned() + &"a".repeat(1 << 20);
    for wrong in [
        unissued.as_str(),
        "",
        "sk_",
        "demo",
        upper.as_str(),
        with_newline.as_str(),
        truncated,
        hex_only,
        huge.as_str(),
        "' OR 1=1 --",
    ] {
        let got = catalog.authenticate(wrong).await.expect("authenticate");
        assert_eq!(got, None, "a wrong key was accepted");
    }
    // The stored hash itself is not a key either.
    let hash = hex::encode(Sha256::digest(good.as_bytes()));
    assert_eq!(
        catalog.authenticate(&hash).await.expect("authenticate"),
        None
    );
    catalog.close().await;
}

async fn duplicate_add_is_already_exists(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog.add_stream(&name("demo")).await.expect("add");
    let err = catalog
        .add_stream(&name("demo"))
        .await
        .expect_err("second add of the same name fails");
    assert!(
        matches!(&err, CatalogError::AlreadyExists { name: n } if *n == name("demo")),
        "{err:?}"
    );
    // The failed add did not touch the existing stream or its key.
    assert_eq!(
        catalog
            .authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    assert_eq!(catalog.list_streams().await.expect("list").len(), 1);
    catalog.close().await;
}

async fn rotate_makes_the_old_key_fail_at_once(db: Db) {
    let catalog = open(&db).await;
    let (_, old) = catalog.add_stream(&name("demo")).await.expect("add");
    let (_, other) = catalog.add_stream(&name("other")).await.expect("add");

    let new = catalog.rotate_key(&name("demo")).await.expect("rotate");
    assert_ne!(new.expose_secret(), old.expose_secret());
    assert_eq!(
        catalog
            .authenticate(old.expose_secret())
            .await
            .expect("authenticate"),
        None
    );
    assert_eq!(
        catalog
            .authenticate(new.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    // Other streams' keys are untouched.
    assert_eq!(
        catalog
            .authenticate(other.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("other"))
    );

    let newer = catalog
        .rotate_key(&name("demo"))
        .await
        .expect("rotate again");
    assert_eq!(
        catalog
            .authenticate(new.expose_secret())
            .await
            .expect("authenticate"),
        None
    );
    assert_eq!(
        catalog
            .authenticate(newer.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    catalog.close().await;
}

async fn remove_makes_the_key_fail(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog.add_stream(&name("demo")).await.expect("add");
    catalog.add_stream(&name("kept")).await.expect("add");

    catalog.remove_stream(&name("demo")).await.expect("remove");
    assert_eq!(
        catalog
            .authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        None
    );
    assert_eq!(catalog.get_stream(&name("demo")).await.expect("get"), None);
    let names: Vec<_> = catalog
        .list_streams()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, [name("kept")]);

    // Adding the name again makes a new key; the removed one stays dead.
    let (_, again) = catalog.add_stream(&name("demo")).await.expect("re-add");
    assert_ne!(again.expose_secret(), key.expose_secret());
    assert_eq!(
        catalog
            .authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        None
    );
    assert_eq!(
        catalog
            .authenticate(again.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    catalog.close().await;
}

async fn list_is_ordered_by_name(db: Db) {
    let catalog = open(&db).await;
    assert!(catalog.list_streams().await.expect("list").is_empty());

    // Case and punctuation are where a locale-aware database collation would disagree with
    // byte order; the catalog promises byte order on every backend.
    let added = ["zed", "a_b", "Zed", "ab", "10", "a-b", "aB", "9", "b"];
    for n in added {
        catalog.add_stream(&name(n)).await.expect("add");
    }
    let listed: Vec<String> = catalog
        .list_streams()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(
        listed,
        ["10", "9", "Zed", "a-b", "aB", "a_b", "ab", "b", "zed"]
    );
    catalog.close().await;
}

async fn keys_never_show_in_debug_or_errors(db: Db) {
    let catalog = open(&db).await;
    let (record, key) = catalog.add_stream(&name("demo")).await.expect("add");
    let secret = key.expose_secret().to_owned();
    let hex_part = secret[3..].to_owned();

    let rotated = catalog.rotate_key(&name("demo")).await.expect("rotate");
    let duplicate = catalog
        .add_stream(&name("demo"))
        .await
        .expect_err("duplicate");
    let outputs = [
        format!("{key:?}"),
        format!("{key:#?}"),
        format!("{rotated:?}"),
        format!("{:?}", (&record, &key)),
        format!("{:?}", Some(&key)),
        format!("{duplicate} {duplicate:?}"),
        format!("{catalog:?}"),
    ];
    for (secret, hex_part) in [
        (secret.as_str(), hex_part.as_str()),
        (rotated.expose_secret(), &rotated.expose_secret()[3..]),
    ] {
        for out in &outputs {
            assert!(!out.contains(secret), "key in {out}");
            assert!(!out.contains(hex_part), "key's hex in {out}");
            assert!(!out.contains(&hex_part[..16]), "part of the key in {out}");
        }
    }
    assert!(format!("{key:?}").contains("redacted"));
    catalog.close().await;
}

async fn only_the_key_hash_is_stored(db: Db) {
    let catalog = open(&db).await;
    let (_, key) = catalog.add_stream(&name("demo")).await.expect("add");
    catalog.close().await;

    let mut conn = raw(&db).await;
    let rows: Vec<(String, String)> = sqlx::query_as("SELECT name, key_hash FROM streams")
        .fetch_all(&mut conn)
        .await
        .expect("select");
    conn.close().await.expect("close");

    let expected = hex::encode(Sha256::digest(key.expose_secret().as_bytes()));
    assert_eq!(rows, [("demo".to_owned(), expected)]);
    assert!(!rows[0].1.contains(&key.expose_secret()[3..]));
}

async fn unknown_streams_are_not_found(db: Db) {
    let catalog = open(&db).await;
    let ghost = name("ghost");
    assert_eq!(catalog.get_stream(&ghost).await.expect("get"), None);
    let not_found =
        |r: &CatalogError| matches!(r, CatalogError::NotFound { name } if *name == ghost);
    let e = catalog.rotate_key(&ghost).await.expect_err("rotate");
    assert!(not_found(&e), "{e:?}");
    let e = catalog.remove_stream(&ghost).await.expect_err("remove");
    assert!(not_found(&e), "{e:?}");
    let e = catalog.mark_live(&ghost, 1).await.expect_err("mark live");
    assert!(not_found(&e), "{e:?}");
    // Nothing was created along the way.
    assert!(catalog.list_streams().await.expect("list").is_empty());
    catalog.close().await;
}

async fn mark_live_records_the_latest_time(db: Db) {
    let catalog = open(&db).await;
    catalog.add_stream(&name("demo")).await.expect("add");
    catalog.add_stream(&name("idle")).await.expect("add");
    let live_at = |catalog: Catalog, n: &'static str| async move {
        catalog
            .get_stream(&name(n))
            .await
            .expect("get")
            .expect("exists")
            .last_live_at
    };

    catalog
        .mark_live(&name("demo"), 1_700_000_000)
        .await
        .expect("mark live");
    assert_eq!(live_at(catalog.clone(), "demo").await, Some(1_700_000_000));
    catalog
        .mark_live(&name("demo"), 1_700_000_500)
        .await
        .expect("mark live");
    assert_eq!(live_at(catalog.clone(), "demo").await, Some(1_700_000_500));
    // An older time (a node with a lagging clock) does not move it back.
    catalog
        .mark_live(&name("demo"), 1_600_000_000)
        .await
        .expect("mark live");
    assert_eq!(live_at(catalog.clone(), "demo").await, Some(1_700_000_500));
    assert_eq!(live_at(catalog.clone(), "idle").await, None);
    catalog.close().await;
}

async fn two_handles_see_each_others_writes(db: Db) {
    // As under `sealcast up`: the server holds the catalog open the whole time while
    // `sealcast streams ...` opens its own handle, does one thing and exits.
    let server = open(&db).await;
    let cli = open(&db).await;

    let (_, key) = cli.add_stream(&name("demo")).await.expect("cli add");
    assert_eq!(
        server
            .authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );

    server
        .mark_live(&name("demo"), 1_700_000_000)
        .await
        .expect("mark live");
    let listed = cli.list_streams().await.expect("cli list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].last_live_at, Some(1_700_000_000));

    let new = cli.rotate_key(&name("demo")).await.expect("cli rotate");
    assert_eq!(
        server
            .authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        None,
        "the server still accepted a rotated key"
    );
    assert_eq!(
        server
            .authenticate(new.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    cli.close().await;

    // A second CLI run, after the first one exited.
    let cli = open(&db).await;
    cli.remove_stream(&name("demo")).await.expect("cli remove");
    cli.close().await;
    assert_eq!(
        server
            .authenticate(new.expose_secret())
            .await
            .expect("authenticate"),
        None,
        "the server still accepted the key of a removed stream"
    );
    assert!(server.list_streams().await.expect("list").is_empty());

    // And the server's writes reach a CLI.
    server.add_stream(&name("from-server")).await.expect("add");
    let cli = open(&db).await;
    assert!(cli
        .get_stream(&name("from-server"))
        .await
        .expect("get")
        .is_some());
    cli.close().await;
    server.close().await;
}

async fn concurrent_writes_from_two_handles(db: Db) {
    const PER_HANDLE: usize = 20;
    let a = open(&db).await;
    let b = open(&db).await;

    let mut tasks = tokio::task::JoinSet::new();
    for (tag, catalog) in [("a", &a), ("b", &b)] {
        for i in 0..PER_HANDLE {
            let catalog = catalog.clone();
            tasks.spawn(async move {
                let n = name(&format!("{tag}{i:02}"));
                let (_, key) = catalog.add_stream(&n).await.expect("concurrent add");
                catalog
                    .mark_live(&n, 1_700_000_000)
                    .await
                    .expect("concurrent mark live");
                (n, key)
            });
        }
    }
    let mut issued: Vec<(StreamName, StreamKey)> = Vec::new();
    while let Some(done) = tasks.join_next().await {
        issued.push(done.expect("task did not panic"));
    }

    assert_eq!(a.list_streams().await.expect("list").len(), 2 * PER_HANDLE);
    for (n, key) in &issued {
        // Each key works through either handle, and only for its own stream.
        assert_eq!(
            b.authenticate(key.expose_secret())
                .await
                .expect("authenticate")
                .as_ref(),
            Some(n)
        );
    }
    a.close().await;
    b.close().await;
}

async fn reopening_keeps_the_streams(db: Db) {
    let catalog = open(&db).await;
    let (record, key) = catalog.add_stream(&name("demo")).await.expect("add");
    catalog.close().await;

    // Opening again runs the migrator against an up-to-date schema: nothing to do.
    let catalog = open(&db).await;
    assert_eq!(
        catalog.list_streams().await.expect("list"),
        std::slice::from_ref(&record)
    );
    assert_eq!(
        catalog
            .authenticate(key.expose_secret())
            .await
            .expect("authenticate"),
        Some(name("demo"))
    );
    catalog.close().await;
}

/// Issue 16: whichever ingest (handle) publishes next continues the numbering: the first
/// session starts at 0 without a discontinuity, every later one where the last left off,
/// one discontinuity further; the sequence never goes back.
async fn numbering_continues_across_sessions_and_handles(db: Db) {
    let first = open(&db).await;
    first.add_stream(&name("demo")).await.expect("add");
    assert_eq!(
        first.begin_numbering(&name("demo")).await.expect("begin"),
        Numbering {
            first_sequence: 0,
            discontinuity_sequence: 0,
            discontinuity: false,
        }
    );
    for next in [1, 2, 3, 2, 0] {
        first
            .advance_sequence(&name("demo"), next)
            .await
            .expect("advance");
    }
    // Another ingest, after the first one died.
    let second = open(&db).await;
    assert_eq!(
        second.begin_numbering(&name("demo")).await.expect("begin"),
        Numbering {
            first_sequence: 3,
            discontinuity_sequence: 1,
            discontinuity: true,
        }
    );
    second
        .advance_sequence(&name("demo"), 10)
        .await
        .expect("advance");
    assert_eq!(
        first.begin_numbering(&name("demo")).await.expect("begin"),
        Numbering {
            first_sequence: 10,
            discontinuity_sequence: 2,
            discontinuity: true,
        }
    );
    assert!(matches!(
        first.begin_numbering(&name("ghost")).await,
        Err(CatalogError::NotFound { .. })
    ));
    first.close().await;
    second.close().await;
}

async fn privacy_is_set_read_and_listed(db: Db) {
    let catalog = open(&db).await;
    let (public, _) = catalog.add_stream(&name("open")).await.expect("add");
    assert!(!public.private);
    let (private, _) = catalog
        .add_stream_with_privacy(&name("closed"), true)
        .await
        .expect("add private");
    assert!(private.private);
    assert!(catalog.is_private(&name("closed")).await.expect("read"));
    assert!(!catalog.is_private(&name("open")).await.expect("read"));
    let listed = catalog.list_streams().await.expect("list");
    let flags: Vec<(&str, bool)> = listed
        .iter()
        .map(|s| (s.name.as_str(), s.private))
        .collect();
    assert_eq!(flags, [("closed", true), ("open", false)]);

    catalog.set_private(&name("open"), true).await.expect("set");
    catalog
        .set_private(&name("closed"), false)
        .await
        .expect("set");
    assert!(catalog.is_private(&name("open")).await.expect("read"));
    assert_eq!(
        catalog
            .get_stream(&name("closed"))
            .await
            .expect("get")
            .map(|s| s.private),
        Some(false)
    );
    let ghost = name("ghost");
    assert!(matches!(
        catalog.set_private(&ghost, true).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        catalog.is_private(&ghost).await,
        Err(CatalogError::NotFound { .. })
    ));
    catalog.close().await;
}

async fn recording_is_on_by_default_switched_read_and_listed(db: Db) {
    let catalog = open(&db).await;
    let (recorded, _) = catalog.add_stream(&name("kept")).await.expect("add");
    assert!(recorded.record, "a new stream is recorded");
    let (unrecorded, _) = catalog
        .add_stream_with(&name("live-only"), true, false)
        .await
        .expect("add unrecorded");
    assert!(!unrecorded.record && unrecorded.private);
    assert!(catalog.is_recorded(&name("kept")).await.expect("read"));
    assert!(!catalog.is_recorded(&name("live-only")).await.expect("read"));
    let listed = catalog.list_streams().await.expect("list");
    let flags: Vec<(&str, bool, bool)> = listed
        .iter()
        .map(|s| (s.name.as_str(), s.private, s.record))
        .collect();
    assert_eq!(flags, [("kept", false, true), ("live-only", true, false)]);

    catalog.set_record(&name("kept"), false).await.expect("set");
    catalog
        .set_record(&name("live-only"), true)
        .await
        .expect("set");
    assert!(!catalog.is_recorded(&name("kept")).await.expect("read"));
    let live_only = catalog
        .get_stream(&name("live-only"))
        .await
        .expect("get")
        .expect("there");
    assert!(
        live_only.record && live_only.private,
        "privacy stays as it was"
    );
    // Privacy and recording are set apart.
    catalog.set_private(&name("kept"), true).await.expect("set");
    assert!(!catalog.is_recorded(&name("kept")).await.expect("read"));
    let ghost = name("ghost");
    assert!(matches!(
        catalog.set_record(&ghost, true).await,
        Err(CatalogError::NotFound { .. })
    ));
    assert!(matches!(
        catalog.is_recorded(&ghost).await,
        Err(CatalogError::NotFound { .. })
    ));
    catalog.close().await;
}

//! Opening failures: each one a clear, structured error that never carries a password.

use std::error::Error as _;

use catalog::{Catalog, CatalogError};

/// The error's message and every cause's, as an operator would see them.
fn chain(err: &CatalogError) -> String {
    let mut text = format!("{err} / {err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause}"));
        source = cause.source();
    }
    text
}

#[tokio::test]
async fn unsupported_schemes_are_bad_locations() {
    for location in [
        "mysql://root:hunter2@localhost/sealcast",
        "http://x/y.db",
        "",
    ] {
        let err = Catalog::open(location).await.expect_err(location);
        assert!(matches!(err, CatalogError::BadLocation { .. }), "{err:?}");
        assert!(!chain(&err).contains("hunter2"), "{}", chain(&err));
    }
}

#[tokio::test]
async fn an_unreachable_server_fails_fast_without_showing_the_password() {
    // Nothing listens on a port just released; the connection is refused at once.
    let port = testkit::net::free_port().expect("a free port");
    let started = std::time::Instant::now();
    let err = Catalog::open(&format!(
        "postgres://sealcast:hunter2@127.0.0.1:{port}/catalog?password=hunter3"
    ))
    .await
    .expect_err("nothing listens there");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert!(matches!(err, CatalogError::Connect { .. }), "{err:?}");
    let text = chain(&err);
    assert!(!text.contains("hunter"), "{text}");
    assert!(
        text.contains(&format!("sealcast:***@127.0.0.1:{port}/catalog")),
        "{text}"
    );
}

//! Values with no SQL type common to SQLite and PostgreSQL, and how they sit in TEXT columns:
//! lists (renditions, webhook events) as comma-separated text, session ids as the
//! 16-hex-digit form of [`domain::SessionId`], and small enums (scopes, webhook events) as
//! their names.
//!
//! Every value is checked before it is written and again when it is read (a row may have
//! been edited by hand), so a comma inside an item can never split it, and an id read from
//! the catalog is safe to use as a directory name.
//!
//! Pure: no database.

use domain::{RenditionName, SessionId};

use crate::CatalogError;

/// Separates the items of a list column. No item may contain it: rendition names and
/// webhook event names are made of letters, digits, `_` and `-`.
const SEPARATOR: char = ',';

/// The TEXT of a list column. An empty list is the empty string.
pub(crate) fn join_list<T: AsRef<str>>(items: &[T]) -> String {
    let mut text = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            text.push(SEPARATOR);
        }
        text.push_str(item.as_ref());
    }
    text
}

/// The items of a list column's TEXT; the empty string is the empty list.
pub(crate) fn split_list(text: &str) -> impl Iterator<Item = &str> {
    text.split(SEPARATOR).filter(|_| !text.is_empty())
}

/// Checks the renditions given for a session or recording: each must be a valid
/// [`RenditionName`] (which also keeps the separator out).
pub(crate) fn check_renditions(renditions: &[String]) -> Result<(), CatalogError> {
    for rendition in renditions {
        RenditionName::new(rendition.as_str()).map_err(|e| CatalogError::InvalidInput {
            what: "rendition",
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// The renditions of a `renditions` column, each checked.
pub(crate) fn parse_renditions(text: &str) -> Result<Vec<String>, CatalogError> {
    split_list(text)
        .map(|item| match RenditionName::new(item) {
            Ok(name) => Ok(String::from(name)),
            Err(e) => Err(CatalogError::InvalidRow {
                column: "renditions",
                reason: e.to_string(),
            }),
        })
        .collect()
}

/// The one of `all` whose `name` is exactly `text`, for the `FromStr` of an enum stored as
/// its name; anything else is [`CatalogError::InvalidInput`] about `what`, listing the names.
pub(crate) fn parse_name_of<T: Copy>(
    all: &[T],
    name: fn(T) -> &'static str,
    what: &'static str,
    text: &str,
) -> Result<T, CatalogError> {
    all.iter()
        .copied()
        .find(|item| name(*item) == text)
        .ok_or_else(|| CatalogError::InvalidInput {
            what,
            reason: format!(
                "`{}` is not one of {}",
                text.escape_debug(),
                all.iter()
                    .map(|item| name(*item))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// Checks a session (recording) id given to the catalog: the one spelling
/// [`SessionId`] displays as.
pub(crate) fn check_session_id(id: &str) -> Result<(), CatalogError> {
    id.parse::<SessionId>()
        .map(drop)
        .map_err(|e| CatalogError::InvalidInput {
            what: "session id",
            reason: e.to_string(),
        })
}

/// Checks a session id read from `column`.
pub(crate) fn parse_session_id(column: &'static str, id: String) -> Result<String, CatalogError> {
    match id.parse::<SessionId>() {
        Ok(_) => Ok(id),
        Err(e) => Err(CatalogError::InvalidRow {
            column,
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn lists() {
        assert_eq!(join_list::<&str>(&[]), "");
        assert_eq!(join_list(&["src"]), "src");
        assert_eq!(join_list(&["src", "720p", "480p"]), "src,720p,480p");
        assert_eq!(split_list("").count(), 0);
        assert_eq!(split_list("src").collect::<Vec<_>>(), ["src"]);
        assert_eq!(split_list("src,720p").collect::<Vec<_>>(), ["src", "720p"]);
    }

    #[test]
    fn renditions_are_checked_both_ways() {
        let ok = ["src".to_owned(), "720p".to_owned()];
        assert!(check_renditions(&ok).is_ok());
        assert!(check_renditions(&[]).is_ok());
        for bad in ["", "a,b", "../x", "720 p"] {
            assert!(
                matches!(
                    check_renditions(&[bad.to_owned()]),
                    Err(CatalogError::InvalidInput {
                        what: "rendition",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(parse_renditions("src,720p").expect("valid"), ok);
        for bad in [",", "src,", "src,,720p", "a b"] {
            assert!(
                matches!(
                    parse_renditions(bad),
                    Err(CatalogError::InvalidRow {
                        column: "renditions",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn enums_by_name() {
        let all = [1u8, 2];
        let name: fn(u8) -> &'static str = |n| if n == 1 { "one" } else { "two" };
        assert_eq!(
            parse_name_of(&all, name, "number", "two").expect("a name"),
            2
        );
        let e = parse_name_of(&all, name, "number", "Two\n").expect_err("not a name");
        assert_eq!(
            e.to_string(),
            "invalid number: `Two\\n` is not one of one, two"
        );
    }

    #[test]
    fn session_ids() {
        assert!(check_session_id("17a3f0c2b1e4d5a6").is_ok());
        for bad in [
            "",
            "17A3F0C2B1E4D5A6",
            "17a3f0c2b1e4d5a",
            "../../etc/passwd",
        ] {
            assert!(check_session_id(bad).is_err(), "{bad:?}");
            assert!(parse_session_id("id", bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn valid_rendition_lists_round_trip(
            names in proptest::collection::vec("[a-zA-Z0-9][a-zA-Z0-9_-]{0,15}", 0..8)
        ) {
            check_renditions(&names).expect("valid names");
            prop_assert_eq!(parse_renditions(&join_list(&names)).expect("parses"), names);
        }
    }
}

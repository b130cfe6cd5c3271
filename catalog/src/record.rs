//! What the catalog knows about one stream.

use domain::StreamName;
use serde::Serialize;

/// One stream of the catalog, as `sealcast streams list --json` prints it and the admin API
/// will serve it. Holds nothing secret: the key's hash stays in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamRecord {
    /// The public name (`/live/{name}/...`).
    pub name: StreamName,
    /// When the stream was added, in unix seconds.
    pub created_at: i64,
    /// The latest time a publish of this stream went live, in unix seconds; `None` if it never
    /// has. Lets an operator spot streams nobody uses any more.
    pub last_live_at: Option<i64>,
    /// Whether the stream is served only with a playback token (issue 34).
    pub private: bool,
    /// Whether the nodes that record keep it in a recording (issue 50; on unless an
    /// operator switched it off).
    pub record: bool,
}

//! Running the router on a listener the caller bound, until a shutdown token fires.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{router, BroadcastError, HttpLimits, Node};

/// Serves the public router on `listener` (HTTP/1.1, and HTTP/2 with prior knowledge,
/// within the default [`HttpLimits`]) until `shutdown` is cancelled; then stops accepting,
/// lets requests in flight finish and returns. Binding is the caller's job, so tests and `sealcast up` can use port 0.
pub async fn serve(
    listener: TcpListener,
    node: Arc<Node>,
    shutdown: CancellationToken,
) -> Result<(), BroadcastError> {
    match listener.local_addr() {
        Ok(addr) => tracing::info!(node = %node.id(), %addr, "broadcast node serving"),
        Err(e) => {
            tracing::warn!(node = %node.id(), error = %e, "broadcast node serving on an unknown address")
        }
    }
    let listener = node.audience.counting(listener);
    let app = router(Arc::clone(&node));
    crate::http::serve(
        listener,
        app,
        HttpLimits::default(),
        Arc::clone(&node),
        shutdown,
    )
    .await;
    tracing::info!(node = %node.id(), "broadcast node stopped");
    Ok(())
}

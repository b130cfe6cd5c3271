//! What the load balancer answers itself, without a node: short JSON errors and redirects,
//! `/healthz`, and a collapsed request's copy of another one's answer ([`crate::collapse`]).

use bytes::Bytes;
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::Result as PResult;

use crate::collapse::Answer;

/// Answers with a short JSON error (or redirect) body.
pub(crate) async fn respond(
    session: &mut Session,
    status: u16,
    message: &str,
    headers: &[(&'static str, &str)],
) -> PResult<()> {
    let mut body = serde_json::json!({ "error": message }).to_string();
    body.push('\n');
    let body = Bytes::from(body);
    let mut response = ResponseHeader::build(status, Some(4 + headers.len()))?;
    response.insert_header("content-type", "application/json")?;
    response.insert_header("content-length", body.len().to_string())?;
    response.insert_header("cache-control", "no-store")?;
    for (name, value) in headers {
        response.append_header(*name, *value)?;
    }
    session
        .write_response_header(Box::new(response), false)
        .await?;
    session.write_response_body(Some(body), true).await
}

/// Answers a follower with its flight's answer, and its own cookie.
pub(crate) async fn respond_shared(
    session: &mut Session,
    answer: &Answer,
    cookie: Option<&str>,
) -> PResult<()> {
    let mut header = answer.header();
    if let Some(cookie) = cookie {
        header.append_header("set-cookie", cookie)?;
    }
    let body = answer.body();
    session
        .write_response_header(Box::new(header), body.is_empty())
        .await?;
    for (i, chunk) in body.iter().enumerate() {
        session
            .write_response_body(Some(chunk.clone()), i + 1 == body.len())
            .await?;
    }
    Ok(())
}

pub(crate) async fn respond_text(
    session: &mut Session,
    status: u16,
    text: &'static str,
) -> PResult<()> {
    let mut response = ResponseHeader::build(status, Some(3))?;
    response.insert_header("content-type", "text/plain; charset=utf-8")?;
    response.insert_header("content-length", text.len().to_string())?;
    response.insert_header("cache-control", "no-store")?;
    session
        .write_response_header(Box::new(response), false)
        .await?;
    session
        .write_response_body(Some(Bytes::from_static(text.as_bytes())), true)
        .await
}

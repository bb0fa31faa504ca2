//! Reading request bodies in time: a body that does not arrive whole within
//! [`Limits::body_timeout`](crate::Limits::body_timeout) gets a 408, so a client that sends a
//! few bytes a minute cannot hold a connection and its buffer for ever.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;

use crate::error::ApiError;
use crate::routes::AppState;

/// Reads the whole body (at most `max_body_bytes`) within the body timeout, then passes the
/// request on with the bytes in hand.
pub(crate) async fn read_in_time(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    let limits = &state.limits;
    let read = axum::body::to_bytes(body, limits.max_body_bytes);
    match tokio::time::timeout(limits.body_timeout, read).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => if e.into_inner().downcast_ref::<LengthLimitError>().is_some() {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the body exceeds {} bytes", limits.max_body_bytes),
            )
        } else {
            ApiError::bad_request("body_unreadable", "the body could not be read")
        }
        .into_response(),
        Err(_) => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the body did not arrive within {:.1} s",
                limits.body_timeout.as_secs_f64()
            ),
        )
        .into_response(),
    }
}

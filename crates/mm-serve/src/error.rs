//! JSON errors: every failure the service returns is `{"error": {"code", "message"}}` with a
//! status that says whose fault it is (4xx: the request; 5xx: the service).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// A stable, machine-readable code (`bad_image`, `too_many_labels`, `queue_full`...).
    pub code: &'static str,
    /// What is wrong, for a person.
    pub message: String,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 400: the request is malformed.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 413: the request or one of its parts is too large.
    pub fn too_large(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, code, message)
    }

    /// 422: well-formed but unusable (an image that does not decode, an empty label list).
    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    /// 500: the service failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        (self.status, Json(body)).into_response()
    }
}

impl From<mm_retrieval::IndexError> for ApiError {
    fn from(e: mm_retrieval::IndexError) -> Self {
        use mm_retrieval::IndexError as E;
        match e {
            E::Dimension { .. } | E::NonFinite { .. } | E::ZeroK | E::Invalid(_) => {
                Self::unprocessable("bad_index_request", e.to_string())
            }
            E::Io {
                ref path,
                ref source,
            } => {
                let message = format!("index: {}: {source}", path.display());
                if source.kind() == std::io::ErrorKind::StorageFull
                    || source.kind() == std::io::ErrorKind::QuotaExceeded
                {
                    // 507: nothing was added; the request can be repeated once there is room.
                    Self::new(StatusCode::INSUFFICIENT_STORAGE, "storage_full", message)
                } else {
                    Self::internal(message)
                }
            }
            _ => Self::internal(format!("index: {e}")),
        }
    }
}

//! Reading multipart requests: every field, checked against the ones an endpoint takes, a
//! text field, and the one image an endpoint expects.

use std::sync::Arc;

use axum::extract::Multipart;
use mm_vision::RgbImage;

use crate::error::ApiError;
use crate::input::decode_upload;
use crate::routes::{AppState, blocking};

/// One uploaded file or text field.
pub(crate) struct Field {
    /// The field's name.
    pub(crate) name: String,
    /// The uploaded file's name, for files.
    pub(crate) file_name: Option<String>,
    /// The field's bytes.
    pub(crate) bytes: Vec<u8>,
}

/// Every field of a multipart body, refusing a field not in `allowed`.
pub(crate) async fn read_fields(
    mut multipart: Multipart,
    allowed: &[&str],
) -> Result<Vec<Field>, ApiError> {
    let mut out = Vec::new();
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_multipart", e.body_text()))?;
        let Some(field) = field else { break };
        let name = field.name().unwrap_or_default().to_string();
        if !allowed.contains(&name.as_str()) {
            return Err(ApiError::bad_request(
                "unknown_field",
                format!("unknown field `{name}`; expected {}", allowed.join(", ")),
            ));
        }
        let file_name = field.file_name().map(str::to_string);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::new(e.status(), "bad_multipart", e.body_text()))?
            .to_vec();
        out.push(Field {
            name,
            file_name,
            bytes,
        });
    }
    Ok(out)
}

/// The text of field `name`, if given once; an error if repeated or not UTF-8.
pub(crate) fn text_field(fields: &[Field], name: &str) -> Result<Option<String>, ApiError> {
    match fields.iter().filter(|f| f.name == name).collect::<Vec<_>>()[..] {
        [] => Ok(None),
        [f] => String::from_utf8(f.bytes.clone())
            .map(Some)
            .map_err(|_| ApiError::bad_request("bad_field", format!("`{name}` is not UTF-8 text"))),
        _ => Err(ApiError::bad_request(
            "repeated_field",
            format!("`{name}` is given twice"),
        )),
    }
}

/// The one `image` field, checked and decoded on a blocking thread.
pub(crate) async fn one_image(
    state: &Arc<AppState>,
    fields: &[Field],
) -> Result<RgbImage, ApiError> {
    let images: Vec<&Field> = fields.iter().filter(|f| f.name == "image").collect();
    let [image] = images[..] else {
        return Err(ApiError::bad_request(
            "image_count",
            format!("expected one `image` file field, got {}", images.len()),
        ));
    };
    let (bytes, name) = (
        image.bytes.clone(),
        image.file_name.clone().unwrap_or("image".into()),
    );
    let st = state.clone();
    blocking(move || decode_upload(&bytes, &name, st.alpha, &st.limits)).await
}

//! Multipart form reading: the uploaded file and the text fields. The fields become one of the
//! typed forms of [`super::forms`] with [`Form::parse`] (a missing required field or a value of
//! the wrong type → 422, as the seed answers).

use std::collections::HashMap;

use axum::extract::multipart::{Multipart, MultipartError};
use axum::http::StatusCode;

use crate::error::AppError;

/// The uploaded file.
pub struct Upload {
    pub file_name: Option<String>,
    pub bytes: Vec<u8>,
}

/// A parsed multipart form.
#[derive(Default)]
pub struct Form {
    pub file: Option<Upload>,
    fields: HashMap<String, String>,
}

/// Largest text field accepted (prompt JSON included).
const MAX_FIELD_BYTES: usize = 1024 * 1024;

impl Form {
    /// Reads every part of `multipart`; the part named `file` is the upload.
    pub async fn read(mut multipart: Multipart) -> Result<Form, AppError> {
        let mut form = Form::default();
        while let Some(field) = multipart.next_field().await.map_err(multipart_error)? {
            let name = field.name().unwrap_or_default().to_string();
            if name == "file" {
                let file_name = field.file_name().map(str::to_string);
                let bytes = field.bytes().await.map_err(multipart_error)?;
                form.file = Some(Upload {
                    file_name,
                    // The buffer the body was received into, not a copy of it.
                    bytes: Vec::from(bytes),
                });
            } else {
                let value = field.text().await.map_err(multipart_error)?;
                if value.len() > MAX_FIELD_BYTES {
                    return Err(AppError::too_large(format!(
                        "Form field '{name}' is larger than {MAX_FIELD_BYTES} bytes"
                    )));
                }
                form.fields.insert(name, value);
            }
        }
        Ok(form)
    }

    /// Builds a form from fields alone (tests, other entry points).
    pub fn from_fields(fields: impl IntoIterator<Item = (String, String)>) -> Form {
        Form {
            file: None,
            fields: fields.into_iter().collect(),
        }
    }

    /// Takes the upload; 422 when there is none.
    pub fn take_file(&mut self) -> Result<Upload, AppError> {
        self.file
            .take()
            .ok_or_else(|| AppError::unprocessable("Field required: file (the image to segment)"))
    }

    /// Removes the text field `name` and returns its value, unless it is blank.
    pub fn take_field(&mut self, name: &str) -> Option<String> {
        self.fields.remove(name).filter(|v| !v.trim().is_empty())
    }

    /// Every text field, for plugin parameters.
    pub fn fields(&self) -> impl Iterator<Item = (&String, &String)> {
        self.fields.iter()
    }

    /// The text fields as one of the typed forms of [`super::forms`] (422 naming the field
    /// when one is missing or has the wrong type).
    pub fn parse<'a, T: serde::Deserialize<'a>>(&'a self) -> Result<T, AppError> {
        super::fields::parse(self.fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

pub(super) fn multipart_error(e: MultipartError) -> AppError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        AppError::too_large(format!(
            "The request body is larger than allowed: {}",
            e.body_text()
        ))
    } else {
        AppError::new(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            format!("Cannot read the multipart form: {}", e.body_text()),
        )
    }
}

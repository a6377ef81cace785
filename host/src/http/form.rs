//! Multipart form reading: the uploaded file and the text fields, with typed getters that
//! answer like the seed (a missing required field or a value of the wrong type → 422).

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

    /// A text field; absent and empty are the same.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// A required text field; 422 when absent.
    pub fn required_text(&self, name: &str) -> Result<&str, AppError> {
        self.text(name)
            .ok_or_else(|| AppError::unprocessable(format!("Field required: {name}")))
    }

    /// A text field with a default.
    pub fn text_or<'a>(&'a self, name: &str, default: &'a str) -> &'a str {
        self.text(name).unwrap_or(default)
    }

    /// A boolean field ("true"/"false", "1"/"0", "yes"/"no", "on"/"off").
    pub fn bool_or(&self, name: &str, default: bool) -> Result<bool, AppError> {
        let Some(raw) = self.text(name) else {
            return Ok(default);
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
            _ => Err(AppError::unprocessable(format!(
                "Field '{name}': '{raw}' is not a valid boolean"
            ))),
        }
    }

    /// An optional integer field ("None"/"null" count as absent, as the seed's clients send).
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, AppError> {
        let Some(raw) = self.text(name) else {
            return Ok(None);
        };
        let raw = raw.trim();
        if raw.eq_ignore_ascii_case("none") || raw.eq_ignore_ascii_case("null") {
            return Ok(None);
        }
        raw.parse::<i64>().map(Some).or_else(|_| {
            // "100.0" is a valid integer for pydantic; "100.5" is not.
            match raw.parse::<f64>() {
                Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    Ok(Some(f as i64))
                }
                _ => Err(AppError::unprocessable(format!(
                    "Field '{name}': '{raw}' is not a valid integer"
                ))),
            }
        })
    }

    /// An integer field with a default.
    pub fn int_or(&self, name: &str, default: i64) -> Result<i64, AppError> {
        Ok(self.opt_int(name)?.unwrap_or(default))
    }

    /// A floating-point field with a default; NaN and infinities are refused.
    pub fn float_or(&self, name: &str, default: f64) -> Result<f64, AppError> {
        let Some(raw) = self.text(name) else {
            return Ok(default);
        };
        match raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(AppError::unprocessable(format!(
                "Field '{name}': '{raw}' is not a valid finite number"
            ))),
        }
    }

    /// Every text field, for plugin parameters.
    pub fn fields(&self) -> impl Iterator<Item = (&String, &String)> {
        self.fields.iter()
    }
}

fn multipart_error(e: MultipartError) -> AppError {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Form {
        Form::from_fields(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn typed_getters() {
        let f = form(&[
            ("a", "True"),
            ("n", "12"),
            ("m", "3.0"),
            ("x", "None"),
            ("e", ""),
        ]);
        assert!(f.bool_or("a", false).unwrap());
        assert_eq!(f.int_or("n", 0).unwrap(), 12);
        assert_eq!(f.int_or("m", 0).unwrap(), 3);
        assert_eq!(f.opt_int("x").unwrap(), None);
        assert_eq!(f.opt_int("e").unwrap(), None);
        assert_eq!(f.float_or("missing", 0.5).unwrap(), 0.5);
    }

    #[test]
    fn wrong_types_are_422() {
        let f = form(&[("a", "maybe"), ("n", "1.5"), ("f", "nan")]);
        assert_eq!(f.bool_or("a", true).unwrap_err().status, 422);
        assert_eq!(f.int_or("n", 0).unwrap_err().status, 422);
        assert_eq!(f.float_or("f", 0.0).unwrap_err().status, 422);
    }
}

//! Text fields of a multipart form → a typed struct, with serde. The typed forms in
//! [`super::forms`] derive `Deserialize` (read here) and `ToSchema` (the OpenAPI document), so
//! what is parsed and what is documented are one definition.
//!
//! Fields are strings on the wire; this deserializer parses each where the struct asks for a
//! number or a boolean, and answers like the seed: a missing required field → `Field required:
//! NAME`, a value of the wrong type → `Field 'NAME': 'VALUE' is not a valid integer` (422 both).
//! An empty value counts as absent (Swagger UI sends empty strings for unfilled fields);
//! `None`/`null` count as absent in optional fields.

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::Deserialize;

use crate::error::AppError;

/// Why a form did not parse: the message the client gets with 422.
#[derive(Debug)]
pub struct FieldError(String);

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FieldError {}

impl de::Error for FieldError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        FieldError(msg.to_string())
    }

    fn missing_field(field: &'static str) -> Self {
        if field == "file" {
            FieldError("Field required: file (the image to segment)".into())
        } else {
            FieldError(format!("Field required: {field}"))
        }
    }
}

/// Parses `fields` (name, value) into `T`; 422 with the seed's wording when it does not fit.
pub fn parse<'a, T: Deserialize<'a>>(
    fields: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<T, AppError> {
    let fields = fields.into_iter().filter(|(_, v)| !v.trim().is_empty());
    T::deserialize(Fields {
        fields,
        current: None,
    })
    .map_err(|e| AppError::unprocessable(e.0))
}

/// The whole form, as a map of fields.
struct Fields<'a, I> {
    fields: I,
    current: Option<(&'a str, &'a str)>,
}

impl<'de, I: Iterator<Item = (&'de str, &'de str)>> de::Deserializer<'de> for Fields<'de, I> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_map(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

impl<'de, I: Iterator<Item = (&'de str, &'de str)>> MapAccess<'de> for Fields<'de, I> {
    type Error = FieldError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, FieldError> {
        let Some((name, raw)) = self.fields.next() else {
            return Ok(None);
        };
        self.current = Some((name, raw));
        seed.deserialize(de::value::BorrowedStrDeserializer::<FieldError>::new(name))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, FieldError> {
        let (name, raw) = self
            .current
            .take()
            .ok_or_else(|| FieldError("a form value without a name".into()))?;
        seed.deserialize(Value { raw })
            .map_err(|e| FieldError(format!("Field '{name}': {e}")))
    }
}

/// One field's text, parsed to whatever type the struct asks for.
struct Value<'a> {
    raw: &'a str,
}

impl Value<'_> {
    fn invalid(&self, what: &str) -> FieldError {
        FieldError(format!("'{}' is not a valid {what}", self.raw))
    }

    /// A boolean as pydantic reads one from a form.
    fn boolean(&self) -> Result<bool, FieldError> {
        match self.raw.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" | "t" | "y" => Ok(true),
            "false" | "0" | "no" | "off" | "f" | "n" => Ok(false),
            _ => Err(self.invalid("boolean")),
        }
    }

    /// An integer; "100.0" is one (as for pydantic), "100.5" is not.
    fn integer(&self) -> Result<i64, FieldError> {
        let raw = self.raw.trim();
        raw.parse::<i64>().or_else(|_| match raw.parse::<f64>() {
            Ok(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
            _ => Err(self.invalid("integer")),
        })
    }

    /// A finite number (NaN and infinities are refused).
    fn number(&self) -> Result<f64, FieldError> {
        match self.raw.trim().parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.invalid("finite number")),
        }
    }
}

impl<'de> de::Deserializer<'de> for Value<'de> {
    type Error = FieldError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_borrowed_str(self.raw)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        let t = self.raw.trim();
        if t.eq_ignore_ascii_case("none") || t.eq_ignore_ascii_case("null") {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_bool(self.boolean()?)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_i64(self.integer()?)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, FieldError> {
        visitor.visit_f64(self.number()?)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, FieldError> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        i8 i16 i32 i128 u8 u16 u32 u64 u128 f32 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize, Debug, PartialEq)]
    struct Sample {
        name: String,
        #[serde(default)]
        flag: bool,
        #[serde(default = "seven")]
        count: i64,
        ratio: Option<f64>,
        limit: Option<i64>,
    }

    fn seven() -> i64 {
        7
    }

    fn sample(pairs: &[(&str, &str)]) -> Result<Sample, AppError> {
        parse(pairs.iter().copied())
    }

    #[test]
    fn typed_values_and_defaults() {
        let s = sample(&[
            ("name", "x"),
            ("flag", "True"),
            ("count", "3.0"),
            ("ratio", "0.25"),
            ("limit", "None"),
            ("unknown", "kept for plugins"),
        ])
        .unwrap();
        assert_eq!(
            s,
            Sample {
                name: "x".into(),
                flag: true,
                count: 3,
                ratio: Some(0.25),
                limit: None,
            }
        );
        let d = sample(&[("name", "y"), ("count", ""), ("flag", " ")]).unwrap();
        assert_eq!((d.count, d.flag, d.ratio), (7, false, None));
    }

    #[test]
    fn errors_name_the_field_like_the_seed() {
        let e = sample(&[("flag", "1")]).unwrap_err();
        assert_eq!(
            (e.status.as_u16(), e.detail.as_str()),
            (422, "Field required: name")
        );
        let e = sample(&[("name", "x"), ("count", "1.5")]).unwrap_err();
        assert_eq!(e.detail, "Field 'count': '1.5' is not a valid integer");
        let e = sample(&[("name", "x"), ("flag", "maybe")]).unwrap_err();
        assert_eq!(e.detail, "Field 'flag': 'maybe' is not a valid boolean");
        let e = sample(&[("name", "x"), ("ratio", "nan")]).unwrap_err();
        assert_eq!(
            e.detail,
            "Field 'ratio': 'nan' is not a valid finite number"
        );
        assert_eq!(sample(&[("name", "")]).unwrap_err().status.as_u16(), 422);
    }
}

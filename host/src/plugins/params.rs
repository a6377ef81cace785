//! A call's parameters: the operator's configured options merged with the request's fields,
//! and the type checks of the parameters a plugin declares (WIT 0.2.0 and later).
//!
//! Precedence: a request field overrides the configured option of the same name, unless the
//! field is empty (or `None`/`null`, which plugins read as absent): then the option stays. So
//! `min_size=` in a form does not erase the operator's `min_size`.

use std::collections::BTreeMap;

use super::bindings::{ParamSpec, ParamType};

/// True for a value plugins read as absent: empty, `None` or `null` (blanks ignored).
pub(crate) fn is_absent(value: &str) -> bool {
    let v = value.trim();
    v.is_empty() || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("null")
}

/// Configured options that the request does not set to a value, then the request's params
/// (plugins read the last occurrence of a key).
pub(crate) fn merge(
    options: Option<&BTreeMap<String, String>>,
    request: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = Vec::with_capacity(request.len() + options.map_or(0, |o| o.len()));
    if let Some(options) = options {
        for (k, v) in options {
            if !request.iter().any(|(rk, rv)| rk == k && !is_absent(rv)) {
                out.push((k.clone(), v.clone()));
            }
        }
    }
    out.extend(
        request
            .iter()
            .filter(|(k, v)| !(is_absent(v) && options.is_some_and(|o| o.contains_key(k))))
            .cloned(),
    );
    out
}

/// Checks the value each declared parameter has in `params` (the last occurrence; absent
/// values are fine). Returns the parameter's name and what is wrong.
pub(crate) fn check(
    declared: &[ParamSpec],
    params: &[(String, String)],
) -> Result<(), (String, String)> {
    for spec in declared {
        let Some((_, value)) = params.iter().rev().find(|(k, _)| *k == spec.name) else {
            continue;
        };
        if is_absent(value) {
            continue;
        }
        check_value(spec.ty, value.trim()).map_err(|reason| (spec.name.clone(), reason))?;
    }
    Ok(())
}

/// Whether `value` is of type `ty`, by the rules the SDK's `Params` reads them with.
fn check_value(ty: ParamType, value: &str) -> Result<(), String> {
    let ok = match ty {
        ParamType::String => true,
        ParamType::Integer => {
            value.parse::<i64>().is_ok()
                || value
                    .parse::<f64>()
                    .is_ok_and(|x| x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15)
        }
        ParamType::Number => value.parse::<f64>().is_ok_and(f64::is_finite),
        ParamType::Boolean => matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "false" | "1" | "0" | "yes" | "no"
        ),
    };
    if ok {
        Ok(())
    } else {
        let expected = match ty {
            ParamType::String => "text",
            ParamType::Integer => "an integer",
            ParamType::Number => "a number",
            ParamType::Boolean => "true or false",
        };
        Err(format!("expected {expected}, got {value:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn request_values_override_options_but_empty_ones_do_not() {
        let options: BTreeMap<String, String> = [("min_size", "10"), ("simplify", "0.5")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let merged = merge(Some(&options), &pairs(&[("min_size", "100")]));
        assert_eq!(merged, pairs(&[("simplify", "0.5"), ("min_size", "100")]));
        let merged = merge(
            Some(&options),
            &pairs(&[("min_size", ""), ("simplify", "None")]),
        );
        assert_eq!(merged, pairs(&[("min_size", "10"), ("simplify", "0.5")]));
        // Without an option, an empty field passes through (plugins read it as absent).
        assert_eq!(merge(None, &pairs(&[("a", "")])), pairs(&[("a", "")]));
    }

    #[test]
    fn declared_types_are_checked() {
        let spec = |name: &str, ty| ParamSpec {
            name: name.into(),
            ty,
            default: None,
            description: String::new(),
        };
        let declared = [
            spec("n", ParamType::Integer),
            spec("x", ParamType::Number),
            spec("b", ParamType::Boolean),
            spec("s", ParamType::String),
        ];
        let good = pairs(&[
            ("n", "100.0"),
            ("x", "-1e3"),
            ("b", "YES"),
            ("s", "any"),
            ("other", "?"),
        ]);
        assert_eq!(check(&declared, &good), Ok(()));
        assert_eq!(
            check(&declared, &pairs(&[("n", ""), ("x", "null")])),
            Ok(())
        );
        let (name, reason) = check(&declared, &pairs(&[("n", "1"), ("x", "abc")])).unwrap_err();
        assert_eq!(name, "x");
        assert!(
            reason.contains("a number") && reason.contains("abc"),
            "{reason}"
        );
        assert_eq!(
            check(&declared, &pairs(&[("n", "1.5")])).unwrap_err().0,
            "n"
        );
        assert_eq!(
            check(&declared, &pairs(&[("b", "maybe")])).unwrap_err().0,
            "b"
        );
        // The last occurrence counts.
        assert_eq!(check(&declared, &pairs(&[("n", "x"), ("n", "2")])), Ok(()));
    }
}

//! Typed lookups in the request's string parameters.
//!
//! Conventions shared by every plugin: a key may appear more than once and the **last**
//! occurrence wins (so a host can append overrides); a value that is empty, `None` or `null`
//! (case-insensitive, surrounding blanks ignored) counts as absent, the way an HTML form or a
//! Python client leaves a field unset.

/// The request's `params` list.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Params(pub Vec<(String, String)>);

impl From<Vec<(String, String)>> for Params {
    fn from(v: Vec<(String, String)>) -> Self {
        Params(v)
    }
}

impl Params {
    /// Build from `(key, value)` slices (handy in tests).
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        Params(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    /// The raw value of `key` (last occurrence), untrimmed, even if empty.
    pub fn raw(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The trimmed value of `key`, or `None` when absent, empty, `None` or `null`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let v = self.raw(key)?.trim();
        if v.is_empty() || v.eq_ignore_ascii_case("none") || v.eq_ignore_ascii_case("null") {
            None
        } else {
            Some(v)
        }
    }

    /// `key` as a finite number.
    pub fn get_f64(&self, key: &str) -> Result<Option<f64>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(format!("parameter `{key}`: expected a number, got {v:?}")),
        }
    }

    /// `key` as an integer; a number with no fractional part (`"100.0"`) is accepted.
    pub fn get_i64(&self, key: &str) -> Result<Option<i64>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        if let Ok(i) = v.parse::<i64>() {
            return Ok(Some(i));
        }
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x.fract() == 0.0 && x.abs() < 9.0e15 => Ok(Some(x as i64)),
            _ => Err(format!("parameter `{key}`: expected an integer, got {v:?}")),
        }
    }

    /// `key` as a boolean: `true`/`false`/`1`/`0` (case-insensitive; `yes`/`no` too).
    pub fn get_bool(&self, key: &str) -> Result<Option<bool>, String> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        let lower = v.to_ascii_lowercase();
        match lower.as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" => Ok(Some(false)),
            _ => Err(format!(
                "parameter `{key}`: expected true or false, got {v:?}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_values() {
        let p = Params::from_pairs(&[("a", ""), ("b", " None "), ("c", "null")]);
        for k in ["a", "b", "c", "missing"] {
            assert_eq!(p.get(k), None);
            assert_eq!(p.get_f64(k), Ok(None));
            assert_eq!(p.get_i64(k), Ok(None));
            assert_eq!(p.get_bool(k), Ok(None));
        }
        assert_eq!(p.raw("a"), Some(""));
    }

    #[test]
    fn last_wins() {
        let p = Params::from_pairs(&[("k", "1"), ("k", "2")]);
        assert_eq!(p.get_i64("k"), Ok(Some(2)));
    }

    #[test]
    fn numbers() {
        let p = Params::from_pairs(&[("f", "0.5"), ("i", "-7"), ("g", "100.0"), ("h", "1.5")]);
        assert_eq!(p.get_f64("f"), Ok(Some(0.5)));
        assert_eq!(p.get_i64("i"), Ok(Some(-7)));
        assert_eq!(p.get_i64("g"), Ok(Some(100)));
        let e = p.get_i64("h").unwrap_err();
        assert!(e.contains("`h`") && e.contains("1.5"), "{e}");
        let e = Params::from_pairs(&[("x", "nan")])
            .get_f64("x")
            .unwrap_err();
        assert!(e.contains("`x`"), "{e}");
    }

    #[test]
    fn booleans() {
        for (v, b) in [("TRUE", true), ("1", true), ("False", false), ("0", false)] {
            assert_eq!(Params::from_pairs(&[("u", v)]).get_bool("u"), Ok(Some(b)));
        }
        let e = Params::from_pairs(&[("u", "maybe")])
            .get_bool("u")
            .unwrap_err();
        assert!(e.contains("`u`") && e.contains("maybe"), "{e}");
    }
}
